"""Splits, length-bucketed batches and padding.

* :func:`stratified_split` cuts de-duplicated data into train / validation / test, class by class, from a
  seed, so the same data and seed always give the same split (and each split keeps the class balance).
* :class:`BucketBatchSampler` groups examples of similar length into the same batch. A recurrent layer runs
  one step per time step of the *longest* sequence in its batch, so mixing a 20-token and a 300-token review
  makes the short one pay for 280 steps of padding; bucketing cuts an epoch's work several-fold. Shuffling is
  seeded per epoch (``set_epoch``), so an interrupted run resumed at epoch k sees the same batches as one that
  never stopped.
* :func:`collate` pads id lists into ``ids`` (B, T), ``lengths`` (B,) and ``mask`` (B, T), True = valid.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from rnnlab.data.sources import DataError, LabeledTexts

__all__ = [
    "stratified_split",
    "fingerprint",
    "Splits",
    "make_splits",
    "BucketBatchSampler",
    "Batch",
    "collate",
    "TextBatches",
]


def stratified_split(labels: Sequence[str], fractions: Sequence[float], seed: int = 0) -> list[list[int]]:
    """Split example indices into ``len(fractions) + 1`` parts, class by class.

    ``fractions`` are the shares of the held-out parts (e.g. ``(0.1, 0.1)`` for validation and test); the
    first part returned (train) gets the rest. In each class the indices are shuffled with ``seed`` and each
    held-out part takes ``round(n_class * fraction)`` of them, at least one when the class has enough examples
    to leave one for training. Every part is returned sorted.

    Example:
        >>> train, test = stratified_split(["a"] * 8 + ["b"] * 2, [0.5], seed=0)
        >>> len(train), len(test)
        (5, 5)
    """
    if any(f < 0 for f in fractions) or sum(fractions) >= 1:
        raise ValueError(
            f"fractions: expected non-negative shares summing to < 1, received {list(fractions)}"
        )
    rng = np.random.default_rng(seed)
    parts: list[list[int]] = [[] for _ in range(len(fractions) + 1)]
    for label in sorted(set(labels)):
        members = np.array([i for i, y in enumerate(labels) if y == label])
        members = members[rng.permutation(len(members))]
        start = 0
        for k, fraction in enumerate(fractions, start=1):
            take = int(round(len(members) * fraction))
            if fraction > 0 and take == 0 and len(members) - start > 1:
                take = 1
            take = min(take, len(members) - start - 1)  # always leave one example of the class for training
            parts[k] += members[start : start + max(take, 0)].tolist()
            start += max(take, 0)
        parts[0] += members[start:].tolist()
    return [sorted(part) for part in parts]


def fingerprint(texts: Sequence[str]) -> str:
    """A short SHA-256 of texts in order: records which examples a split holds without storing them."""
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()[:16]


@dataclass
class Splits:
    """Train / validation / test parts of a data set, and how they were made."""

    train: LabeledTexts  # what the model learns from
    valid: LabeledTexts  # for early stopping and model selection
    test: LabeledTexts | None  # held out until the end; None for the user's files without one
    info: dict  # seed, fractions, and per part: size, label counts, fingerprint


def make_splits(
    data: LabeledTexts,
    valid_fraction: float,
    test_fraction: float = 0.0,
    seed: int = 0,
    valid: LabeledTexts | None = None,
) -> Splits:
    """Split de-duplicated ``data`` (stratified, seeded), or pair it with a separate ``valid`` set.

    With ``valid`` given, all of ``data`` trains and validation texts that also occur in ``data`` are dropped
    (they would leak). Raises :class:`DataError` when training would see fewer than two classes, when the
    validation part is empty, or when it holds labels that training never sees.
    """
    info: dict = {"source": data.source, "seed": seed, "deduplication": data.info}
    if valid is None:
        parts = stratified_split(
            data.labels, [valid_fraction, test_fraction] if test_fraction else [valid_fraction], seed
        )
        train, valid = data.subset(parts[0]), data.subset(parts[1])
        test = data.subset(parts[2]) if test_fraction else None
        info.update(valid_fraction=valid_fraction, test_fraction=test_fraction)
    else:
        train, test = data, None
        seen = set(data.texts)
        keep = [i for i, t in enumerate(valid.texts) if t not in seen]
        info.update(valid_source=valid.source, valid_dropped_as_in_train=len(valid) - len(keep))
        valid = valid.subset(keep)
    labels = sorted(set(train.labels))
    if len(labels) < 2:
        found = f"only {labels[0]!r}" if labels else "none"
        raise DataError(f"{data.source}: training needs at least 2 classes, found {found}")
    if len(valid) == 0:
        raise DataError(f"{data.source}: the validation part is empty; add data or give a validation file")
    unseen = sorted(set(valid.labels) - set(labels))
    if unseen:
        raise DataError(f"{valid.source}: validation labels {unseen} never occur in the training data")
    for name, part in (("train", train), ("valid", valid), ("test", test)):
        if part is not None:
            info[name] = {
                "size": len(part),
                "labels": part.label_counts(),
                "fingerprint": fingerprint(part.texts),
            }
    return Splits(train, valid, test, info)


class BucketBatchSampler:
    """Batches of indices whose lengths are close, reshuffled every epoch from ``seed + epoch``.

    With ``shuffle``: the indices are permuted, cut into pools of ``batch_size * pool_batches``, each pool is
    sorted by length and cut into batches, and the batches are shuffled. Without: all indices sorted by length
    (stable), then cut into batches; the order is the same every time (for evaluation).
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        pool_batches: int = 50,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size: expected >= 1, received {batch_size}")
        if pool_batches < 1:
            raise ValueError(f"pool_batches: expected >= 1, received {pool_batches}")
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.batch_size, self.shuffle, self.seed, self.pool_batches = batch_size, shuffle, seed, pool_batches
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose shuffle :meth:`__iter__` yields (the trainer calls this every epoch)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return (len(self.lengths) + self.batch_size - 1) // self.batch_size

    def __iter__(self) -> Iterator[list[int]]:
        n, size = len(self.lengths), self.batch_size
        if not self.shuffle:
            order = np.argsort(self.lengths, kind="stable")
            yield from (order[i : i + size].tolist() for i in range(0, n, size))
            return
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(n)
        pool = size * self.pool_batches
        batches = []
        for start in range(0, n, pool):
            chunk = order[start : start + pool]
            chunk = chunk[np.argsort(self.lengths[chunk], kind="stable")]
            batches += [chunk[i : i + size].tolist() for i in range(0, len(chunk), size)]
        for b in rng.permutation(len(batches)):
            yield batches[b]


@dataclass
class Batch:
    """A padded batch. ``labels`` is None when predicting."""

    ids: Tensor  # (B, T) int64 token ids, padded with the vocabulary's pad id
    lengths: Tensor  # (B,) int64 number of real tokens, >= 1
    mask: Tensor  # (B, T) bool, True at real tokens
    labels: Tensor | None = None  # (B,) int64 class indices
    index: list[int] | None = None  # positions of these examples in the data set

    def to(self, device: torch.device | str) -> Batch:
        """The same batch on ``device`` (lengths stay on the CPU, as pack_padded_sequence wants them)."""
        labels = None if self.labels is None else self.labels.to(device)
        return Batch(self.ids.to(device), self.lengths, self.mask.to(device), labels, self.index)

    def __len__(self) -> int:
        return self.ids.shape[0]


def collate(
    sequences: Sequence[Sequence[int]], pad_id: int = 0, labels: Sequence[int] | None = None
) -> Batch:
    """Pad id lists to the longest one.

    Example:
        >>> b = collate([[5, 6, 7], [8]])
        >>> b.ids.tolist(), b.lengths.tolist(), b.mask.tolist()
        ([[5, 6, 7], [8, 0, 0]], [3, 1], [[True, True, True], [True, False, False]])
    """
    if not sequences:
        raise ValueError("sequences: expected at least one sequence, received none")
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.long)  # (B,)
    if int(lengths.min()) < 1:
        raise ValueError("sequences: expected every sequence to hold at least one id, received an empty one")
    ids = torch.full((len(sequences), int(lengths.max())), pad_id, dtype=torch.long)  # (B, T)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = torch.as_tensor(seq, dtype=torch.long)
    mask = torch.arange(ids.shape[1]).unsqueeze(0) < lengths.unsqueeze(1)  # (1, T) < (B, 1) -> (B, T)
    y = None if labels is None else torch.as_tensor(list(labels), dtype=torch.long)
    return Batch(ids, lengths, mask, y)


class TextBatches:
    """An iterable of :class:`Batch` over encoded texts, length-bucketed; re-iterable, with ``set_epoch``.

    Args:
        sequences: token ids per example (already truncated).
        labels: class index per example, or None.
        batch_size: examples per batch.
        shuffle: reshuffle every epoch (training) or keep a fixed length-sorted order (evaluation).
        seed: base seed of the shuffle.
        pad_id: id used for padding.
    """

    def __init__(
        self,
        sequences: Sequence[Sequence[int]],
        labels: Sequence[int] | None,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        pad_id: int = 0,
    ) -> None:
        if labels is not None and len(labels) != len(sequences):
            raise ValueError(f"labels: expected {len(sequences)} entries, received {len(labels)}")
        self.sequences, self.labels, self.pad_id = list(sequences), labels, pad_id
        self.sampler = BucketBatchSampler([len(s) for s in self.sequences], batch_size, shuffle, seed)

    def set_epoch(self, epoch: int) -> None:
        """Forwarded to the sampler: epoch ``k`` always yields the same batches."""
        self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[Batch]:
        for index in self.sampler:
            labels = None if self.labels is None else [self.labels[i] for i in index]
            batch = collate([self.sequences[i] for i in index], self.pad_id, labels)
            batch.index = index
            yield batch
