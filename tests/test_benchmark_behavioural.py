"""Smoke test of ``benchmarks/quality_sentiment.py --behavioural``: tiny sentiment runs scored on the
behavioural set beside the linear references fit on the run's own training split, one table row each and the
references once per split. The figures themselves belong to the real benchmark."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmark_loading import load_benchmark
from rnnlab.data.behavioural import PHENOMENA, load_behavioural, score_behavioural
from rnnlab.inference.predictor import Predictor
from rnnlab.tasks import sentiment
from rnnlab.tasks.config import apply_overrides
from tiny_runs import TINY_SENTIMENT, write_reviews

pytest.importorskip("sklearn")
pytestmark = pytest.mark.usefixtures("one_thread")

ROOT = Path(__file__).resolve().parents[1]


def _benchmark():
    return load_benchmark("quality_sentiment")


def _rows(markdown: str) -> list[list[str]]:
    lines = [line for line in markdown.splitlines()[2:] if line.startswith("| ")]  # past header and rule
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]


def test_behavioural_scores_runs_beside_the_linear_references(tmp_path, capsys):
    data = write_reviews(tmp_path / "reviews.csv", n=80)
    run_dirs = []
    for seed in (0, 1):  # two runs of one split: the references are fit once
        config = apply_overrides(
            sentiment.SentimentConfig(), [f"data.dataset={data}", f"train.seed={seed}", *TINY_SENTIMENT]
        )
        run_dirs.append(sentiment.train(config, tmp_path / f"run{seed}").run_dir)
    out = tmp_path / "behavioural.md"
    args = ["--behavioural", *map(str, run_dirs), "--behavioural-out", str(out), "--threads", "1"]
    markdown = _benchmark().main(args)
    assert out.read_text(encoding="utf-8") == markdown + "\n"
    rows = _rows(markdown)
    assert [row[0] for row in rows] == [
        "tfidf+svc",
        "tfidf+lr-c4",
        "run: run0 (from scratch)",
        "run: run1 (from scratch)",
    ]
    n = str(len(load_behavioural("zh")))
    assert all(row[1] == "reviews.csv (split seed 0)" and row[2] == "zh" and row[3] == n for row in rows)
    header = markdown.splitlines()[0]
    assert all(p in header for p in PHENOMENA) and "pairs both right" in header
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert len(printed) == 4
    for row, line in zip(printed, rows, strict=True):
        assert 0.0 <= row["pairs_both_right"] <= row["accuracy"] <= 1.0  # both right implies each right
        assert set(row["per_phenomenon"]) == set(PHENOMENA)
        assert f"{row['accuracy']:.3f}" == line[4]
        # accuracy is the mean of the phenomena (each has the same number of items)
        assert row["accuracy"] == pytest.approx(sum(row["per_phenomenon"].values()) / len(PHENOMENA))
    predictor = Predictor.from_checkpoint(run_dirs[1])  # the run's row is its own checkpoint's predictions
    direct = score_behavioural(lambda texts: [r["label"] for r in predictor.predict(texts)], "zh")
    assert {k: printed[3][k] for k in direct if k != "predictions"} == {
        k: v for k, v in direct.items() if k != "predictions"
    }


def test_behavioural_refuses_what_is_not_a_run(tmp_path):
    expected = r"--behavioural: expected sentiment run folders \(with config.json\), received \['"
    with pytest.raises(SystemExit, match=expected):
        _benchmark().main(["--behavioural", str(tmp_path), "--behavioural-out", str(tmp_path / "x.md")])
    assert not (tmp_path / "x.md").exists()
