"""The autograd Function of one direction: a back end's forward, its hand-written backward through time.

The backward runs the back end's ``backward`` (the equations in :mod:`._torch_backend`'s docstring) in the
common case. Two cases instead differentiate the readable equations
(:func:`rnnlab.nn._loop.run_direction_readable`, re-run from the saved inputs), so they cost what the
readable path costs:

* double backward (``create_graph=True``): the gradients must themselves carry a graph;
* gradients that are batched, i.e. a vmap over the backward (``torch.autograd.grad(...,
  is_grads_batched=True)``, or ``torch.func.vmap`` of a function that calls ``torch.autograd.grad``): the
  C++ ops and the Triton kernels have no batching rule and the pure-PyTorch back end writes into plain
  buffers, while the readable equations are ordinary torch ops that vmap batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from rnnlab.nn._loop import run_direction_readable

__all__ = ["FusedDirection"]

_functorch = torch._C._functorch


def _is_batched(t: Tensor | None) -> bool:
    """A vmap-batched tensor: functorch's (torch.func.vmap) or the legacy one (is_grads_batched=True)."""
    if t is None:
        return False
    is_legacy = getattr(_functorch, "is_legacy_batchedtensor", None)
    return bool(_functorch.is_batchedtensor(t) or (is_legacy is not None and is_legacy(t)))


def _under_transform(grads: Sequence[Tensor | None]) -> bool:
    """True when the backward runs under vmap or another torch.func transform (the back ends cannot)."""
    active = getattr(torch._C, "_are_functorch_transforms_active", None)
    return (active is not None and active()) or any(_is_batched(g) for g in grads)


class FusedDirection(torch.autograd.Function):
    """One direction of one layer; the backward is the back end's hand-written BPTT."""

    @staticmethod
    def forward(ctx, backend, mode, shape, x, batch_sizes, reverse, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr):
        out, hn, cn, ws_g, ws_s, ws_m = backend.forward(
            mode, x, batch_sizes, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, reverse, True
        )
        ctx.save_for_backward(x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, out, ws_g, ws_s, ws_m)
        ctx.meta = (backend, mode, shape, batch_sizes, reverse)
        return (out, hn, cn) if mode == "LSTM" else (out, hn)

    @staticmethod
    def backward(ctx, dy, dhn, dcn=None):
        backend, mode, shape, batch_sizes, reverse = ctx.meta
        x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, out, ws_g, ws_s, ws_m = ctx.saved_tensors
        inputs = (x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr)
        needs = ctx.needs_input_grad[3:4] + ctx.needs_input_grad[6:]  # one per entry of inputs
        if torch.is_grad_enabled() or _under_transform((dy, dhn, dcn)):
            grads = readable_grads(mode, shape, batch_sizes, reverse, inputs, needs, dy, dhn, dcn)
        else:
            grads = backend.backward(
                mode, dy, dhn, dcn, x, batch_sizes, h0, c0, w_ih, w_hh, w_hr, b_ih is not None, reverse,
                out, ws_g, ws_s, ws_m, needs[0], any(needs[3:]),
            )  # fmt: skip
            grads = tuple(g if need else None for g, need in zip(grads, needs, strict=True))
            if grads[0] is not None:
                grads = (grads[0].view(x.shape), *grads[1:])  # dx comes as (N, H_in)
        # One per argument of apply: backend, mode, shape, x, batch_sizes, reverse, h0, c0, then the weights.
        return (None, None, None, grads[0], None, None, *grads[1:])


def readable_grads(
    mode: str,
    shape: tuple[int, int, int] | None,
    batch_sizes: list[int],
    reverse: bool,
    inputs: tuple[Any, ...],
    needs: tuple[bool, ...],
    dy: Tensor,
    dhn: Tensor,
    dcn: Tensor | None,
) -> tuple[Tensor | None, ...]:
    """Gradients (one per input, None where not needed) through the readable path.

    They keep their graph when grad mode is on (double backward), and are batched when the incoming
    gradients are (vmap over the backward).
    """
    x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr = inputs
    state = (h0, c0) if mode == "LSTM" else (h0,)
    weights = (w_ih, w_hh, b_ih, b_hh, w_hr) if mode == "LSTM" else (w_ih, w_hh, b_ih, b_hh)
    create_graph = torch.is_grad_enabled()
    with torch.enable_grad():  # the whole readable graph, from x on: a view taken outside has no history
        x_in = x if shape is None else x.reshape(shape)  # (T, B, H_in), or packed (N, H_in) as it is
        out, final = run_direction_readable(
            mode, x_in, batch_sizes if shape is None else None, state, weights, reverse
        )
        out = out.reshape(-1, out.size(-1))  # (N, P), as the fused forward returned it
        wanted = [t for t, need in zip(inputs, needs, strict=True) if need]
        grads = torch.autograd.grad(
            [out, *final], wanted, [dy, dhn] + ([dcn] if mode == "LSTM" else []), create_graph=create_graph,
            allow_unused=True,
        )  # fmt: skip
    result, it = [], iter(grads)
    for need in needs:
        result.append(next(it) if need else None)
    return tuple(result)
