"""Entry points of :class:`rnnlab.nn.variants.LayerNormLSTM`'s fused path (the Triton kernels and the
autograd Function are in :mod:`._triton_layernorm`, imported only when a tensor goes there).

:func:`supports` decides once per call of the layer, at its door; :func:`run_direction` has the layer
stack's direction-runner contract (:func:`rnnlab.nn._stack.run_stack`).

Dimension legend: T steps, B batch, H_in input size, H hidden size.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from . import _uses_triton, triton_available
from . import supports as _supports_fused

__all__ = ["supports", "run_direction"]

_DTYPES = (torch.float32, torch.float64, torch.bfloat16, torch.float16)


def _norms(cell: nn.Module) -> tuple[nn.LayerNorm, ...]:
    return (cell.ln_ih, cell.ln_hh, cell.ln_c)


def _tensors(cell: nn.Module) -> list[Tensor | None]:
    """The cell's parameters in the Function's order (gate_bias may be None)."""
    out = [cell.weight_ih, cell.weight_hh, cell.gate_bias]
    for ln in _norms(cell):
        out += [ln.weight, ln.bias]
    return out


def supports(x: Tensor, state: tuple[Tensor, Tensor], cells: Sequence[nn.Module]) -> bool:
    """Whether the fused path runs these cells over ``x`` (T, B, H_in) from ``state`` ((L*D, B, H) each):
    CUDA tensors (or CPU ones under ``RNNLAB_FUSED_BACKEND=triton``) when triton imports, float32,
    float64, bfloat16 or float16, every tensor of one dtype and device, LayerNorms with a gain and a
    shift, and what
    :func:`rnnlab.nn.fused.supports` asks of any fused call (no autocast, torch.func, forward AD,
    torch.compile tracing, tensor subclasses; non-empty input)."""
    if not _uses_triton(x) or not triton_available() or x.dtype not in _DTYPES:
        return False
    weights: list[Tensor | None] = []
    for cell in cells:
        if any(ln.weight is None or ln.bias is None for ln in _norms(cell)):
            return False  # elementwise_affine=False or bias=False: the kernels read both
        weights += _tensors(cell)
    return _supports_fused("LSTM", x, tuple(state), tuple(weights))


def run_direction(
    cell: nn.Module, x: Tensor, state: tuple[Tensor, ...], reverse: bool
) -> tuple[Tensor, tuple]:
    """One direction of one layer: ``x`` (T, B, H_in), ``state = (h_0, c_0)`` each (B, H) ->
    ``(output (T, B, H), (h_n, c_n))``, as the readable walk of ``cell._step`` returns them."""
    from ._triton_layernorm import LayerNormLSTMDirection

    eps = tuple(float(ln.eps) for ln in _norms(cell))
    out, hn, cn = LayerNormLSTMDirection.apply(x, state[0], state[1], *_tensors(cell), eps, reverse)
    return out, (hn, cn)
