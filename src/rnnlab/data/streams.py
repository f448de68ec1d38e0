"""Stateful truncated-BPTT batches of one character stream: consecutive chunks of one stream per batch row.

The stream of N ids is cut into B rows of ``L = N // B`` consecutive ids (the tail is dropped), so
row ``b`` holds ``ids[b L : (b + 1) L]``. Chunk ``k`` is ``x = rows[:, k T : (k + 1) T]`` with targets
``y = rows[:, k T + 1 : (k + 1) T + 1]``: row ``b`` of chunk ``k + 1`` continues row ``b`` of chunk ``k``
exactly, so the state a model ends chunk ``k`` with is the right start for chunk ``k + 1`` (carried,
detached). A pass over the stream has ``(L - 1) // T`` chunks.

``steps_per_epoch`` (None: one pass) makes an epoch a fixed number of chunks; epoch ``e`` starts at chunk
``e * steps_per_epoch`` (modulo the pass), so the epochs walk on through the stream rather than repeating
its start. ``reset`` is True on an epoch's first chunk and where a pass wraps around: there the carried
state must start afresh (the trainer resumes at epoch boundaries, so a resumed run equals an unbroken one).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from torch import Tensor

__all__ = ["StreamBatch", "StreamBatches"]


class StreamBatch(NamedTuple):
    x: Tensor  # (B, T) input ids
    y: Tensor  # (B, T) the next id after each input
    reset: bool  # True: start the recurrent state afresh before this chunk


class StreamBatches:
    """Re-iterable stateful batches (see the module docstring); ``set_epoch`` picks where an epoch starts."""

    def __init__(self, ids: Tensor, batch_size: int, bptt: int, steps_per_epoch: int | None = None) -> None:
        if ids.dim() != 1:
            raise ValueError(f"ids: expected a 1-D tensor of ids, received shape {tuple(ids.shape)}")
        for name, value in (("batch_size", batch_size), ("bptt", bptt)):
            if value < 1:
                raise ValueError(f"{name}: expected >= 1, received {value}")
        length = ids.numel() // batch_size
        self.chunks = (length - 1) // bptt
        if self.chunks < 1:
            raise ValueError(
                f"the text is too short: {ids.numel()} characters make {batch_size} rows of {length}, "
                f"fewer than one chunk of bptt={bptt} + 1; lower data.batch_size or data.bptt"
            )
        self.rows = ids[: batch_size * length].view(batch_size, length)  # (B, L)
        self.bptt = bptt
        self.steps = self.chunks if steps_per_epoch is None else steps_per_epoch
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[StreamBatch]:
        start = self.epoch * self.steps
        for i in range(self.steps):
            k = (start + i) % self.chunks
            t = k * self.bptt
            yield StreamBatch(
                self.rows[:, t : t + self.bptt], self.rows[:, t + 1 : t + 1 + self.bptt], i == 0 or k == 0
            )
