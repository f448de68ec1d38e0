"""The transfer step any task can call: read charlm run folders as pretrained encoders, fit the model's sizes
to them, copy their weights in (:func:`rnnlab.models.transfer.load_encoder`).

``model.init`` (``rnnlab train sentiment --init RUN``) names one charlm run folder (a forward LM) or two,
``FWD,BWD`` (a forward and a backward LM, the backward one with ``model.reverse=true`` in its
``config.json``). Each run's ``best/`` checkpoint is read.

The sizes rule: a model size the user left at its default (``embedding_dim``, ``hidden_size``,
``num_layers``, ``cell``; ``bidirectional`` with two LMs) takes the LM's value, with a note; a size the user
set must match the LM's, or :func:`~rnnlab.models.transfer.load_encoder` raises naming both sides.
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

from rnnlab.data import DataError
from rnnlab.models.transfer import PretrainedLM, matching_sizes
from rnnlab.training.checkpoint import CheckpointError, load_checkpoint

__all__ = ["parse_init", "read_pretrained", "adopt_sizes"]


def parse_init(init: str, key: str = "model.init") -> list[Path]:
    """``"FWD"`` or ``"FWD,BWD"`` -> the run folders, resolved; a user error naming ``key`` otherwise."""
    parts = [p.strip() for p in init.split(",")]
    if not 1 <= len(parts) <= 2 or not all(parts):
        raise DataError(f"{key}: expected a charlm run folder or two, FWD,BWD; received {init!r}")
    paths = [Path(p).expanduser().resolve() for p in parts]
    for path in paths:
        if not (path / "best").is_dir():
            raise DataError(f"{key}: {path} is not a charlm run folder (no best/ checkpoint)")
    return paths


def read_pretrained(init: str, key: str = "model.init") -> tuple[PretrainedLM, PretrainedLM | None]:
    """The forward LM and the backward one (or None) named by ``init`` (see :func:`parse_init`)."""
    lms = []
    for path in parse_init(init, key):
        try:
            checkpoint = load_checkpoint(path / "best")
        except CheckpointError as err:
            raise DataError(f"{key}: {err}") from None
        config_file = path / "config.json"
        run_config = json.loads(config_file.read_text(encoding="utf-8")) if config_file.is_file() else None
        try:
            lms.append(PretrainedLM.from_checkpoint(checkpoint, run_config, source=str(path)))
        except ValueError as err:
            raise DataError(f"{key}: {err}") from None
    if len(lms) == 2 and lms[0].reverse and not lms[1].reverse:
        raise DataError(f"{key}: {lms[0].source} is the backward LM and {lms[1].source} the forward one; "
                        "give the forward LM first: FWD,BWD")  # fmt: skip
    return lms[0], (lms[1] if len(lms) == 2 else None)


def adopt_sizes(model_config, forward: PretrainedLM, backward: PretrainedLM | None) -> dict:
    """Set the sizes ``model_config`` left at their defaults to the LMs' (in place); returns
    ``{key: {"from": old, "to": new}}`` of what changed. Sizes the user set are left for load_encoder to
    check."""
    defaults = {f.name: f.default for f in fields(model_config)}
    changed = {}
    try:
        sizes = matching_sizes(forward, backward)
    except ValueError as err:
        raise DataError(f"model.init: {err}") from None
    for name, value in sizes.items():
        old = getattr(model_config, name)
        if old == defaults[name] and old != value:
            setattr(model_config, name, value)
            changed[f"model.{name}"] = {"from": old, "to": value}
    return changed
