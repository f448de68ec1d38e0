"""Tiny character LM runs made with the charlm task itself, for the transfer tests: a forward LM, and a
backward one trained on the reversed text and marked ``model.reverse=true`` in its config.json (the key the
pretraining runs carry)."""

from __future__ import annotations

import json
from pathlib import Path

from rnnlab.tasks import charlm
from rnnlab.tasks.config import apply_overrides, field_paths

__all__ = ["LM_TEXT", "TINY_LM", "train_lm"]

# The characters of tiny_runs.write_reviews' reviews (cues and filler), except a few: those start fresh.
LM_TEXT = "这个东西我们买了一次然后就是的还有好用很棒满意推荐太差失望退货很慢一般。\n" * 30
TINY_LM = ["data.batch_size=2", "data.bptt=16", "data.steps_per_epoch=2", "data.eval_batch_size=2",
           "data.eval_bptt=16", "model.embedding_dim=6", "model.hidden_size=8", "train.epochs=1",
           "train.warmup_steps=0", "train.progress=false"]  # fmt: skip


def train_lm(folder: Path, *overrides: str, reverse: bool = False, text: str = LM_TEXT) -> Path:
    """A charlm run in ``folder`` on ``text`` (reversed for a backward LM); returns the run folder."""
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "text.txt"
    native = "model.reverse" in field_paths(charlm.CharLMTaskConfig())  # the task reverses the text itself
    data.write_text(text[::-1] if reverse and not native else text, encoding="utf-8")
    flags = ["model.reverse=true"] if reverse and native else []
    config = apply_overrides(
        charlm.CharLMTaskConfig(), [f"data.dataset={data}", *TINY_LM, *flags, *overrides]
    )
    run = charlm.train(config, folder / "run").run_dir
    if reverse and not native:
        saved = json.loads((run / "config.json").read_text(encoding="utf-8"))
        saved["model"]["reverse"] = True
        (run / "config.json").write_text(json.dumps(saved, ensure_ascii=False), encoding="utf-8")
    return run
