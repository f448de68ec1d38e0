"""The one stack every recurrent layer runs on: layers, directions, inter-layer dropout, final states.

Every layer family (the torch.nn drop-ins, the variants, minGRU / minLSTM, the classifier's padded
encoder) supplies only a **direction runner**, ``run(layer, direction, x, state) -> (output, final)``,
that walks one direction of one layer through time; :func:`run_stack` does the rest, the same way for
all of them (torch.nn's semantics):

* layer ``l > 0`` reads layer ``l - 1``'s output, with dropout on it in training only (never after the
  last layer); the dropout mask is drawn after layer ``l - 1`` has run and before layer ``l`` starts,
  so random draws inside the runners (zoneout) and the dropout masks come in one fixed order;
* direction 1 (bidirectional) reads the same input as direction 0; the two outputs are concatenated on
  the last dimension, forward first;
* the final states are stacked in torch's ``layer * D + direction`` order.

Also here: :func:`param_suffix`, the one naming rule for per-layer parameters (``weight_ih_l0``,
``weight_hh_l1_reverse``), and :func:`zero_state`, the default initial state of every layer.

Dimension legend: L layers, D directions (1 or 2), B batch, H_in input size, H hidden size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor
from torch.nn import functional as TF

__all__ = ["State", "DirectionRunner", "param_suffix", "zero_state", "run_stack"]

State = tuple[Tensor, ...]  # (h,) or (h, c); in a stack each (L*D, B, ·), per direction (B, ·)
# run(layer, direction, x, state) -> (output, final state); x and output laid out as the family likes,
# features last; state and final state one tensor per state component.
DirectionRunner = Callable[[int, int, Tensor, State], tuple[Tensor, State]]


def param_suffix(layer: int, direction: int) -> str:
    """torch.nn's parameter suffix of one layer and direction: ``_l0``, ``_l0_reverse``, ``_l1``, ..."""
    return f"_l{layer}" + ("_reverse" if direction == 1 else "")


def zero_state(num_states: int, batch: int, sizes: Sequence[int], like: Tensor) -> State:
    """Zeros ``(L*D, B, size)`` for each state component's ``size``, with ``like``'s dtype and device."""
    return tuple(torch.zeros(num_states, batch, size, dtype=like.dtype, device=like.device) for size in sizes)


def run_stack(
    run: DirectionRunner,
    x: Tensor,
    hx: State,
    num_layers: int,
    num_directions: int,
    dropout: float,
    training: bool,
) -> tuple[Tensor, State]:
    """All layers and directions over ``x``; ``hx`` holds each state component as ``(L*D, ...)``.

    Returns the last layer's output (directions concatenated on the last dimension) and the final states,
    each component stacked to ``(L*D, ...)`` in ``layer * D + direction`` order.
    """
    finals: list[State] = []
    for layer in range(num_layers):
        if layer > 0 and dropout > 0 and training:
            x = TF.dropout(x, dropout, training=True)  # between layers only, as torch.nn
        outputs = []
        for direction in range(num_directions):
            index = layer * num_directions + direction
            out, final = run(layer, direction, x, tuple(h[index] for h in hx))
            outputs.append(out)
            finals.append(final)
        x = outputs[0] if num_directions == 1 else torch.cat(outputs, dim=-1)  # (..., D*H)
    return x, tuple(torch.stack([f[k] for f in finals]) for k in range(len(hx)))  # each (L*D, ...)
