"""Pretraining with the charlm task as the engine: two ordinary charlm runs (forward, backward) on general
lines plus the sentiment training split, never a validation text (planted on purpose, dropped), cached (a
second call trains nothing), resumable (an interrupted call ends as an unbroken one)."""

from __future__ import annotations

import json

import pytest

from rnnlab.cli import main
from rnnlab.tasks import charlm, pretrain, sentiment
from rnnlab.training import Trainer, load_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")

GOOD = ["物流很快，东西很好", "质量不错，很喜欢", "屏幕清楚，速度快", "价格便宜，好用"]
BAD = ["用了两天就坏了", "质量太差，不喜欢", "屏幕有划痕", "客服不理人，失望"]
LM = ["data.batch_size=2", "data.bptt=16", "data.steps_per_epoch=3", "data.eval_batch_size=2",
      "data.baseline=false", "model.hidden_size=16", "model.embedding_dim=8", "train.epochs=2",
      "train.warmup_steps=0", "train.lr_schedule=constant", "train.progress=false"]  # fmt: skip


@pytest.fixture
def reviews(tmp_path):
    rows = [
        f"{t}{i},{label}"
        for i in range(12)
        for t, label in [(g, "pos") for g in GOOD] + [(b, "neg") for b in BAD]
    ]
    path = tmp_path / "reviews.csv"
    path.write_text("text,label\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def _lm():
    from rnnlab.tasks.config import apply_overrides

    return apply_overrides(pretrain.default_lm_config(), LM, charlm.DERIVED)


def _general(valid_text):
    news = [f"新闻第{i}句，今天天气很好，市场很热闹。" for i in range(60)]
    return {"news": [*news[:30], valid_text, *news[30:]]}


def test_two_runs_without_any_validation_text_then_the_cache(reviews, tmp_path, monkeypatch):
    data = sentiment.DataConfig(dataset=str(reviews))
    splits = sentiment.load_splits(data)
    planted = splits.valid.texts[0]
    result = pretrain.pretrain(data, 60.0, _lm(), general=_general(planted), cache=tmp_path / "cache")
    assert not result.cached
    text = (result.folder / "text.txt").read_text(encoding="utf-8")
    assert planted not in text and not any(t in text.splitlines() for t in splits.valid.texts)
    assert all(t in text for t in splits.train.texts[:5]) and "新闻第0句" in text
    assert result.info["text"]["sources"]["news"]["dropped"] == 1
    for run_dir, reverse in ((result.forward, False), (result.backward, True)):
        ckpt = load_checkpoint(
            run_dir / "best"
        )  # an ordinary charlm checkpoint: weights + config + vocabulary
        assert ckpt.meta["task"] == "charlm" and ckpt.meta["config"]["model"]["reverse"] is reverse
        assert "embedding.weight" in ckpt.state_dict and ckpt.meta["vocab"]["tokens"][:2] == [
            "<pad>",
            "<unk>",
        ]
        assert charlm.load_run_config(run_dir).train.budget_s == 30.0  # half the budget each

    def no_training(*a, **kw):
        raise AssertionError("a cached call must not train")

    monkeypatch.setattr(charlm, "train", no_training)
    again = pretrain.pretrain(data, 60.0, _lm(), general=_general(planted), cache=tmp_path / "cache")
    assert again.cached and again.forward == result.forward and again.info == result.info
    other = pretrain.pretrain  # another budget is another key: it would train
    with pytest.raises(AssertionError, match="must not train"):
        other(data, 30.0, _lm(), general=_general(planted), cache=tmp_path / "cache")


def test_an_interrupted_pretraining_resumes_to_the_same_weights(reviews, tmp_path, monkeypatch):
    data = sentiment.DataConfig(dataset=str(reviews))
    general = _general("无关的一句话")
    whole = pretrain.pretrain(data, 60.0, _lm(), general=general, cache=tmp_path / "whole")
    original_save = Trainer._save
    saves = []

    def save_then_interrupt(self, *a, **kw):
        original_save(self, *a, **kw)
        saves.append(1)
        if len(saves) == 3:  # the forward LM's 2 epochs, then the backward LM's first
            raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "_save", save_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        pretrain.pretrain(data, 60.0, _lm(), general=general, cache=tmp_path / "cut")
    monkeypatch.setattr(Trainer, "_save", original_save)
    cut = pretrain.pretrain(data, 60.0, _lm(), general=general, cache=tmp_path / "cut")
    assert not cut.cached
    for a_dir, b_dir in ((whole.forward, cut.forward), (whole.backward, cut.backward)):
        a, b = load_checkpoint(a_dir / "best").state_dict, load_checkpoint(b_dir / "best").state_dict
        assert all(a[k].equal(b[k]) for k in a)


def test_the_command_line_prints_both_runs(reviews, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(pretrain, "general_lines", lambda language: _general("一句话"))
    args = [
        "pretrain",
        "sentiment",
        "--data",
        str(reviews),
        "--budget-s",
        "60",
        "--cache",
        str(tmp_path),
        *LM,
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "forward LM:" in out and "backward LM:" in out and "(trained;" in out
    assert main(args) == 0
    assert "(cached;" in capsys.readouterr().out
    folder = next((tmp_path / "pretrain").iterdir())
    assert json.loads((folder / "pretrain.json").read_text())["runs"]["backward"]["valid"]["bpc"] > 0
