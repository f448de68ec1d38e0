"""Building and loading the C++ back end (``csrc/``): compiled on first use, cached, loaded once per process.

The build goes into a folder of its own per *build key*: a hash of everything the compiled library depends
on, namely the C++ sources' text, the compiler flags, the torch version, the interpreter
(``sys.executable`` and ``sys.prefix``, so two virtual environments never share a build) and the CPU
capability the flags target. The sources are copied into that folder and compiled from there, so its
ninja file names no checkout's path: two checkouts of the same sources in one environment share one build,
and a checkout whose sources differ gets its own instead of rebuilding another's in turn. Whenever a build
actually runs, a log line says so (``rnnlab: compiling the fused C++ kernels into <dir> ...``).

The cache root is ``$RNNLAB_CACHE/torch_extensions`` when ``RNNLAB_CACHE`` is set, else torch's default
extension directory (``$TORCH_EXTENSIONS_DIR``, or ``~/.cache/torch_extensions``).

If the library cannot be built or loaded, :class:`FusedExtensionWarning` says so once, with the first lines
of the compiler's error and how to fix it; the pure-PyTorch back end runs instead. ``RNNLAB_NO_EXT=1``
turns the C++ back end off without a warning.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import sys
import sysconfig
import threading
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

__all__ = ["FusedExtensionWarning", "build_extension", "extension_available"]

logger = logging.getLogger("rnnlab")

CSRC = Path(__file__).resolve().parent / "csrc"
SOURCE = "fused_rnn.cpp"  # the one translation unit; the headers beside it are #included from it
_lock = threading.Lock()
_ext: dict[str, Any] = {"tried": False, "ops": None, "error": None}


class FusedExtensionWarning(UserWarning):
    """The C++ extension could not be built or loaded; the pure-PyTorch fused path runs instead."""


def disabled() -> bool:
    """True when ``RNNLAB_NO_EXT`` turns the C++ back end off."""
    return os.environ.get("RNNLAB_NO_EXT", "") not in ("", "0")


def source_texts() -> dict[str, bytes]:
    """Every file of ``csrc/`` (the source and its headers) by name: what a build compiles."""
    return {p.name: p.read_bytes() for p in sorted(CSRC.iterdir()) if p.suffix in (".cpp", ".h")}


def compile_flags(capability: str) -> list[str]:
    """The compiler flags for a CPU of this capability (``torch.backends.cpu.get_cpu_capability()``)."""
    # -fno-trapping-math lets GCC vectorise the branch-free activations; -fopenmp makes at::parallel_for
    # use torch's OpenMP threads (without it the pragma is ignored and the gate kernels run on one core).
    flags = ["-O3", "-fno-math-errno", "-fno-trapping-math", "-fopenmp"]
    if capability in ("AVX2", "AVX512"):
        flags += ["-mavx2", "-mfma"]
    return flags


LDFLAGS = ["-fopenmp"]


def build_key(
    sources: Mapping[str, bytes],
    flags: Sequence[str],
    torch_version: str,
    executable: str,
    prefix: str,
    capability: str,
) -> str:
    """A hash of everything a build depends on (see the module docstring): equal keys, same library."""
    h = hashlib.sha256()
    for name in sorted(sources):
        h.update(name.encode() + b"\0" + hashlib.sha256(sources[name]).digest())
    for part in (" ".join(flags), " ".join(LDFLAGS), torch_version, executable, prefix, capability):
        h.update(b"\0" + part.encode())
    return h.hexdigest()[:16]


def _this_build() -> tuple[str, dict[str, bytes], list[str]]:
    """(library name, sources, flags) for this process: the name carries the build key."""
    capability = torch.backends.cpu.get_cpu_capability()
    sources, flags = source_texts(), compile_flags(capability)
    key = build_key(sources, flags, torch.__version__, sys.executable, sys.prefix, capability)
    return f"rnnlab_fused_{key}", sources, flags


def _cache_root() -> str:
    from torch.utils import cpp_extension

    cache = os.environ.get("RNNLAB_CACHE")
    return os.path.join(cache, "torch_extensions") if cache else cpp_extension.get_default_build_root()


def _find_ninja() -> None:
    """Put the environment's own ``ninja`` on PATH if PATH has none.

    torch's build runs ``ninja`` from PATH; ``pip install ninja`` puts it beside the interpreter, which is
    not on PATH when a virtual environment is used without being activated (``.venv/bin/python -m ...``).
    """
    if shutil.which("ninja"):
        return
    for folder in (sysconfig.get_path("scripts"), os.path.dirname(sys.executable)):
        if folder and shutil.which("ninja", path=folder):
            os.environ["PATH"] = folder + os.pathsep + os.environ.get("PATH", "")
            return


def _stage_sources(build_dir: str, sources: Mapping[str, bytes]) -> None:
    """Copy the sources into the build folder, rewriting a file only when its text differs (ninja
    rebuilds what is newer than the library, so an unchanged copy must keep its time stamp)."""
    for name, text in sources.items():
        path = os.path.join(build_dir, name)
        if not (os.path.exists(path) and Path(path).read_bytes() == text):
            tmp = f"{path}.{os.getpid()}.tmp"
            Path(tmp).write_bytes(text)
            os.replace(tmp, path)  # atomic: a concurrent process never compiles half a file


def _load(verbose: bool = False) -> Any:
    """Compile (if needed) and load the ops; returns ``torch.ops.rnnlab_fused``. Raises on failure."""
    from torch.utils import cpp_extension  # imported here: it is slow to import and only needed once

    _find_ninja()
    name, sources, flags = _this_build()
    build_dir = os.path.join(_cache_root(), name)
    os.makedirs(build_dir, exist_ok=True)
    _stage_sources(build_dir, sources)
    library = os.path.join(build_dir, name + ".so")
    if not os.path.exists(library):
        logger.warning("rnnlab: compiling the fused C++ kernels into %s (once, about a minute)", build_dir)
    # torch's load holds a file lock while building, so concurrent processes (pytest -n) build once.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # compiler-version notes from torch are not the user's business
        cpp_extension.load(
            name=name,
            sources=[os.path.join(build_dir, SOURCE)],
            extra_cflags=flags,
            extra_ldflags=LDFLAGS,
            build_directory=build_dir,
            is_python_module=False,
            verbose=verbose,
        )
    return torch.ops.rnnlab_fused


def explain(err: BaseException, max_lines: int = 6) -> str:
    """The exception's first line and the compiler's first error lines (a build error holds its output)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    head = lines[:1]
    errors = [line for line in lines[1:] if "error" in line.lower()][: max_lines - 1]
    text = " | ".join(line[:300] for line in head + errors)
    return f"{type(err).__name__}: {text}"


def extension(verbose: bool = False) -> Any | None:
    """The loaded ops, or None (fallback) when disabled or unbuildable; warns once on failure."""
    if disabled():
        return None
    if not _ext["tried"]:
        failed = None
        with _lock:
            if not _ext["tried"]:
                try:
                    _ext["ops"] = _load(verbose)
                except Exception as err:  # no compiler, no ninja, a failed build: fall back, say why once
                    _ext["error"] = failed = err
                _ext["tried"] = True  # before warning: warnings may be errors, and we must not retry
        if failed is not None:
            warnings.warn(
                "rnnlab: the fused C++ RNN kernels could not be built or loaded, so the pure-PyTorch fused "
                "path runs instead (same results, slower: up to ~20x at batch 1). "
                f"Cause: {explain(failed)}. "
                "Fix: install a C++ compiler (g++ or clang++) and ninja (`pip install ninja`), then start "
                "Python again; or set RNNLAB_NO_EXT=1 to run the pure-PyTorch path without this warning.",
                FusedExtensionWarning,
                stacklevel=4,
            )
    return _ext["ops"]


def extension_available() -> bool:
    """True when the C++ kernels are built and loaded (building them on first call)."""
    return extension() is not None


def build_extension(verbose: bool = True) -> None:
    """Build and load the C++ kernels now (e.g. at install time); raises if that fails."""
    if not _ext["tried"]:
        with _lock:
            try:
                _ext["ops"] = _load(verbose)
            except Exception as err:
                _ext["error"] = err
                raise
            finally:
                _ext["tried"] = True
    if _ext["ops"] is None:
        raise RuntimeError(f"rnnlab: the fused C++ kernels failed to build: {explain(_ext['error'])}")
