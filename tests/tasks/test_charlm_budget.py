"""charlm's defaults: a time budget that ends training with the lr decayed, a model sized for what the budget
can read (a documented rule), the user's explicit values winning; the 5-gram printed beside the model; a
backward LM; dynamic evaluation as its own figure."""

from __future__ import annotations

import json
import math

import pytest
import torch

from rnnlab.cli import main
from rnnlab.data.corpora import Corpus
from rnnlab.models.charlm import (
    CHARS_PER_PARAMETER,
    HIDDEN_SIZES,
    MAX_PASSES,
    CharLM,
    CharLMConfig,
    hidden_size_for_budget,
    parameter_count,
)
from rnnlab.tasks import charlm
from rnnlab.training import load_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")

TEXT = "".join(
    f"{who}. I have {n} reasons, my lord; the {what} is {how}.\n"
    for n, (who, what, how) in enumerate(
        [
            ("Kent", "king", "old"),
            ("Lear", "storm", "wild"),
            ("Fool", "egg", "bald"),
            ("Edgar", "tom", "cold"),
        ]
        * 12
    )
)
TINY_DATA = ["data.batch_size=2", "data.bptt=16", "data.steps_per_epoch=3", "data.eval_batch_size=2",
             "model.embedding_dim=8", "train.warmup_steps=0", "train.progress=false"]  # fmt: skip


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "text.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def test_the_size_rule_follows_the_compute_and_the_text():
    base = CharLMConfig(vocab_size=80, embedding_dim=64)
    sizes = [hidden_size_for_budget(k, 10**8, base) for k in (1e9, 1e11, 1e12, 1e13, 1e16)]
    assert sizes == sorted(sizes) and sizes[0] == HIDDEN_SIZES[0] and sizes[-1] == HIDDEN_SIZES[-1]
    k = 1e12
    h = hidden_size_for_budget(k, 10**8, base)

    def size(hidden):
        config = CharLMConfig.from_dict({**base.to_dict(), "hidden_size": hidden})
        return parameter_count(config, embedding=False)

    n, bigger = size(h), size(h + 64)
    assert (
        k / n >= CHARS_PER_PARAMETER * n and k / bigger < CHARS_PER_PARAMETER * bigger
    )  # the largest that fits
    model = CharLM(CharLMConfig.from_dict({**base.to_dict(), "hidden_size": h}))
    assert n == sum(p.numel() for p in model.parameters()) - 80 * 64  # all but the (V, E) embedding
    tied = CharLMConfig.from_dict({**base.to_dict(), "hidden_size": h, "tie_weights": True})
    assert parameter_count(tied, embedding=False) == parameter_count(tied)  # tied: it is the output layer too
    # a short text caps the characters that count (MAX_PASSES passes): the same compute buys a smaller model
    short = hidden_size_for_budget(k, n * CHARS_PER_PARAMETER // MAX_PASSES // 4, base)
    assert short < h
    with pytest.raises(ValueError, match="compute > 0"):
        hidden_size_for_budget(0, 10, base)


def test_the_default_trains_for_its_budget_and_sizes_the_model(text_file, tmp_path, capsys):
    """Only the data shape is set: the budget ends training with the lr near zero, the hidden size comes
    from the rule (said on stderr, recorded in run.json), and the 5-gram is printed beside the model."""
    run = tmp_path / "run"
    assert (
        main(["train", "charlm", "--data", str(text_file), "--out", str(run), *TINY_DATA, "train.budget_s=4"])
        == 0
    )
    out, err = capsys.readouterr()
    record = json.loads((run / "run.json").read_text())
    size = record["adapted"]["model.hidden_size"]
    assert "rule" in size and size["hidden_size"] in HIDDEN_SIZES and size["probe_chars_per_s"] > 0
    assert f"model.hidden_size={size['hidden_size']}" in err
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["hidden_size"] == size["hidden_size"] and config["train"]["budget_s"] == 4
    rows = [line.split(",") for line in (run / "metrics.csv").read_text().splitlines()]
    lrs = [float(r[rows[0].index("lr")]) for r in rows[1:]]
    assert lrs[-1] < 0.3 * 3e-3 and lrs == sorted(lrs, reverse=True)  # cosine over the seconds, near zero
    assert len(rows) - 1 < charlm.DEFAULT_EPOCHS  # the budget, not the epochs, ended it
    assert f"baseline (interpolated 5-gram, same valid part): {record['baseline']['bpc']:.4f} bpc" in out


def test_explicit_epochs_and_size_win_over_the_rules(text_file, tmp_path, capsys):
    run = tmp_path / "run"
    args = ["--data", str(text_file), "--out", str(run), *TINY_DATA, "train.epochs=2", "model.hidden_size=16"]
    assert main(["train", "charlm", *args]) == 0
    err = capsys.readouterr().err
    assert "train.epochs=2 given" in err and "model.hidden_size=" not in err
    config = json.loads((run / "config.json").read_text())
    assert config["train"]["budget_s"] is None and config["model"]["hidden_size"] == 16
    assert (run / "metrics.csv").read_text().count("\n") == 3  # header + 2 epochs
    adapted = json.loads((run / "run.json").read_text())["adapted"]
    assert list(adapted) == ["train.budget_s"]


def test_a_backward_lm_is_a_forward_lm_on_reversed_text(tmp_path, monkeypatch):
    """model.reverse=true on (train, valid) trains the same weights, bit for bit, as a forward LM on the
    reversed texts, and scores the same; the flag is in the checkpoint's config for transfer."""
    cut = len(TEXT) * 9 // 10
    corpora = {
        "plain": Corpus("plain", TEXT[:cut], TEXT[cut:]),
        "reversed": Corpus("reversed", TEXT[:cut][::-1], TEXT[cut:][::-1]),
    }
    monkeypatch.setattr(charlm, "load_corpus", lambda name, *a: corpora[name])
    monkeypatch.setattr(charlm.runs, "resolve_paths", lambda *a: None)
    results = {}
    for name, reverse in (("plain", True), ("reversed", False)):
        config = charlm.Config()
        config.data.dataset = name
        for key, value in (("batch_size", 2), ("bptt", 16), ("steps_per_epoch", 3), ("eval_batch_size", 2)):
            setattr(config.data, key, value)
        config.model.hidden_size, config.model.embedding_dim, config.model.reverse = 16, 8, reverse
        config.train.epochs, config.train.budget_s, config.train.progress = 2, None, False
        results[name] = charlm.train(config, tmp_path / name)
    backward, forward = results["plain"], results["reversed"]
    drop_time = lambda row: {k: v for k, v in row.items() if k != "time"}  # noqa: E731
    assert drop_time(backward.valid_metrics) == drop_time(forward.valid_metrics)
    assert backward.baseline["bpc"] == pytest.approx(forward.baseline["bpc"])
    a = load_checkpoint(backward.run_dir / "best")
    b = load_checkpoint(forward.run_dir / "best")
    assert all(a.state_dict[k].equal(b.state_dict[k]) for k in a.state_dict)
    assert a.meta["config"]["model"]["reverse"] is True and b.meta["config"]["model"]["reverse"] is False
    assert a.meta["vocab"] == b.meta["vocab"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dyn")
    path = folder / "text.txt"
    path.write_text(TEXT, encoding="utf-8")
    args = [*TINY_DATA, "train.epochs=3", "model.hidden_size=32"]
    assert main(["train", "charlm", "--data", str(path), "--out", str(folder / "run"), *args]) == 0
    return folder / "run"


def test_dynamic_evaluation_is_its_own_figure(trained, capsys):
    assert main(["evaluate", str(trained), "--dynamic-eval", "0.5"]) == 0
    out = capsys.readouterr().out
    assert "baseline:" in out and "dynamic evaluation (SGD lr 0.5" in out
    result = charlm.evaluate(trained, dynamic_lr=0.5)
    assert (
        result["dynamic"]["bpc"] != result["bpc"] and result["dynamic"]["characters"] == result["characters"]
    )
    assert math.isfinite(result["baseline"]["bpc"])
    assert "dynamic" not in charlm.evaluate(trained)  # static by default


def test_dynamic_evaluation_scores_before_it_learns(trained):
    """lr=0 is the static score exactly; on text that repeats, adapting lowers the bits; the run's model
    itself is left unchanged."""
    from rnnlab.inference.sampler import Sampler

    sampler = Sampler.from_checkpoint(trained)
    before = {k: v.clone() for k, v in sampler.model.state_dict().items()}
    ids = torch.tensor(sampler.vocab.encode(list(TEXT[:600] * 2)))
    static = charlm.score_ids(sampler.model, ids, 2, 32)
    zero = charlm.score_ids_dynamic(sampler.model, ids, 2, 32, 0.0)
    assert zero["loss"] == pytest.approx(static["loss"], rel=1e-6)
    adapted = charlm.score_ids_dynamic(sampler.model, ids, 2, 32, 1.0)
    assert adapted["loss"] < static["loss"]
    assert all(v.equal(sampler.model.state_dict()[k]) for k, v in before.items())
    with pytest.raises(ValueError, match="dynamic_lr: expected a learning rate >= 0"):
        charlm.score_ids_dynamic(sampler.model, ids, 2, 32, -1.0)


def test_dynamic_eval_is_refused_for_other_tasks(tmp_path, capsys):
    run = tmp_path / "r"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"task": "sentiment"}))
    assert main(["evaluate", str(run), "--dynamic-eval"]) == 2
    assert "--dynamic-eval applies to charlm runs only" in capsys.readouterr().err


def test_a_model_needs_its_size_resolved():
    CharLMConfig(vocab_size=10, hidden_size=0).validate()  # 0: left to the task's rule
    with pytest.raises(
        ValueError, match="model.hidden_size: expected an integer >= 1 \\(0 is resolved by the task"
    ):
        CharLM(CharLMConfig(vocab_size=10, hidden_size=0))
