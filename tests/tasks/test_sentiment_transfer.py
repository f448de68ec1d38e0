"""``rnnlab train sentiment --init FWD,BWD`` and ``model.init`` in Python, one step: the classifier starts
from tiny charlm runs, sizes left at their defaults take the LM's, and config.json / run.json record every
choice (the LM runs, the adapted sizes, the fine-tuning schedule, the vocabulary's coverage)."""

from __future__ import annotations

import json

import pytest
import torch
from task_testing import TINY_SENTIMENT, assert_user_error, cli, write_reviews

from lm_runs import train_lm
from rnnlab.tasks import sentiment
from rnnlab.tasks.config import apply_overrides
from rnnlab.training import Trainer, load_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")

# TINY_SENTIMENT without its sizes: the LMs set them (E = 6 + 6, H = 8)
TINY = [o for o in TINY_SENTIMENT if not o.startswith(("model.embedding_dim", "model.hidden_size"))]
TINY += ["data.baseline=false", "model.pooling=concat"]


@pytest.fixture(scope="module")
def lm_runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lm_runs")
    return train_lm(folder / "fwd"), train_lm(folder / "bwd", reverse=True)


def _read(run, name):
    return json.loads((run / name).read_text(encoding="utf-8"))


def test_cli_init_fwd_bwd_starts_from_both_lms_and_records_every_choice(lm_runs, tmp_path, capsys):
    fwd, bwd = lm_runs
    data = write_reviews(tmp_path / "reviews.csv")
    out = tmp_path / "run"
    args = ["train", "sentiment", "--data", data, "--init", f"{fwd},{bwd}", "--out", out]
    code, _, err = cli(capsys, *args, *TINY, "train.epochs=2")
    assert code == 0, err
    saved = _read(out, "config.json")
    assert saved["model"]["init"] == f"{fwd},{bwd}"
    assert (saved["model"]["embedding_dim"], saved["model"]["hidden_size"], saved["model"]["pooling"]) == (
        12,
        8,
        "concat",
    )
    assert saved["finetune"] == {
        "lr_decay": 2.6,
        "gradual_unfreezing": True,
        "schedule": "slanted_triangular",
        "cut_frac": 0.1,
        "ratio": 32.0,
    }
    assert (
        saved["adapted"]["model.embedding_dim"]["from"] == 128
        and saved["adapted"]["model.embedding_dim"]["to"] == 12
    )
    assert saved["adapted"]["data.tokenizer"] == {
        "from": "auto",
        "to": "char",
        "why": "model.init: a character LM",
    }
    assert "note: model.embedding_dim 128 -> 12 (model.init: the sizes of the pretrained LM" in err
    init = _read(out, "run.json")["init"]
    assert init["sources"] == {"forward": str(fwd), "reverse": str(bwd)}
    assert (
        0.5 < init["coverage"]["forward"] <= 1.0
        and init["coverage"]["forward"] == init["coverage"]["reverse"]
    )
    assert f"note: model.init: forward LM {init['coverage']['forward']:.1%}, reverse LM" in err
    # gradual unfreezing, 2 epochs of 3 groups (embedding, layer 0, head): the embedding never trained, so
    # last/ still holds the LM's rows; layer 0 trained in epoch 2
    last, lm = load_checkpoint(out / "last"), load_checkpoint(fwd / "best")
    vocab, lm_vocab = last.meta["vocab"]["tokens"], lm.meta["vocab"]["tokens"]
    known = [t for t in vocab[2:] if t in lm_vocab]
    assert len(known) == init["mapped"]["forward"]
    for char in known:
        row = last.state_dict["embedding.weight"][vocab.index(char)]
        assert torch.equal(row[:6], lm.state_dict["embedding.weight"][lm_vocab.index(char)])
    assert not torch.equal(last.state_dict["encoder.weight_hh_l0"], lm.state_dict["rnn.weight_hh_l0"])


def test_python_model_init_is_the_same_step(lm_runs, tmp_path, capsys):
    fwd, _ = lm_runs
    data = write_reviews(tmp_path / "reviews.csv")
    config = apply_overrides(
        sentiment.SentimentConfig(), [f"data.dataset={data}", *TINY, f"model.init={fwd}"]
    )
    result = sentiment.train(config, tmp_path / "run")
    err = capsys.readouterr().err
    assert "note: one forward LM: the reverse direction starts from random weights" in err
    saved = _read(result.run_dir, "config.json")
    assert (saved["model"]["init"], saved["model"]["embedding_dim"]) == (str(fwd), 6)
    assert _read(result.run_dir, "run.json")["init"]["sources"] == {"forward": str(fwd)}


def test_a_size_the_user_set_must_match_and_the_error_names_both_sides(lm_runs, tmp_path, capsys):
    fwd, _ = lm_runs
    data = write_reviews(tmp_path / "reviews.csv")
    args = ["train", "sentiment", "--data", data, "--init", fwd, "--out", tmp_path / "run", *TINY]
    code, _, err = cli(capsys, *args, "model.hidden_size=16")
    assert_user_error(
        code, err, "gives model.hidden_size=8 (its cell 'lstm'), the classifier has model.hidden_size=16"
    )
    assert not (tmp_path / "run").exists()  # checked before the first file is written
    code, _, err = cli(capsys, *args, "data.tokenizer=word")
    assert_user_error(code, err, "data.tokenizer: model.init transfers a character LM")
    code, _, err = cli(
        capsys, "train", "sentiment", "--data", data, "--init", tmp_path, "--out", tmp_path / "r2", *TINY
    )
    assert_user_error(code, err, "is not a charlm run folder (no best/ checkpoint)")


def test_without_init_nothing_changes(tmp_path):
    data = write_reviews(tmp_path / "reviews.csv")
    config = apply_overrides(sentiment.SentimentConfig(), [f"data.dataset={data}", *TINY_SENTIMENT])
    result = sentiment.train(config, tmp_path / "run")
    saved = _read(result.run_dir, "config.json")
    assert (saved["model"]["init"], saved["adapted"], saved["model"]["embedding_dim"]) == (None, {}, 8)
    assert _read(result.run_dir, "run.json")["init"] is None


def test_a_fine_tuned_run_resumed_after_an_interruption_equals_an_uninterrupted_one(
    lm_runs, tmp_path, capsys, monkeypatch
):
    """Unfreezing, per-group rates and the slanted triangular step all follow from the epoch and step that
    last/ holds, so a resumed run ends bit for bit where an uninterrupted one does."""
    fwd, bwd = lm_runs
    data = write_reviews(tmp_path / "reviews.csv")
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    args = ["train", "sentiment", "--data", data, "--init", f"{fwd},{bwd}", *TINY, "train.epochs=3"]
    assert cli(capsys, *args, "--out", whole)[0] == 0
    original_save = Trainer._save

    def save_then_interrupt(self, *a, **k):  # Ctrl-C right after the first epoch's checkpoint
        original_save(self, *a, **k)
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "_save", save_then_interrupt)
    assert cli(capsys, *args, "--out", cut)[0] == 130
    monkeypatch.setattr(Trainer, "_save", original_save)
    code, _, err = cli(capsys, "train", "sentiment", "--out", cut, "--resume")
    assert code == 0, err
    a, b = (load_checkpoint(run / "last").state_dict for run in (whole, cut))
    assert a.keys() == b.keys() and all(a[k].equal(b[k]) for k in a)
    assert _read(whole, "config.json") == _read(cut, "config.json")
