"""Writing a run's files: atomically, with the modes a plain ``open()`` gives, and as strict JSON.

* :func:`atomic_write_bytes` / :func:`atomic_write_text` / :func:`atomic_write_json`: readers see either the
  old file or the complete new one (a temporary sibling file, fsync, ``os.replace``).
* File modes. The temporary file is created with ``os.open(..., O_CREAT | O_EXCL, 0o666)``, so the kernel
  applies the process umask exactly as for ``open(path, "w")``: ``0o644`` under umask ``022``, ``0o600``
  under ``077``. (``tempfile.mkstemp`` would always give ``0o600``; reading the umask in order to ``chmod``
  afterwards means setting it, which races with other threads.) When the file already exists its mode is
  kept, again as ``open(path, "w")`` keeps it.
* Strict JSON. ``json.dumps`` writes ``NaN`` / ``Infinity`` by default, which are not JSON: ``jq``,
  JavaScript's ``JSON.parse`` and most other readers reject the file. :func:`dumps_json` writes non-finite
  numbers as ``null`` and logs one warning naming where they were (``allow_nan=False`` then guarantees that
  nothing slipped through). Null, not an error: a metric that is undefined for one run (an F1 with an empty
  class, a diverged loss) must not make a finished training fail while writing its report.
* :func:`sha256_bytes`: the digest checkpoints store for each of their files.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import stat
import uuid
from pathlib import Path
from typing import Any

__all__ = [
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_json",
    "dumps_json",
    "finite_json",
    "sha256_bytes",
]

logger = logging.getLogger(__name__)


def fsync_dir(path: Path) -> None:
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


def _create_temporary(path: Path) -> tuple[int, Path]:
    """A new, empty sibling ``.<name>.<random>.tmp`` opened for writing, mode ``0o666 & ~umask``."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:  # 48 random bits collided: draw again
            continue


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` so that readers see either the old file or the complete new one.

    Creates missing parent directories. A new file gets the mode ``open(path, "wb")`` would give it
    (``0o666`` less the umask); an existing file keeps its mode. Returns the path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temporary(path)
    try:
        with os.fdopen(fd, "wb") as f:
            try:
                keep = stat.S_IMODE(os.stat(path).st_mode)
            except FileNotFoundError:
                keep = None
            if keep is not None and hasattr(os, "fchmod"):
                os.fchmod(f.fileno(), keep)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:  # KeyboardInterrupt included: never leave the temporary file behind
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return path


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8") -> Path:
    """:func:`atomic_write_bytes` for text (UTF-8 by default, ``\\n`` line endings kept as given)."""
    return atomic_write_bytes(path, text.encode(encoding))


def finite_json(obj: Any, where: str = "") -> tuple[Any, list[str]]:
    """A copy of ``obj`` with every NaN / infinite float replaced by None, and where each one was.

    Places are written as paths: ``metrics.f1``, ``history[2].train_loss``. Dicts, lists and tuples are
    walked (tuples become lists, as JSON writes them); other values are returned as they are.

    >>> finite_json({"loss": float("nan"), "rows": [1.0, float("inf")]})
    ({'loss': None, 'rows': [1.0, None]}, ['loss', 'rows[1]'])
    """
    if isinstance(obj, float) and not math.isfinite(obj):
        return None, [where or "<value>"]
    if isinstance(obj, dict):
        out, bad = {}, []
        for key, value in obj.items():
            out[key], found = finite_json(value, f"{where}.{key}" if where else str(key))
            bad += found
        return out, bad
    if isinstance(obj, (list, tuple)):
        items, bad = [], []
        for i, value in enumerate(obj):
            item, found = finite_json(value, f"{where}[{i}]")
            items.append(item)
            bad += found
        return items, bad
    return obj, []


def dumps_json(obj: Any, what: str = "JSON", *, indent: int | None = 2, ensure_ascii: bool = False) -> str:
    """``json.dumps`` that never writes NaN or Infinity: they become ``null``, with one logged warning.

    ``what`` names the file or object in that warning (``"runs/main/test_metrics.json"``). Values JSON
    cannot hold at all (a tensor, a set) raise TypeError, as ``json.dumps`` does.
    """
    clean, bad = finite_json(obj)
    if bad:
        shown = ", ".join(bad[:8]) + (f" and {len(bad) - 8} more" if len(bad) > 8 else "")
        logger.warning("%s: non-finite numbers (NaN or infinity) written as null: %s", what, shown)
    return json.dumps(clean, indent=indent, ensure_ascii=ensure_ascii, allow_nan=False)


def atomic_write_json(path: str | Path, obj: Any, *, indent: int | None = 2) -> Path:
    """Write ``obj`` as strict JSON (see :func:`dumps_json`), UTF-8, ending in a newline, atomically."""
    return atomic_write_text(path, dumps_json(obj, str(path), indent=indent) + "\n")


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 digest of ``data``."""
    return hashlib.sha256(data).hexdigest()
