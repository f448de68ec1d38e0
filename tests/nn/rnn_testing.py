"""Shared helpers for the recurrent-layer tests: build twin layers, run both, compare everything."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence

import rnnlab.nn as rnn

T, B, I, H, P = 5, 3, 3, 4, 2  # time, batch, input, hidden, projection sizes used across the tests
LENGTHS = [5, 2, 4]  # unsorted, one full-length sequence, used for packed inputs


def tol(dtype: torch.dtype) -> dict:
    # float32: gradients summed over time in a different order (one large product vs per-step sums) differ
    # by a few ulps of their largest term; float64 pins the math itself down to 1e-10.
    return {"rtol": 1e-4, "atol": 1e-5} if dtype == torch.float32 else {"rtol": 1e-10, "atol": 1e-12}


def make_pair(cls_name: str, dtype: torch.dtype, seed: int = 0, **kwargs) -> tuple[nn.Module, nn.Module]:
    """The torch.nn layer and rnnlab's twin, built under the same seed (so with identical weights)."""
    torch.manual_seed(seed)
    ref = getattr(nn, cls_name)(**kwargs).to(dtype)
    torch.manual_seed(seed)
    ours = getattr(rnn, cls_name)(**kwargs).to(dtype)
    return ref, ours


def make_input(form: str, batch_first: bool, dtype: torch.dtype, seed: int = 1):
    """An input of the given form ("batched", "unbatched", "packed_sorted", "packed_unsorted") and the
    leaf tensor whose gradient the tests compare."""
    g = torch.Generator().manual_seed(seed)
    if form == "unbatched":
        leaf = torch.randn(T, I, dtype=dtype, generator=g, requires_grad=True)
        return leaf, leaf
    shape = (B, T, I) if batch_first else (T, B, I)
    leaf = torch.randn(*shape, dtype=dtype, generator=g, requires_grad=True)
    if form == "batched":
        return leaf, leaf
    is_sorted = form == "packed_sorted"
    lengths = torch.tensor(sorted(LENGTHS, reverse=True) if is_sorted else LENGTHS)
    packed = pack_padded_sequence(leaf, lengths, batch_first=batch_first, enforce_sorted=is_sorted)
    return packed, leaf


def make_hx(layer: nn.Module, form: str, dtype: torch.dtype, seed: int = 2):
    """A random initial state for ``layer`` (leaf tensors with requires_grad)."""
    g = torch.Generator().manual_seed(seed)
    d = 2 if layer.bidirectional else 1
    h_size = layer.proj_size if getattr(layer, "proj_size", 0) else layer.hidden_size
    lead = (layer.num_layers * d,) if form == "unbatched" else (layer.num_layers * d, B)
    h0 = torch.randn(*lead, h_size, dtype=dtype, generator=g).requires_grad_()
    if layer.mode != "LSTM":
        return h0, [h0]
    c0 = torch.randn(*lead, layer.hidden_size, dtype=dtype, generator=g).requires_grad_()
    return (h0, c0), [h0, c0]


def flat_outputs(result) -> list[torch.Tensor]:
    """``(output, h_n)`` or ``(output, (h_n, c_n))`` as a flat list of tensors (packed -> its data)."""
    output, state = result
    out = output.data if isinstance(output, PackedSequence) else output
    return [out, *(state if isinstance(state, tuple) else (state,))]


def run_and_grad(layer: nn.Module, inp, hx, leaves: list[torch.Tensor], seed: int = 3):
    """Forward (with a fixed dropout seed), a weighted-sum loss over every output, and the gradients of
    the leaves and of every parameter."""
    for leaf in leaves:
        leaf.grad = None
    layer.zero_grad(set_to_none=True)
    torch.manual_seed(seed)
    outs = flat_outputs(layer(inp, hx))
    g = torch.Generator().manual_seed(seed + 1)
    loss = sum((o * torch.randn(o.shape, dtype=o.dtype, generator=g)).sum() for o in outs)
    loss.backward()
    grads = [leaf.grad.clone() for leaf in leaves]
    grads += [p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in layer.parameters()]
    return [o.detach() for o in outs], grads
