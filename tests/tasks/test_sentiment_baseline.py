"""The TF-IDF + logistic-regression baseline `rnnlab train sentiment` reports beside its own accuracy: its
n-grams, that it learns, that it is fit and scored on the run's own split, and the note when scikit-learn
is missing."""

from __future__ import annotations

import json

import pytest
from task_testing import write_reviews

from rnnlab.cli import main
from rnnlab.data import CharTokenizer, WordTokenizer
from rnnlab.tasks import sentiment
from rnnlab.tasks.config import apply_overrides
from rnnlab.training import linear_baseline
from rnnlab.training.linear_baseline import token_ngrams

pytest.importorskip("sklearn")

TINY = ["model.embedding_dim=8", "model.hidden_size=8", "model.attention_size=8", "data.batch_size=16"]
TINY += ["model.ngram_buckets=64", "model.ngram_dim=4"]  # a small wide part (the default table is 2^18 rows)
TINY += ["data.min_freq=1", "train.epochs=1", "train.lr=0.01", "train.progress=false"]


def test_token_ngrams_by_hand():
    assert token_ngrams(["a", "b", "c"], 3) == ["a", "b", "c", "a b", "b c", "a b c"]
    assert token_ngrams(["a"], 2) == ["a"]  # no bigram in a one-token text
    with pytest.raises(ValueError, match="ngram_max: expected an integer >= 1, received 0"):
        token_ngrams(["a"], 0)


def test_the_baseline_learns_the_cue_words(tmp_path):
    """On reviews whose label is one cue word among random filler, held-out accuracy is far above chance,
    and with the labels shuffled against the texts it is not."""
    import csv

    with write_reviews(tmp_path / "r.csv", n=300).open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    texts, labels = [r["text"] for r in rows], [r["label"] for r in rows]
    fit = linear_baseline.tfidf_logistic_regression(
        texts[:200], labels[:200], texts[200:], labels[200:], CharTokenizer(), 3
    )
    assert fit["accuracy"] > 0.9 and fit["n"] == 100 and "1-3-grams" in fit["model"]
    shuffled = labels[:200][1:] + labels[:1]  # every text paired with its neighbour's label
    chance = linear_baseline.tfidf_logistic_regression(
        texts[:200], shuffled, texts[200:], labels[200:], CharTokenizer(), 3
    )
    assert chance["accuracy"] < 0.75


def test_one_class_is_an_error():
    with pytest.raises(ValueError, match=r"train_labels: expected at least 2 classes, received \['pos'\]"):
        linear_baseline.tfidf_logistic_regression(["good", "fine"], ["pos", "pos"], ["bad"], ["neg"],
                                                  WordTokenizer(), 2)  # fmt: skip


def test_train_reports_the_baseline_on_the_same_split(tmp_path, capsys):
    data = write_reviews(tmp_path / "reviews.csv", n=120)
    out = tmp_path / "run"
    assert main(["train", "sentiment", "--data", str(data), "--out", str(out), *TINY]) == 0
    printed = capsys.readouterr().out
    record = json.loads((out / "run.json").read_text(encoding="utf-8"))
    baseline = record["baseline"]
    assert baseline["split"] == "valid" and baseline["n"] == record["data"]["valid"]["size"] == 12
    assert 0.0 <= baseline["accuracy"] <= 1.0
    assert "baseline (TF-IDF 1-3-grams + logistic regression (C=4), same valid split): accuracy " in printed
    assert f"{baseline['accuracy']:.4f}" in printed


def test_without_scikit_learn_the_run_says_it_skipped(tmp_path, monkeypatch):
    monkeypatch.setattr(linear_baseline, "available", lambda: False)
    config = apply_overrides(
        sentiment.SentimentConfig(), [f"data.dataset={write_reviews(tmp_path / 'r.csv')}"]
    )
    config = apply_overrides(config, TINY)
    result = sentiment.train(config, tmp_path / "run")
    assert "scikit-learn is not installed" in result.baseline["skipped"]
    assert "baseline skipped: scikit-learn is not installed" in sentiment.summary(result)


def test_the_baseline_can_be_turned_off(tmp_path):
    config = apply_overrides(
        sentiment.SentimentConfig(), [f"data.dataset={write_reviews(tmp_path / 'r.csv')}"]
    )
    config = apply_overrides(config, [*TINY, "data.baseline=false"])
    result = sentiment.train(config, tmp_path / "run")
    assert result.baseline is None and "baseline" not in sentiment.summary(result)
    assert json.loads((tmp_path / "run" / "run.json").read_text(encoding="utf-8"))["baseline"] is None
