"""Many samplings from one character LM at once: one forward pass per character for every row.

Each row is one request with its own prime, length, temperature, top-k / top-p and seeded generator, drawn
exactly as :meth:`~rnnlab.inference.sampler.Sampler.stream` draws it (same filters, same generator calls in
the same order), so a row's text is the text the lone sampler writes for the same options. Only the matrix
products are shared: the rows' next characters go through the network together as a batch (B, 1), and the
recurrent state is kept stacked (L, B, H), row ``b`` being :attr:`BatchSampler.keys` ``[b]``. A row reads
its prime alone (primes differ in length) and then joins the batch.

Rows join (:meth:`BatchSampler.add`) and leave (when their last character is drawn, or
:meth:`BatchSampler.remove`) between steps, so a server can keep one batch running while requests come
and go (continuous batching: ``rnnlab serve`` on a character LM, see :mod:`rnnlab.serve.streams`).

>>> batch = BatchSampler(sampler)                                      # doctest: +SKIP
>>> batch.add("a", prime="ROMEO:", length=50, seed=1)                  # doctest: +SKIP
>>> batch.add("b", prime="JULIET:", length=80, temperature=0.7, seed=2)  # doctest: +SKIP
>>> while batch: print(batch.step())     # [("a", "\\n", False), ("b", " ", False)], ...  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

import torch
from torch import Tensor

from rnnlab.inference.sampler import Sampler, check_sampling, seeded_generator

__all__ = ["BatchSampler"]


@dataclass
class _Row:
    key: Hashable
    left: int  # characters still to draw
    temperature: float
    top_k: int | None
    top_p: float | None
    generator: torch.Generator
    last: Tensor  # (V,) the scores of its next character


def _cat(a, b):
    """Two recurrent states stacked along the batch (dim 1); ``(h, c)`` pairs pairwise."""
    if a is None:
        return b
    if isinstance(a, tuple):
        return tuple(torch.cat([x, y], 1) for x, y in zip(a, b, strict=True))
    return torch.cat([a, b], 1)


def _rows(state, index: Tensor):
    """The rows ``index`` of a stacked state (None when no row is left)."""
    if index.numel() == 0:
        return None
    if isinstance(state, tuple):
        return tuple(s.index_select(1, index) for s in state)
    return state.index_select(1, index)


class BatchSampler:
    """A batch of samplings that advance together (see the module docstring)."""

    def __init__(self, sampler: Sampler) -> None:
        self.sampler = sampler
        self._rows: list[_Row] = []
        self._state = None  # (L, B, H) or a pair of them; row b is self._rows[b]

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def keys(self) -> list[Hashable]:
        return [row.key for row in self._rows]

    @torch.no_grad()
    def add(
        self,
        key: Hashable,
        prime: str = "",
        length: int = 200,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int | None = 0,
    ) -> None:
        """A new row: reads ``prime`` now (a DataError for a prime of unseen characters or a bad option);
        its characters come with the next :meth:`step` calls."""
        if key in self.keys:
            raise ValueError(f"key: {key!r} is already a row of this batch")
        check_sampling(length, temperature, top_k, top_p)
        last, state = self.sampler.read_prime(prime)
        self._rows.append(_Row(key, length, temperature, top_k, top_p, seeded_generator(seed), last))
        self._state = _cat(self._state, state)

    def remove(self, key: Hashable) -> None:
        """Drop a row (a client that went away); nothing happens for a key not in the batch."""
        keep = [b for b, row in enumerate(self._rows) if row.key != key]
        if len(keep) < len(self._rows):
            self._state = _rows(self._state, torch.tensor(keep, dtype=torch.long))
            self._rows = [self._rows[b] for b in keep]

    @torch.no_grad()
    def step(self) -> list[tuple[Hashable, str, bool]]:
        """One character for every row, as ``(key, character, last)``; rows whose last character this is
        leave the batch, the others read their character in one forward pass."""
        if not self._rows:
            return []
        drawn = self.sampler.draw_rows(
            torch.stack([row.last for row in self._rows]),
            [(row.temperature, row.top_k, row.top_p) for row in self._rows],
            [row.generator for row in self._rows],
        )
        out = []
        for row, nxt in zip(self._rows, drawn, strict=True):
            row.left -= 1
            out.append((row.key, self.sampler.vocab.tokens[nxt], row.left == 0))
        keep = [b for b, row in enumerate(self._rows) if row.left > 0]
        if len(keep) < len(self._rows):
            self._state = _rows(self._state, torch.tensor(keep, dtype=torch.long))
            self._rows = [self._rows[b] for b in keep]
        if self._rows:
            ids = torch.tensor([drawn[b] for b in keep]).view(-1, 1)  # (B, 1)
            logits, self._state = self.sampler.model(ids, self._state)  # (B, 1, V)
            for row, scores in zip(self._rows, logits[:, -1], strict=True):
                row.last = scores
        return out

    def run(self, requests: list[dict]) -> list[str]:
        """The texts of whole requests (the keyword arguments of :meth:`add`, without ``key``), sampled
        together; the batch must be empty."""
        if self._rows:
            raise RuntimeError("run: the batch already has rows; step them out first")
        texts: list[list[str]] = [[] for _ in requests]
        try:
            for i, options in enumerate(requests):
                self.add(i, **options)
            while self._rows:
                for i, ch, _ in self.step():
                    texts[i].append(ch)
        except BaseException:  # a bad request or a failed pass: leave the batch empty for the next call
            self._rows, self._state = [], None
            raise
        return ["".join(t) for t in texts]
