"""The readable time loop: one direction of one recurrent layer, one step at a time.

Its own module so that both the layers (:mod:`rnnlab.nn.recurrent`) and the fast path
(:mod:`rnnlab.nn.fused`, which re-runs these equations for double backward and for transforms it cannot
follow) import it without importing each other.

Dimension legend: T time steps, B batch, N packed rows, H_in input size, P = proj_size or H.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from rnnlab.nn import functional as F

__all__ = ["State", "Weights", "run_direction_readable"]

State = tuple[Tensor, ...]
Weights = tuple[Tensor | None, ...]


def run_direction_readable(
    mode: str,
    x: Tensor,
    batch_sizes: Sequence[int] | None,
    state: State,
    weights: Weights,
    reverse: bool,
    step: Callable | None = None,
) -> tuple[Tensor, State]:
    """Run one direction of one layer through time, one step at a time.

    Args:
        mode: ``"RNN_TANH"``, ``"RNN_RELU"``, ``"LSTM"`` or ``"GRU"``.
        x: ``(T, B, H_in)``, or PackedSequence data ``(sum(batch_sizes), H_in)`` when ``batch_sizes``
            is given.
        batch_sizes: None, or the packed batch size of each step (non-increasing; the first
            ``batch_sizes[t]`` sequences are active at step ``t``).
        state: ``(h_0,)``, or ``(h_0, c_0)`` for the LSTM; each ``(B, ·)``.
        weights: ``(W_ih, W_hh, b_ih, b_hh)``, plus ``W_hr`` (or None) for the LSTM.
        reverse: walk from the last step to the first.
        step: the step function, ``step(x_t, h, *weights)`` (or ``(h, c)`` for the LSTM); default
            ``functional.STEPS[mode]``. A variant with torch.nn's parameters and a different step
            (:class:`rnnlab.nn.cho_gru.ChoGRU`) passes its own.

    Returns:
        ``(output, final_state)``: output ``(T, B, P)`` (or packed ``(N, P)``); each sequence's final state
        is taken after its own last step (forward) or after step 0 (reverse).
    """
    step = F.STEPS[mode] if step is None else step
    is_lstm = mode == "LSTM"

    if batch_sizes is None:
        xs = x.unbind(0)  # T x (B, H_in); unbind, not x[t], keeps backward linear in T
        sizes = [x.size(1)] * len(xs)
    else:
        xs = x.split(list(batch_sizes))  # T x (batch_sizes[t], H_in)
        sizes = list(batch_sizes)
    T = len(xs)

    def advance(x_t: Tensor, current: State) -> State:
        if is_lstm:
            return step(x_t, (current[0], current[1]), *weights)
        return (step(x_t, current[0], *weights),)

    outputs: list[Tensor] = [x.new_empty(0)] * T
    if not reverse:
        current = state
        finished: list[State] = []  # rows whose sequence has ended, latest-ending first
        for t in range(T):
            bs = sizes[t]
            if bs < current[0].size(0):  # some sequences ended at t-1: set their final state aside
                finished.append(tuple(s[bs:] for s in current))
                current = tuple(s[:bs] for s in current)
            current = advance(xs[t], current)
            outputs[t] = current[0]
        pieces = [current, *reversed(finished)]
        final = tuple(
            torch.cat([p[k] for p in pieces]) if len(pieces) > 1 else current[k] for k in range(len(state))
        )
    else:
        current = tuple(s[: sizes[-1]] for s in state) if T else state
        for t in range(T - 1, -1, -1):
            bs = sizes[t]
            if bs > current[0].size(0):  # longer sequences join the reverse pass here, from h_0
                current = tuple(
                    torch.cat([c, s[c.size(0) : bs]]) for c, s in zip(current, state, strict=True)
                )
            current = advance(xs[t], current)
            outputs[t] = current[0]
        final = current
    output = torch.cat(outputs) if batch_sizes is not None else torch.stack(outputs)
    return output, final
