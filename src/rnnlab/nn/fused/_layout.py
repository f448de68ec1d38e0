"""The packed layout both back ends work in: where each step's rows are, and what each step carries over.

cuDNN's packed layout, which also covers the padded case: sequence data is ``(N, W)`` with
``N = sum(batch_sizes)``; the rows of step ``t`` are ``[off[t], off[t] + bs[t])`` and hold the first
``bs[t]`` sequences (longest first). A padded, time-major ``(T, B, W)`` batch is the case ``bs[t] = B`` for
every ``t``. Because the batch only shrinks with time, the previous state of step ``t`` is, in the forward
direction, the first ``bs[t]`` rows of step ``t - 1``; the reverse direction reads step ``t + 1``'s rows for
its first ``bs[t + 1]`` sequences and the initial state for the sequences that join at step ``t``.

The C++ back end has the same helpers, under the same names, in ``struct Steps`` (``csrc/layout.h``).

Dimension legend: T steps, B batch (``bs[0]``), N packed rows, W a row's width.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["GATES", "Steps"]

# Gate blocks per mode (torch.nn's mode names): W_ih and W_hh have GATES[mode] * H rows.
GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


class Steps:
    """Offsets of each step's rows in packed data; a padded (T, B) batch is bs[t] = B for every t."""

    def __init__(self, batch_sizes: Sequence[int], reverse: bool) -> None:
        self.bs = list(batch_sizes)
        self.T = len(self.bs)
        self.off = [0] * (self.T + 1)
        for t, b in enumerate(self.bs):
            self.off[t + 1] = self.off[t] + b
        self.N, self.B = self.off[-1], self.bs[0]
        self.reverse = reverse
        self.order = range(self.T - 1, -1, -1) if reverse else range(self.T)  # processing order

    def rows(self, t: int) -> slice:
        return slice(self.off[t], self.off[t] + self.bs[t])

    def prev(self, t: int) -> int:
        """The step processed before t (its state is t's previous one), or -1 at the start."""
        p = t + 1 if self.reverse else t - 1
        return p if 0 <= p < self.T else -1

    def carried(self, t: int) -> int:
        """How many of step t's rows carry state from prev(t); the rest start from the initial state."""
        p = self.prev(t)
        return 0 if p < 0 else min(self.bs[t], self.bs[p])

    def continuing(self, t: int) -> int:
        """How many of step t's rows go on to the next processed step; the rest end at t."""
        n = t - 1 if self.reverse else t + 1
        return min(self.bs[t], self.bs[n]) if 0 <= n < self.T else 0

    def prev_rows(self, seq: Tensor, init: Tensor, t: int) -> Tensor:
        """Step t's previous state, (bs[t], W): rows of step prev(t) in seq, then init's for joiners."""
        rows, np_ = self.bs[t], self.carried(t)
        start = self.off[self.prev(t)] if np_ > 0 else 0
        if np_ == rows:
            return seq[start : start + rows]
        if np_ == 0:
            return init[:rows]
        return torch.cat([seq[start : start + np_], init[np_:rows]])  # reverse direction, sequences joining

    def all_prev_rows(self, seq: Tensor, init: Tensor) -> Tensor:
        """Every row's previous state, (N, W), for dW_hh = dG^T @ H_prev in one product."""
        if self.bs.count(self.B) == self.T:  # padded: whole blocks of rows
            B, N = self.B, self.N
            return torch.cat([seq[B:], init]) if self.reverse else torch.cat([init, seq[: N - B]])
        return torch.cat([self.prev_rows(seq, init, t) for t in range(self.T)])

    def capture_final(self, seq: Tensor, final: Tensor, t: int) -> None:
        """Copy the rows of step t whose sequences end there into final (B, W)."""
        keep, rows = self.continuing(t), self.bs[t]
        if rows > keep:
            final[keep:rows] = seq[self.off[t] + keep : self.off[t] + rows]
