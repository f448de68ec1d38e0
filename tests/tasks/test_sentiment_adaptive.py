"""The data-adaptive epoch rule of the sentiment task: small training sets (1,000 texts and more) train at
least ``data.min_train_steps`` optimizer steps; the resolved epoch count is what the run records. The rule
adapts only what the user left at its default: a value the user sets wins, on the command line and in
Python alike."""

from __future__ import annotations

import json

import pytest
from task_testing import cli, write_reviews

from rnnlab.tasks import sentiment
from rnnlab.tasks.config import ConfigError, apply_overrides
from rnnlab.tasks.sentiment import ADAPT_MIN_TEXTS, adapt_epochs

TINY = ["model.embedding_dim=4", "model.hidden_size=4", "model.attention_size=4", "model.ngram_buckets=64"]
TINY += ["model.ngram_dim=4", "data.min_freq=1", "train.progress=false", "data.baseline=false"]
# train.epochs stays at its default (6) unless a test sets it: the rule adapts defaults only


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
    rows = 1200  # 1,080 training texts: 3 batches of 400 an epoch; 6 epochs are 18 steps, short of 21
    result = _train(tmp_path, rows, "data.batch_size=400", "data.min_train_steps=21", "train.patience=none")
    assert len(result.history) == 7
    saved = json.loads((tmp_path / "run" / "config.json").read_text(encoding="utf-8"))
    assert saved["train"]["epochs"] == 7  # the resolved count is what the run records, and why
    why = "1080 training texts, 3 batches an epoch: data.min_train_steps=21"
    assert saved["adapted"] == {"train.epochs": {"from": 6, "to": 7, "why": why}}  # patience was set: kept
    assert f"note: train.epochs 6 -> 7 ({why}; set train.epochs yourself" in capsys.readouterr().err


def test_patience_grows_with_the_epochs_when_left_at_its_default(tmp_path):
    _train(tmp_path, 1200, "data.batch_size=400", "data.min_train_steps=27")
    saved = json.loads((tmp_path / "run" / "config.json").read_text(encoding="utf-8"))
    assert (saved["train"]["epochs"], saved["train"]["patience"]) == (9, 3)  # a third of the epochs
    assert saved["adapted"]["train.patience"] == {"from": 2, "to": 3, "why": "a third of train.epochs"}


def test_epochs_the_user_sets_in_python_win_over_the_rule(tmp_path, capsys):
    result = _train(tmp_path, 1200, "data.batch_size=400", "data.min_train_steps=9", "train.epochs=1")
    assert len(result.history) == 1
    saved = json.loads((tmp_path / "run" / "config.json").read_text(encoding="utf-8"))
    assert (saved["train"]["epochs"], saved["adapted"]) == (1, {})
    err = capsys.readouterr().err
    assert "note: train.epochs=1 as set (the small-data rule would give 3: 1080 training texts" in err
    assert "train.epochs 1 ->" not in err


def test_epochs_the_user_sets_on_the_command_line_win_over_the_rule(tmp_path, capsys):
    data = write_reviews(tmp_path / "reviews.csv", n=1200)
    args = ["train", "sentiment", "--data", data, "--out", tmp_path / "run", *TINY]
    code, _, err = cli(capsys, *args, "data.batch_size=400", "data.min_train_steps=9", "train.epochs=1")
    assert code == 0, err
    history = (tmp_path / "run" / "metrics.csv").read_text(encoding="utf-8").strip().splitlines()
    assert len(history) == 2  # the header and one epoch
    assert "train.epochs=1 as set (the small-data rule would give 3" in err


def test_below_the_size_floor_and_with_the_rule_off_nothing_changes(tmp_path, capsys):
    rows = ADAPT_MIN_TEXTS  # 900 training texts: below the floor
    result = _train(tmp_path / "a", rows, "data.batch_size=400", "data.min_train_steps=99", "train.epochs=1")
    assert len(result.history) == 1
    result = _train(tmp_path / "b", 1200, "data.batch_size=400", "data.min_train_steps=0", "train.epochs=1")
    assert len(result.history) == 1
    assert "train.epochs" not in capsys.readouterr().err


def test_a_negative_step_floor_is_refused():
    with pytest.raises(ConfigError, match="data.min_train_steps: expected >= 0, received -1"):
        config = apply_overrides(sentiment.SentimentConfig(), ["data.min_train_steps=-1"])
        sentiment.train(config, "unused")
