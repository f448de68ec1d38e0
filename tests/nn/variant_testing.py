"""Shared helpers for the recurrent-variant tests (test_variant_base, test_variants, test_regularizers):
float64 inputs, torch.nn weights copied into our cells, gradcheck over inputs and every parameter."""

from __future__ import annotations

import pytest
import torch
from torch import nn

DT = torch.float64
GRID = [
    pytest.param(
        num_layers,
        bidirectional,
        batch_first,
        id=f"L{num_layers}-bi{int(bidirectional)}-bf{int(batch_first)}",
    )
    for num_layers in (1, 2)
    for bidirectional in (False, True)
    for batch_first in (False, True)
]


def flat(out):
    """(output, h) or (output, (h, c)) -> a flat tuple of tensors, for comparisons and gradcheck."""
    if isinstance(out, torch.Tensor):
        return (out,)
    return tuple(t for item in out for t in flat(item))


def param_suffix(k: int, num_directions: int) -> str:
    layer, direction = divmod(k, num_directions)
    return f"_l{layer}" + ("_reverse" if direction else "")


def copy_torch_weights_into_cells(ref: nn.RNNBase, stack) -> None:
    """torch.nn.LSTM/GRU weights -> our cells[layer * D + direction] (weight_ih, weight_hh, bias_*)."""
    with torch.no_grad():
        for k, cell in enumerate(stack.cells):
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(cell, name).copy_(getattr(ref, name + param_suffix(k, stack.num_directions)))


def zero_peepholes(stack) -> None:
    with torch.no_grad():
        for cell in stack.cells:
            for p in (cell.weight_ci, cell.weight_cf, cell.weight_co):
                if p is not None:
                    p.zero_()


def identity_layer_norms(module) -> None:
    for cell in [module] if not hasattr(module, "cells") else module.cells:
        for name, child in list(cell.named_children()):
            if isinstance(child, nn.LayerNorm):
                setattr(cell, name, nn.Identity())


def gradcheck_module(module, *inputs, seed=None):
    """gradcheck w.r.t. the inputs and every parameter; reseed before each call if the module draws masks."""
    names = [n for n, _ in module.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_() for p in module.parameters())

    def run(*args):
        if seed is not None:
            torch.manual_seed(seed)
        p = dict(zip(names, args[: len(names)], strict=True))
        return flat(torch.func.functional_call(module, p, args[len(names) :]))

    # fast_mode checks random projections of the Jacobian (torch's OpInfo tests do the same); the full
    # Jacobian of every parameter costs one forward per entry, too slow for this suite.
    return torch.autograd.gradcheck(run, params + inputs, fast_mode=True)


def randn(*shape, grad=False):
    return torch.randn(*shape, dtype=DT, requires_grad=grad)


class TupleState(nn.Module):
    """cell(x, (h, c)) as a function of three tensors, for gradcheck."""

    def __init__(self, cell):
        super().__init__()
        self.cell = cell

    def forward(self, x, h, c):
        return self.cell(x, (h, c))


def rnnlab_recurrent():
    try:
        from rnnlab.nn import recurrent
    except ImportError:
        return None
    return recurrent
