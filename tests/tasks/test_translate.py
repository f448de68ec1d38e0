"""The translate task end to end through the Python API, on a few hundred dates: train -> evaluate -> predict
-> plot, resume, a user's TSV file, and the errors a user can make."""

from __future__ import annotations

import json
import struct

import pytest
import torch

from rnnlab.data.sources import DataError
from rnnlab.models.seq2seq import Seq2SeqConfig
from rnnlab.tasks import task_of_run
from rnnlab.tasks.config import ConfigError, apply_overrides
from rnnlab.tasks.translate import (
    DataConfig,
    TranslateConfig,
    evaluate,
    load_run_config,
    load_translator,
    plot_attention,
    predict,
    train,
)
from rnnlab.training import TrainerConfig

# One worker runs this module under `pytest -n 2 --dist loadgroup`, so the trained run is built once.
pytestmark = [pytest.mark.xdist_group("translate"), pytest.mark.usefixtures("one_thread")]


def tiny_config(epochs=2, **data) -> TranslateConfig:
    return TranslateConfig(
        data=DataConfig(
            **{"n_train": 240, "n_valid": 24, "n_test": 24, "batch_size": 48, "eval_batch_size": 64, **data}
        ),
        model=Seq2SeqConfig(embedding_dim=16, hidden_size=24, attention_size=16, dropout=0.0),
        # a constant rate, so that epoch 1 of a 1-epoch run equals epoch 1 of a 2-epoch run (resume test)
        train=TrainerConfig(
            epochs=epochs, lr=1e-2, lr_schedule="constant", patience=None, monitor="auto", progress=False
        ),
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("translate") / "run"
    torch.set_num_threads(1)
    return train(tiny_config(), run_dir), run_dir


def test_train_writes_a_self_describing_run_folder(run):
    result, run_dir = run
    for name in ("config.json", "run.json", "metrics.csv", "test_metrics.json", "best", "last"):
        assert (run_dir / name).exists(), name
    assert task_of_run(run_dir) == "translate"
    info = json.loads((run_dir / "run.json").read_text())
    assert info["data"]["train"]["size"] == 240 and info["data"]["test"]["size"] == 24
    config = load_run_config(run_dir)
    assert config.model.tgt_vocab_size == 4 + 11  # specials + digits and "-"
    assert config.train.monitor == "exact_match" and config.decode.max_len == 2 * 10 + 10
    assert len(result.history) == 2 and result.best_epoch in (1, 2)
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert set(result.valid_metrics) >= {"exact_match", "token_accuracy", "bleu", "valid_loss", "train_loss"}
    # ten optimizer steps: far from solved, but already well above chance (1 in 15 tokens)
    assert result.test_metrics["token_accuracy"] > 0.15


def test_evaluate_reproduces_the_test_metrics_from_the_folder_alone(run):
    result, run_dir = run
    metrics = evaluate(run_dir)
    for key in ("exact_match", "token_accuracy", "bleu", "loss", "n"):
        assert metrics[key] == pytest.approx(result.test_metrics[key]), key
    assert 0 <= metrics["exact_match"] <= 1 and 0 <= metrics["bleu"] <= 100
    assert metrics["data"].startswith("dates (test split")
    beam = evaluate(run_dir, beam=3)
    assert beam["beam_size"] == 3 and beam["token_accuracy"] == metrics["token_accuracy"]


def test_evaluate_on_a_users_tsv_file(run, tmp_path):
    _, run_dir = run
    path = tmp_path / "mine.tsv"
    path.write_text("24/03/2036\t2036-03-24\n1 January 1999\t1999-01-01\n", encoding="utf-8")
    metrics = evaluate(run_dir, data=str(path))
    assert metrics["n"] == 2 and metrics["data"].endswith("(all 2 pairs)")


def test_predict_returns_text_scores_and_an_attention_row_per_output_token(run):
    _, run_dir = run
    texts = ["Monday, March 24, 2036", "二〇三六年三月二十四日", "24/03/2036"]
    for beam in (1, 3):
        results = predict(run_dir, texts, beam=beam)
        assert [r["input"] for r in results] == texts
        for r in results:
            assert r["output"] == "".join(r["target_tokens"][: len(r["target_tokens"]) - r["finished"]])
            assert r["source_tokens"] == [c for c in r["input"].lower() if not c.isspace()]
            assert len(r["attention"]) == len(r["target_tokens"])
            assert all(len(row) == len(r["source_tokens"]) for row in r["attention"])
            assert all(sum(row) == pytest.approx(1.0, abs=1e-4) for row in r["attention"])
            assert r["log_prob"] <= 0
    with pytest.raises(DataError, match="texts"):
        predict(run_dir, ["   "])
    for beam in (0, 101, 2.5):
        with pytest.raises(
            ConfigError,
            match=f"beam: expected an integer from 1 .greedy. to 100 .the beam search cap., received {beam}",
        ):
            predict(run_dir, ["24/03/2036"], beam=beam)
    with pytest.raises(ConfigError, match="received 0"):
        evaluate(run_dir, beam=0)


def test_the_checkpoint_rebuilds_the_trained_model(run):
    _, run_dir = run
    t = load_translator(run_dir)
    assert t.model.config.attention == "additive" and not t.model.training
    again = load_translator(run_dir)
    src = torch.tensor([t.source_ids(["24/03/2036"])[0]])
    tgt_in = torch.tensor([[2, 4, 5]])
    torch.testing.assert_close(t.model(src, torch.tensor([src.shape[1]]), tgt_in)[0],
                               again.model(src, torch.tensor([src.shape[1]]), tgt_in)[0])  # fmt: skip


def test_plot_attention_writes_a_png(run, tmp_path):
    _, run_dir = run
    out = plot_attention(run_dir, "Monday, March 24, 2036", tmp_path / "align.png")
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert width > 300 and height > 200


def test_an_existing_run_is_not_overwritten_without_asking(run):
    _, run_dir = run
    with pytest.raises(DataError, match="already holds a run"):
        train(tiny_config(), run_dir)


def test_resume_continues_to_the_same_result_as_an_uninterrupted_run(tmp_path, run):
    full, _ = run
    part = train(tiny_config(epochs=1), tmp_path / "r")
    assert len(part.history) == 1
    resumed = train(tiny_config(epochs=2), tmp_path / "r", resume=True)
    assert [h["train_loss"] for h in resumed.history] == pytest.approx(
        [h["train_loss"] for h in full.history]
    )
    assert resumed.test_metrics["exact_match"] == pytest.approx(full.test_metrics["exact_match"])
    with pytest.raises(ConfigError, match="model config differs"):
        changed = apply_overrides(tiny_config(epochs=3), ["model.hidden_size=32"])
        train(changed, tmp_path / "r", resume=True)


def test_a_users_tsv_file_trains_with_word_tokens(tmp_path):
    path = tmp_path / "pairs.tsv"
    words = ["null", "eins", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun"]
    english = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    lines = [f"{words[a]} {words[b]}\t{english[a]} {english[b]}" for a in range(10) for b in range(10)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = apply_overrides(tiny_config(epochs=1), [f"data.dataset={path}", "data.test_fraction=0.2"])
    result = train(config, tmp_path / "de")
    assert json.loads((tmp_path / "de" / "run.json").read_text())["tokenizers"] == ["word", "word"]
    assert result.test_metrics["n"] == 20 and load_run_config(tmp_path / "de").train.monitor == "bleu"
    r = predict(tmp_path / "de", ["drei vier"])[0]
    assert r["source_tokens"] == ["drei", "vier"] and r["output"] == " ".join(r["target_tokens"][:-1])


def test_user_errors_are_clear(tmp_path):
    with pytest.raises(DataError, match="apt-get install trans-de-en"):
        train(
            apply_overrides(tiny_config(), ["data.dataset=de-en", f"data.de_en_path={tmp_path}/x"]), tmp_path
        )
    with pytest.raises(ConfigError, match="beam_size"):
        train(apply_overrides(tiny_config(), ["decode.beam_size=0"]), tmp_path / "a")
    with pytest.raises(ConfigError, match="attention"):
        train(apply_overrides(tiny_config(), ["model.attention=magic"]), tmp_path / "b")
    with pytest.raises(DataError, match="not a translate run folder"):
        load_run_config(tmp_path)


TINY_OVERRIDES = [
    "data.n_train=96",
    "data.n_valid=16",
    "data.n_test=16",
    "model.hidden_size=16",
    "model.embedding_dim=8",
    "model.attention_size=8",
    "train.epochs=1",
    "train.progress=false",
    "data.batch_size=32",
]


@pytest.fixture
def cli():
    from rnnlab.cli import main

    return main


def test_command_line_train_evaluate_predict_plot(cli, run, tmp_path, capsys):
    out = tmp_path / "cli-run"
    assert cli(["train", "translate", "--data", "dates", "--out", str(out), *TINY_OVERRIDES]) == 0
    assert "exact match" in capsys.readouterr().out
    assert load_run_config(out).model.hidden_size == 16
    assert cli(["train", "translate", "--out", str(out), *TINY_OVERRIDES]) == 2  # refuses to overwrite
    assert "already holds a run" in capsys.readouterr().err

    _, run_dir = run
    assert cli(["evaluate", str(run_dir), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["exact_match"] == pytest.approx(
        evaluate(run_dir)["exact_match"]
    )
    assert cli(["predict", str(run_dir), "--json", "24/03/2036", "1 January 1999"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and {"output", "score", "attention"} <= set(json.loads(lines[0]))
    png = tmp_path / "a.png"
    assert cli(["plot", "attention", str(run_dir), "24/03/2036", "-o", str(png)]) == 0
    assert png.read_bytes()[:4] == b"\x89PNG"
