"""The data-adaptive epoch rule of the sentiment task: small training sets (1,000 texts and more) train at
least ``data.min_train_steps`` optimizer steps; the resolved epoch count is what the run records."""

from __future__ import annotations

import json

import pytest
from task_testing import write_reviews

from rnnlab.tasks import sentiment
from rnnlab.tasks.config import ConfigError, apply_overrides
from rnnlab.tasks.sentiment import ADAPT_MIN_TEXTS, adapt_epochs

TINY = ["model.embedding_dim=4", "model.hidden_size=4", "model.attention_size=4", "model.ngram_buckets=64"]
TINY += [
    "model.ngram_dim=4",
    "data.min_freq=1",
    "train.epochs=1",
    "train.progress=false",
    "data.baseline=false",
]


def test_adapt_epochs_by_hand():
    assert adapt_epochs(6, 217, 600) == 6  # reviews-zh: 1,302 steps already
    assert adapt_epochs(6, 43, 600) == 14  # 3,000 sentences: ceil(600 / 43)
    assert adapt_epochs(6, 100, 600) == 6  # exactly enough
    assert adapt_epochs(6, 43, 0) == 6  # the rule off
    with pytest.raises(ValueError, match="batches_per_epoch: expected >= 1, received 0"):
        adapt_epochs(6, 0, 600)


def _train(tmp_path, rows: int, *overrides: str):
    tmp_path.mkdir(parents=True, exist_ok=True)
    data = write_reviews(tmp_path / "reviews.csv", n=rows)
    config = apply_overrides(sentiment.SentimentConfig(), [f"data.dataset={data}", *TINY, *overrides])
    return sentiment.train(config, tmp_path / "run")


def test_a_small_training_set_gets_more_epochs_and_the_run_says_so(tmp_path, capsys):
    rows = 1200  # 1,080 training texts
    result = _train(tmp_path, rows, "data.batch_size=400", "data.min_train_steps=9", "train.patience=none")
    assert len(result.history) == 3  # 3 batches an epoch, at least 9 steps
    saved = json.loads((tmp_path / "run" / "config.json").read_text(encoding="utf-8"))
    assert saved["train"]["epochs"] == 3  # the resolved count is what the run records
    assert (
        "1080 training texts; train.epochs 1 -> 3, train.patience None -> None (data.min_train_steps=9)"
        in (capsys.readouterr().err)
    )


def test_patience_grows_with_the_epochs(tmp_path):
    _train(tmp_path, 1200, "data.batch_size=400", "data.min_train_steps=18", "train.patience=1")
    saved = json.loads((tmp_path / "run" / "config.json").read_text(encoding="utf-8"))["train"]
    assert (saved["epochs"], saved["patience"]) == (6, 2)  # a third of the epochs


def test_below_the_size_floor_and_with_the_rule_off_nothing_changes(tmp_path, capsys):
    rows = ADAPT_MIN_TEXTS  # 900 training texts: below the floor
    result = _train(tmp_path / "a", rows, "data.batch_size=400", "data.min_train_steps=9")
    assert len(result.history) == 1
    result = _train(tmp_path / "b", 1200, "data.batch_size=400", "data.min_train_steps=0")
    assert len(result.history) == 1
    assert "train.epochs" not in capsys.readouterr().err


def test_a_negative_step_floor_is_refused():
    with pytest.raises(ConfigError, match="data.min_train_steps: expected >= 0, received -1"):
        config = apply_overrides(sentiment.SentimentConfig(), ["data.min_train_steps=-1"])
        sentiment.train(config, "unused")
