"""The sentiment task through the command line: train -> evaluate -> predict -> plot on a tiny CSV; resume
after an interruption equals an uninterrupted run; every bad input gets a one-line error, runs intact."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file
from task_testing import write_reviews

from rnnlab.cli import main
from rnnlab.training.trainer import Trainer

# One worker runs this module under `pytest -n 2 --dist loadgroup`, so the tiny run is trained once.
pytestmark = pytest.mark.xdist_group("sentiment_cli")

TINY = ["model.embedding_dim=8", "model.hidden_size=8", "model.attention_size=8", "data.batch_size=16"]
TINY += ["model.ngram_buckets=64", "model.ngram_dim=4"]  # a small wide part: these tests are about the CLI
TINY += ["data.min_freq=1", "train.epochs=2", "train.lr=0.01", "train.progress=false"]


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def _rows(path: Path) -> list[dict]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))


def _snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in folder.rglob("*")
        if p.is_file()
    }


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_reviews(tmp_path_factory.mktemp("data") / "reviews.csv")


@pytest.fixture(scope="module")
def run(tmp_path_factory, data) -> Path:
    out = tmp_path_factory.mktemp("runs") / "tiny"
    assert main(["train", "sentiment", "--data", str(data), "--out", str(out), *TINY]) == 0
    return out


def test_train_writes_a_complete_run(run):
    for name in (
        "config.json",
        "run.json",
        "metrics.csv",
        "best/model.safetensors",
        "best/meta.json",
        "last",
    ):
        assert (run / name).exists(), name
    config = json.loads((run / "config.json").read_text(encoding="utf-8"))
    assert config["model"]["hidden_size"] == 8 and config["model"]["vocab_size"] > 2  # overrides, resolved
    rows = _rows(run / "metrics.csv")
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert {"accuracy", "macro_f1", "cm_neg_neg", "cm_neg_pos", "cm_pos_neg", "cm_pos_pos"} <= set(rows[0])
    assert {"train_loss", "valid_loss"} <= set(rows[0]) and "loss" not in rows[0]  # the shared names
    assert (
        sum(float(rows[0][f"cm_{a}_{b}"]) for a in ("neg", "pos") for b in ("neg", "pos")) == 8
    )  # 10% of 80
    split = json.loads((run / "run.json").read_text(encoding="utf-8"))["data"]
    assert (
        split["train"]["size"] == 72
        and split["valid"]["size"] == 8
        and len(split["valid"]["fingerprint"]) == 16
    )


def test_evaluate_prints_metrics_and_json(run, capsys):
    code, out, _ = _cli(capsys, "evaluate", run, "--json")
    result = json.loads(out)
    assert code == 0 and 0 <= result["accuracy"] <= 1 and 0 <= result["macro_f1"] <= 1
    assert result["n"] == 8 and sum(map(sum, result["confusion_matrix"])) == 8
    code, out, _ = _cli(capsys, "evaluate", run)
    assert code == 0 and "accuracy:" in out and "confusion matrix" in out and "macro-F1:" in out


def test_evaluate_on_another_file(run, tmp_path, capsys):
    other = write_reviews(tmp_path / "other.csv", n=30, seed=5)
    code, out, _ = _cli(capsys, "evaluate", run, "--data", other, "--json")
    assert code == 0 and json.loads(out)["n"] == 30


def test_predict_json_has_labels_probabilities_and_attention(run, capsys):
    code, out, _ = _cli(capsys, "predict", run, "--json", "这个东西很好用，物流也快", "质量太差了")
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(lines) == 2
    for r in lines:
        assert r["label"] in ("neg", "pos") and sum(r["probabilities"].values()) == pytest.approx(1.0)
        assert len(r["attention"]) == len(r["tokens"]) and sum(r["attention"]) == pytest.approx(1.0)
    assert lines[1]["tokens"] == list("质量太差了")


def test_predict_reads_stdin(run, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("很棒\n\n太差\n"))
    code, out, _ = _cli(capsys, "predict", run)
    assert code == 0 and [line.split("\t")[2] for line in out.splitlines()] == ["很棒", "太差"]


def test_plots_are_png_files(run, tmp_path, capsys):
    for args in (
        ["attention", run, "这个东西很好用", "-o", tmp_path / "a.png"],
        ["curves", run, "-o", tmp_path / "c.png"],
    ):
        code, _, err = _cli(capsys, "plot", *args)
        assert code == 0, err
        assert args[-1].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_console_script(run):
    result = subprocess.run(
        [str(Path(sys.executable).parent / "rnnlab"), "predict", str(run), "好用"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\t")[0] in ("neg", "pos")


def test_the_same_steps_from_python(data, tmp_path):
    from rnnlab.inference import Predictor
    from rnnlab.tasks import get_task
    from rnnlab.tasks.config import apply_overrides

    sentiment = get_task("sentiment")
    config = apply_overrides(sentiment.SentimentConfig(), [f"data.dataset={data}", *TINY])
    result = sentiment.train(config, tmp_path / "py")
    assert result.best_epoch in (1, 2) and result.test_metrics is None  # a file: validation split only
    assert sentiment.evaluate(tmp_path / "py")["accuracy"] == pytest.approx(result.valid_metrics["accuracy"])
    (r,) = Predictor.from_checkpoint(tmp_path / "py").predict(["很好用"])
    assert r["label"] in ("neg", "pos") and len(r["attention"]) == 3


def test_resume_after_an_interruption_equals_an_uninterrupted_run(data, tmp_path, capsys, monkeypatch):
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    assert main(["train", "sentiment", "--data", str(data), "--out", str(whole), *TINY]) == 0
    original_save = Trainer._save

    def save_then_interrupt(self, *args, **kwargs):  # Ctrl-C right after the first epoch's checkpoint
        original_save(self, *args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "_save", save_then_interrupt)
    assert main(["train", "sentiment", "--data", str(data), "--out", str(cut), *TINY]) == 130
    monkeypatch.setattr(Trainer, "_save", original_save)
    assert len((cut / "metrics.csv").read_text().splitlines()) == 2  # header + epoch 1
    assert main(["train", "sentiment", "--out", str(cut), "--resume"]) == 0
    for checkpoint in ("best", "last"):
        a, b = (
            load_file(whole / checkpoint / "model.safetensors"),
            load_file(cut / checkpoint / "model.safetensors"),
        )
        assert a.keys() == b.keys() and all(a[k].equal(b[k]) for k in a), checkpoint
    rows = [_rows(r / "metrics.csv") for r in (whole, cut)]
    for row in rows:
        for r in row:
            r.pop("time")
    assert rows[0] == rows[1]
    capsys.readouterr()


# -- bad input: one clear line on stderr, exit status 2, no traceback, earlier runs untouched ---------------


def _bad(capsys, run: Path, *args, match: str) -> None:
    before = _snapshot(run)
    code, _, err = _cli(capsys, *args)
    assert code == 2, err
    assert err.startswith("rnnlab: error: ") and match in err, err
    assert "Traceback" not in err
    assert _snapshot(run) == before


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ("model.hidden_size=0", "model.hidden_size: expected an integer >= 1, received 0"),
        ("train.lr=-1", "lr must be > 0, got -1.0"),
        ("data.max_len=0", "data.max_len: expected a value in [1, 100000], received 0"),
        ("data.valid_fraction=0.9", "data.valid_fraction: expected a value in [0.01, 0.5], received 0.9"),
        ("model.dropout=1.5", "model.dropout: expected a probability in [0, 1), received 1.5"),
        ("train.epochs=two", "train.epochs: expected an integer, received 'two'"),
        ("model.hiden_size=3", "unknown config key 'model.hiden_size'; did you mean 'model.hidden_size'?"),
        ("model.cell=transformer", "received 'transformer'"),
        ("data.n_train=-5", "data.n_train: expected >= 1 or none, received -5"),
        ("data.batch_size=0", "data.batch_size: expected a value in [1, 8192], received 0"),
        ("model.vocab_size=10", "model.vocab_size is derived from the data"),
        ("model.num_classes=3", "model.num_classes is derived from the data"),
    ],
)
def test_bad_override(run, data, tmp_path, capsys, override, match):
    _bad(capsys, run, "train", "sentiment", "--data", data, "--out", tmp_path / "new", override, match=match)
    assert not (tmp_path / "new").exists()


def test_bad_training_files(run, tmp_path, capsys):
    missing = tmp_path / "missing_column.csv"
    missing.write_text("review,label\n很好,pos\n", encoding="utf-8")
    gbk = tmp_path / "gbk.csv"
    gbk.write_bytes(b"text,label\n" + "质量太差了,neg\n".encode("gbk"))
    one = write_reviews(tmp_path / "one_class.csv", n=20, labels=("pos",))
    blank = tmp_path / "blank.csv"
    blank.write_text("text,label\n很好,pos\n  ,neg\n", encoding="utf-8")
    cases = [
        (missing, "missing text column 'text'; columns found: 'review', 'label'"),
        (gbk, "not UTF-8 text"),
        (one, "training needs at least 2 classes, found only 'pos'"),
        (blank, "row 3: empty text in column 'text'"),
        (tmp_path / "nowhere.csv", "is neither a bundled data set (reviews-zh, movies-en) nor a file"),
    ]
    for path, match in cases:
        _bad(capsys, run, "train", "sentiment", "--data", path, "--out", tmp_path / "new", match=match)
    assert not (tmp_path / "new").exists()


def test_training_into_an_existing_run_needs_resume_or_overwrite(run, data, capsys):
    _bad(capsys, run, "train", "sentiment", "--data", data, "--out", run, *TINY, match="already holds a run")


def test_resume_without_a_run(run, tmp_path, capsys):
    _bad(capsys, run, "train", "sentiment", "--out", tmp_path, "--resume", match="holds no interrupted run")


def test_unseen_label_at_evaluation(run, tmp_path, capsys):
    three = write_reviews(tmp_path / "three.csv", n=12, labels=("neg", "pos", "meh"))
    _bad(capsys, run, "evaluate", run, "--data", three, match="labels ['meh'] were never seen in training")


@pytest.mark.parametrize("text", ["", "   "])
def test_empty_text_to_predict(run, capsys, text):
    _bad(capsys, run, "predict", run, "好", text, match="text 2: empty or whitespace-only text")


def test_no_text_on_stdin(run, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n  \n"))
    _bad(capsys, run, "predict", run, match="no texts; pass them as arguments or on stdin")


def test_a_very_long_text_is_truncated_with_a_note(run, capsys):
    code, out, err = _cli(capsys, "predict", run, "--json", "好" * 20_000)
    result = json.loads(out)
    assert code == 0 and result["truncated"] and len(result["tokens"]) == 256
    assert "note: text 1 has 20000 tokens; the model read the first 256 (data.max_len)" in err


def test_missing_or_corrupted_checkpoint(run, tmp_path, capsys):
    _bad(capsys, run, "predict", tmp_path / "nowhere", "好", match="no such run folder")
    _bad(capsys, run, "evaluate", tmp_path, match="not an rnnlab run folder")
    broken = tmp_path / "broken"
    shutil.copytree(run, broken)
    (broken / "best" / "model.safetensors").write_bytes(b"not safetensors")
    _bad(capsys, run, "predict", broken, "好", match="model.safetensors is corrupted")
    shutil.rmtree(broken / "best")
    _bad(capsys, run, "evaluate", broken, match="has no best/ checkpoint")
