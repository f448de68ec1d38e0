"""Atomic, self-describing checkpoints that load without executing code.

A checkpoint is a directory::

    <path>/
        model.safetensors   weights (safetensors: a flat tensor table, no pickle)
        meta.json           {"format": "rnnlab-checkpoint", "version": 1, ...the caller's meta}
        trainer_state.pt    optional: optimizer / step / RNG states, read with torch.load(weights_only=True)

Atomicity. Every file is first written into a hidden temporary sibling directory and fsynced. The swap is
then ``os.replace(path, <path>.old)``, ``os.replace(tmp, path)``, fsync of the parent, and removal of
``<path>.old``. POSIX cannot atomically replace a non-empty directory, so there is one window, between the two
``rename`` calls, during which ``path`` does not exist; a crash exactly there leaves the previous, complete
checkpoint at ``<path>.old``, and :func:`load_checkpoint` (and the next :func:`save_checkpoint`) restore it
from there. At no point can a reader see a half-written checkpoint at ``path``.

:func:`atomic_write_bytes` / :func:`atomic_write_text` give the same guarantee for single files (metrics CSVs,
config JSON, plots): a temporary sibling file, fsync, ``os.replace``.
"""

from __future__ import annotations

import io
import json
import os
import random
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

__all__ = [
    "FORMAT",
    "VERSION",
    "Checkpoint",
    "CheckpointError",
    "save_checkpoint",
    "load_checkpoint",
    "atomic_write_bytes",
    "atomic_write_text",
    "get_rng_state",
    "set_rng_state",
]

FORMAT = "rnnlab-checkpoint"
VERSION = 1
WEIGHTS_FILE = "model.safetensors"
META_FILE = "meta.json"
TRAINER_STATE_FILE = "trainer_state.pt"
_RESERVED_META_KEYS = ("format", "version")


class CheckpointError(RuntimeError):
    """A checkpoint directory is missing, incomplete, corrupted or of an unknown format."""


@dataclass
class Checkpoint:
    """What :func:`load_checkpoint` returns.

    Attributes:
        path: the checkpoint directory that was read.
        state_dict: parameter / buffer name -> tensor (on the requested device), ready for
            ``model.load_state_dict(state_dict, strict=True)``.
        meta: the caller's JSON meta exactly as passed to :func:`save_checkpoint` (without the format keys).
        trainer_state: the optimizer / RNG state dict (on the CPU), or None when none was saved.
    """

    path: Path
    state_dict: dict[str, Tensor]
    meta: dict[str, Any]
    trainer_state: dict[str, Any] | None = None


def _fsync_dir(path: Path) -> None:
    """Persist a directory entry (the rename itself); a no-op where directories cannot be opened (Windows)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` so that readers see either the old file or the complete new one.

    Creates missing parent directories. Returns the path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_name, path)
    except BaseException:  # KeyboardInterrupt included: never leave the temporary file behind
        Path(tmp_name).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8") -> Path:
    """:func:`atomic_write_bytes` for text (UTF-8 by default, ``\\n`` line endings kept as given)."""
    return atomic_write_bytes(path, text.encode(encoding))


def _storage_key(t: Tensor) -> tuple[str, int]:
    return (str(t.device), t.untyped_storage().data_ptr())


def _to_savable(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Detach to CPU and give every tensor its own storage.

    safetensors refuses tensors that share memory (tied weights such as a language model's embedding and
    output matrix) and views into a larger storage. Those are cloned, so each name is written in full; on
    load, ``load_state_dict`` copies the identical values into the still-tied parameter: tying round trips.
    """
    counts: dict[tuple[str, int], int] = {}
    for t in state.values():
        counts[_storage_key(t)] = counts.get(_storage_key(t), 0) + 1
    out = {}
    for name, t in state.items():
        shared = counts[_storage_key(t)] > 1
        partial = t.untyped_storage().nbytes() != t.numel() * t.element_size()
        t = t.detach()
        if shared or partial or not t.is_contiguous():
            t = t.contiguous().clone()
        out[name] = t.cpu()
    return out


def _recover_interrupted_swap(path: Path) -> None:
    """If a crash hit between the two renames of a swap, move the complete old checkpoint back into place."""
    old = path.with_name(path.name + ".old")
    if not path.exists() and old.is_dir():
        os.replace(old, path)
        _fsync_dir(path.parent)


def save_checkpoint(
    path: str | Path,
    model: nn.Module | dict[str, Tensor],
    meta: dict,
    optimizer_state: dict | None = None,
) -> Path:
    """Write a checkpoint directory at ``path`` atomically (see the module docstring) and return ``path``.

    Args:
        path: the checkpoint directory; its parent is created if missing, a previous checkpoint is replaced.
        model: a module (its ``state_dict()`` is saved; DDP is unwrapped) or a name -> tensor dict.
        meta: JSON-serializable dict (config, vocabulary, label names, metrics, epoch...). The keys
            ``"format"`` and ``"version"`` are reserved.
        optimizer_state: optional dict of optimizer / scheduler / RNG states (tensors, numbers, strings,
            lists, tuples, dicts only), saved with ``torch.save`` and read back with ``weights_only=True``.
    """
    path = Path(path)
    if isinstance(model, nn.parallel.DistributedDataParallel):
        model = model.module  # save the plain names, without DDP's "module." prefix
    if isinstance(model, nn.Module):
        state = model.state_dict()
    elif isinstance(model, dict):
        state = model
    else:
        raise TypeError(f"model must be an nn.Module or a dict of tensors, got {type(model).__name__}")
    bad = [k for k, v in state.items() if not isinstance(v, Tensor)]
    if bad:
        raise TypeError(f"model state must map names to tensors; not tensors: {bad[:5]}")
    if not isinstance(meta, dict):
        raise TypeError(f"meta must be a dict, got {type(meta).__name__}")
    clash = [k for k in _RESERVED_META_KEYS if k in meta]
    if clash:
        raise ValueError(f"meta keys {clash} are reserved for the checkpoint format; rename them")
    try:
        meta_text = json.dumps({"format": FORMAT, "version": VERSION, **meta}, indent=2, ensure_ascii=False)
    except (TypeError, ValueError) as e:
        raise TypeError(f"meta must be JSON-serializable: {e}") from e
    trainer_bytes = None
    if optimizer_state is not None:
        buf = io.BytesIO()
        torch.save(optimizer_state, buf)
        trainer_bytes = buf.getvalue()

    from safetensors.torch import save  # lazy: safetensors ships with the 'tasks' extra

    weights = save(_to_savable(state))

    path.parent.mkdir(parents=True, exist_ok=True)
    _recover_interrupted_swap(path)
    for stale in path.parent.glob(f".{path.name}.tmp-*"):  # left by a crash during an earlier save
        shutil.rmtree(stale, ignore_errors=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    old = path.with_name(path.name + ".old")
    try:
        tmp.mkdir()
        _write_synced(tmp / WEIGHTS_FILE, weights)
        _write_synced(tmp / META_FILE, meta_text.encode("utf-8"))
        if trainer_bytes is not None:
            _write_synced(tmp / TRAINER_STATE_FILE, trainer_bytes)
        _fsync_dir(tmp)
        if old.exists():  # a crash after the last swap's second rename left it; `path` is complete
            shutil.rmtree(old)
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)  # between the previous rename and this one, `path` is absent (see docstring)
        _fsync_dir(path.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        _recover_interrupted_swap(path)
        raise
    shutil.rmtree(old, ignore_errors=True)
    return path


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint`; no code from the files is executed.

    Raises:
        CheckpointError: naming the path, when the directory or a required file is missing, the weights are
            corrupted, ``meta.json`` is not valid JSON or has an unknown format / version, or the trainer
            state cannot be read with ``weights_only=True``.
    """
    path = Path(path)
    old = path.with_name(path.name + ".old")
    if not path.exists() and old.is_dir():
        path = old  # a save was interrupted between its two renames; the old checkpoint is complete
    if not path.is_dir():
        what = "is not a directory" if path.exists() else "does not exist"
        raise CheckpointError(f"checkpoint {str(path)!r} {what}")
    for name in (WEIGHTS_FILE, META_FILE):
        if not (path / name).is_file():
            raise CheckpointError(f"checkpoint {str(path)!r} is incomplete: {name} is missing")

    try:
        meta = json.loads((path / META_FILE).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"checkpoint {str(path)!r}: {META_FILE} is not valid JSON ({e})") from e
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        got = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise CheckpointError(
            f"checkpoint {str(path)!r}: expected format {FORMAT!r} in {META_FILE}, got {got!r}"
        )
    if meta.get("version") != VERSION:
        raise CheckpointError(
            f"checkpoint {str(path)!r}: format version {meta.get('version')!r} is not supported "
            f"(this rnnlab reads version {VERSION})"
        )
    for key in _RESERVED_META_KEYS:
        meta.pop(key)

    from safetensors.torch import load

    try:
        state_dict = load((path / WEIGHTS_FILE).read_bytes())
    except Exception as e:  # safetensors raises its own SafetensorError (and others) on bad bytes
        raise CheckpointError(f"checkpoint {str(path)!r}: {WEIGHTS_FILE} is corrupted ({e})") from e
    state_dict = {k: v.to(device) for k, v in state_dict.items()}

    trainer_state = None
    if (path / TRAINER_STATE_FILE).is_file():
        try:
            # always on the CPU: RNG states must stay there, and optimizers move their state to the parameters
            trainer_state = torch.load(path / TRAINER_STATE_FILE, map_location="cpu", weights_only=True)
        except Exception as e:
            raise CheckpointError(
                f"checkpoint {str(path)!r}: {TRAINER_STATE_FILE} cannot be read with weights_only=True ({e})"
            ) from e
    return Checkpoint(path=path, state_dict=state_dict, meta=meta, trainer_state=trainer_state)


def get_rng_state() -> dict:
    """The torch (CPU, CUDA), numpy and python RNG states, as ``torch.load(weights_only=True)`` reads."""
    np_state = np.random.get_state()  # ('MT19937', key (624,) uint32, pos, has_gauss, cached_gaussian)
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "python": random.getstate(),
    }


def set_rng_state(state: dict) -> None:
    """Restore the RNG states captured by :func:`get_rng_state`."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    name, key, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, np.asarray(key, dtype=np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
