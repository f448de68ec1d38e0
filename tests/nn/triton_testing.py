"""Shared by the Triton back end's tests: where its kernels run, and how they are loaded.

By default the kernels run on CPU tensors under Triton's interpreter. ``triton.jit`` reads
``TRITON_INTERPRET`` when a kernel is *decorated*, i.e. when :mod:`rnnlab.nn.fused._triton_kernels` is
imported, and a few of triton's helpers read it again while a kernel runs. So :func:`load_backend` sets it
around a (re-)import of the kernels and restores it at once, and the fixture :func:`triton_env` sets it
again for each test only: nothing leaks into the other tests of the same process (``torch.compile``'s
own triton use included), and a copy of the kernels imported earlier without the interpreter (by the
docstring tests, say) is replaced.

``RNNLAB_TRITON_TEST_DEVICE=cuda`` (what ``benchmarks/speed.py --device cuda`` sets) runs the same tests
compiled, on CUDA tensors, with the interpreter off.
"""

from __future__ import annotations

import importlib
import os

import pytest
import torch

pytest.importorskip("triton")

DEVICE = os.environ.get("RNNLAB_TRITON_TEST_DEVICE", "cpu")
if DEVICE not in ("cpu", "cuda"):
    raise ValueError(f"RNNLAB_TRITON_TEST_DEVICE: expected 'cpu' or 'cuda', got {DEVICE!r}")
if DEVICE == "cuda" and not torch.cuda.is_available():
    raise RuntimeError("RNNLAB_TRITON_TEST_DEVICE=cuda, but torch sees no CUDA device")
INTERPRET = DEVICE == "cpu"


def _set_interpret() -> str | None:
    before = os.environ.get("TRITON_INTERPRET")
    if INTERPRET:
        os.environ["TRITON_INTERPRET"] = "1"
    else:
        os.environ.pop("TRITON_INTERPRET", None)
    return before


def _restore(before: str | None) -> None:
    if before is None:
        os.environ.pop("TRITON_INTERPRET", None)
    else:
        os.environ["TRITON_INTERPRET"] = before


def load_backend():
    """The Triton back end module, its kernels decorated for DEVICE (interpreted on the CPU)."""
    before = _set_interpret()
    try:
        from rnnlab.nn.fused import _triton_kernels

        importlib.reload(_triton_kernels)  # decorate again under this setting; the back end reads K.<name>
        from rnnlab.nn.fused import _triton_backend
    finally:
        _restore(before)
    return _triton_backend


def load_layernorm():
    """The LayerNormLSTM Triton module (:mod:`rnnlab.nn.fused._triton_layernorm`), its kernels decorated
    for DEVICE, as :func:`load_backend` does for the back end's."""
    before = _set_interpret()
    try:
        from rnnlab.nn.fused import _triton_layernorm

        importlib.reload(_triton_layernorm)
    finally:
        _restore(before)
    return _triton_layernorm


@pytest.fixture
def triton_env(monkeypatch):
    """TRITON_INTERPRET as DEVICE needs it for one test, and the switch that sends CPU tensors to Triton."""
    if INTERPRET:
        monkeypatch.setenv("TRITON_INTERPRET", "1")
        monkeypatch.setenv("RNNLAB_FUSED_BACKEND", "triton")
    else:
        monkeypatch.delenv("TRITON_INTERPRET", raising=False)


def count_calls(monkeypatch, module, name: str) -> list[int]:
    """Wrap ``module.name`` so that each call appends to the returned list (proof the path was taken)."""
    calls: list[int] = []
    original = getattr(module, name)

    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return calls


def weighted_loss(outs: list[torch.Tensor], seed: int = 7) -> torch.Tensor:
    """A loss that weighs every element of every output differently, with the same weights on any device
    and in any dtype (drawn in float64 on the CPU)."""
    g = torch.Generator().manual_seed(seed)
    total = 0
    for o in outs:
        w = torch.randn(o.shape, generator=g, dtype=torch.float64).to(device=o.device, dtype=o.dtype)
        total = total + (o * w).sum()
    return total
