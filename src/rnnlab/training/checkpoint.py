"""Atomic, self-describing checkpoints that load without executing code.

A checkpoint is a directory::

    <path>/
        model.safetensors   weights (safetensors: a flat tensor table, no pickle)
        meta.json           {"format": "rnnlab-checkpoint", "version": 1, "sha256": {file: digest},
                            ...the caller's meta}
        trainer_state.pt    optional: optimizer / step / RNG states, read with torch.load(weights_only=True)

Integrity. ``meta.json``'s ``"sha256"`` maps each other file of the checkpoint to the SHA-256 digest of its
bytes, and :func:`load_checkpoint` checks them before parsing anything. A safetensors file is a JSON header
and raw tensor bytes: bytes overwritten inside the tensor data still parse, and the model would answer NaN
or nonsense without any error; the digest turns that into a :class:`CheckpointError`. (This detects damage,
not tampering: whoever can rewrite the weights can rewrite ``meta.json`` too. Refusing to run code is what
keeps a hostile checkpoint harmless: safetensors, JSON and ``weights_only=True``.) Checkpoints written before
the digests were added have no ``"sha256"`` key; they load, with a logged note that they cannot be verified.

Atomicity. Every file is first written into a hidden temporary sibling directory and fsynced. The swap is
then ``os.replace(path, <path>.old)``, ``os.replace(tmp, path)``, fsync of the parent, and removal of
``<path>.old``. POSIX cannot atomically replace a non-empty directory, so there is one window, between the two
``rename`` calls, during which ``path`` does not exist; a crash exactly there leaves the previous, complete
checkpoint at ``<path>.old``, and :func:`load_checkpoint` (and the next :func:`save_checkpoint`) restore it
from there. At no point can a reader see a half-written checkpoint at ``path``. Files and directories are
created with plain ``open`` / ``mkdir``, so their modes follow the umask (``0o644`` / ``0o755`` under
``022``).

:func:`atomic_write_bytes` / :func:`atomic_write_text` (from :mod:`rnnlab.training.files`) give the same
guarantee for single files (metrics CSVs, config JSON, plots): a temporary sibling file, fsync,
``os.replace``.
"""

from __future__ import annotations

import io
import json
import logging
import os
import random
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from rnnlab.training.files import atomic_write_bytes, atomic_write_text, dumps_json, sha256_bytes
from rnnlab.training.files import fsync_dir as _fsync_dir

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
DIGESTS_KEY = "sha256"  # meta.json: file name -> hex SHA-256 of that file's bytes
_RESERVED_META_KEYS = ("format", "version", DIGESTS_KEY)

logger = logging.getLogger(__name__)


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


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:  # a plain open: the mode follows the umask
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


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
            ``"format"``, ``"version"`` and ``"sha256"`` are reserved. NaN and infinite numbers are written
            as ``null`` (with a logged warning; see :func:`rnnlab.training.files.dumps_json`).
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
    trainer_bytes = None
    if optimizer_state is not None:
        buf = io.BytesIO()
        torch.save(optimizer_state, buf)
        trainer_bytes = buf.getvalue()

    from safetensors.torch import save  # lazy: safetensors ships with the 'tasks' extra

    weights = save(_to_savable(state))
    digests = {WEIGHTS_FILE: sha256_bytes(weights)}
    if trainer_bytes is not None:
        digests[TRAINER_STATE_FILE] = sha256_bytes(trainer_bytes)
    header = {"format": FORMAT, "version": VERSION, DIGESTS_KEY: digests}
    try:  # NaN / infinity become null (with a warning): meta.json stays valid JSON for every reader
        meta_text = dumps_json({**header, **meta}, f"{path / META_FILE}")
    except (TypeError, ValueError) as e:
        raise TypeError(f"meta must be JSON-serializable: {e}") from e

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
        CheckpointError: naming the path, when the directory or a required file is missing, a file's bytes
            do not match the SHA-256 digest recorded in ``meta.json`` (naming the file and both digests),
            the weights cannot be parsed, ``meta.json`` is not valid JSON or has an unknown format / version,
            or the trainer state cannot be read with ``weights_only=True``.
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
    digests = meta.get(DIGESTS_KEY)
    for key in _RESERVED_META_KEYS:
        meta.pop(key, None)
    has_trainer_state = (path / TRAINER_STATE_FILE).is_file()
    read = _verified_reader(path, digests, has_trainer_state)

    from safetensors.torch import load

    weights = read(WEIGHTS_FILE)
    try:
        state_dict = load(weights)
    except Exception as e:  # safetensors raises its own SafetensorError (and others) on bad bytes
        raise CheckpointError(f"checkpoint {str(path)!r}: {WEIGHTS_FILE} is corrupted ({e})") from e
    state_dict = {k: v.to(device) for k, v in state_dict.items()}

    trainer_state = None
    if has_trainer_state:
        data = read(TRAINER_STATE_FILE)
        try:
            # always on the CPU: RNG states must stay there, and optimizers move their state to the parameters
            trainer_state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        except Exception as e:
            raise CheckpointError(
                f"checkpoint {str(path)!r}: {TRAINER_STATE_FILE} cannot be read with weights_only=True ({e})"
            ) from e
    return Checkpoint(path=path, state_dict=state_dict, meta=meta, trainer_state=trainer_state)


def _verified_reader(path: Path, digests: Any, has_trainer_state: bool):
    """A function file name -> bytes that checks each file against ``digests`` (``meta.json``'s "sha256").

    ``digests`` None: a checkpoint from before the digests; its files are read unchecked, with a note.
    """
    where = f"checkpoint {str(path)!r}"
    if digests is None:
        logger.info("%s: %s has no file digests (saved by an older rnnlab); not verified", where, META_FILE)
        return lambda name: (path / name).read_bytes()
    if not isinstance(digests, dict) or not all(isinstance(v, str) for v in digests.values()):
        raise CheckpointError(
            f"{where}: {META_FILE}'s {DIGESTS_KEY!r} must map file names to hex digests, got {digests!r}"
        )
    if WEIGHTS_FILE not in digests:
        raise CheckpointError(f"{where}: {META_FILE} records no {DIGESTS_KEY} digest for {WEIGHTS_FILE}")
    if has_trainer_state and TRAINER_STATE_FILE not in digests:
        raise CheckpointError(
            f"{where}: {TRAINER_STATE_FILE} is not part of this checkpoint ({META_FILE} records no digest "
            "for it); remove it or save the checkpoint again"
        )
    if not has_trainer_state and TRAINER_STATE_FILE in digests:
        raise CheckpointError(f"{where} is incomplete: {TRAINER_STATE_FILE} is missing")

    def read(name: str) -> bytes:
        data = (path / name).read_bytes()
        got = sha256_bytes(data)
        if got != digests[name]:
            raise CheckpointError(
                f"{where}: {name} is corrupted: its bytes do not match the digest recorded at save time "
                f"(sha256 expected {digests[name]}, got {got}); restore the file or train again"
            )
        return data

    return read


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
