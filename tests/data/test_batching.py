"""Splits, length-bucketed batches and padding."""

from __future__ import annotations

import random

import pytest
import torch

from rnnlab.data import (
    BucketBatchSampler,
    DataError,
    LabeledTexts,
    TextBatches,
    collate,
    make_splits,
    stratified_split,
)


def test_collate_pads_and_masks():
    batch = collate([[5, 6, 7], [8]], pad_id=0, labels=[1, 0])
    assert batch.ids.tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch.lengths.tolist() == [3, 1]
    assert batch.mask.tolist() == [[True, True, True], [True, False, False]]
    assert batch.labels.tolist() == [1, 0] and len(batch) == 2
    with pytest.raises(ValueError, match="received an empty one"):
        collate([[1], []])
    with pytest.raises(ValueError, match="at least one sequence"):
        collate([])


def test_stratified_split_is_disjoint_complete_and_balanced():
    labels = ["a"] * 60 + ["b"] * 30 + ["c"] * 10
    train, valid, test = stratified_split(labels, [0.1, 0.2], seed=3)
    assert sorted(train + valid + test) == list(range(100))
    assert not (set(train) & set(valid) or set(train) & set(test) or set(valid) & set(test))
    assert [labels[i] for i in valid].count("a") == 6 and [labels[i] for i in test].count("c") == 2
    assert stratified_split(labels, [0.1, 0.2], seed=3) == [train, valid, test]
    assert stratified_split(labels, [0.1, 0.2], seed=4) != [train, valid, test]


def test_stratified_split_keeps_one_example_of_a_rare_class_for_training():
    labels = ["a"] * 20 + ["rare"]
    train, held = stratified_split(labels, [0.5], seed=0)
    assert 20 in train  # the only "rare" example stays in training
    train, held = stratified_split(["a"] * 20 + ["b"] * 2, [0.1], seed=0)
    assert [i for i in held if i >= 20] == [min(i for i in (20, 21) if i not in train)]
    with pytest.raises(ValueError, match="fractions: expected non-negative shares summing to < 1"):
        stratified_split(labels, [0.5, 0.5])


def _data(n: int, labels=("neg", "pos")) -> LabeledTexts:
    return LabeledTexts([f"text {i}" for i in range(n)], [labels[i % len(labels)] for i in range(n)], "toy")


def test_make_splits_with_a_validation_file_drops_leaked_texts():
    train = _data(20)
    valid = LabeledTexts(["text 3", "new one"], ["pos", "neg"], "valid.csv")
    splits = make_splits(train, 0.1, valid=valid)
    assert splits.valid.texts == ["new one"] and len(splits.train) == 20 and splits.test is None
    assert splits.info["valid_dropped_as_in_train"] == 1


def test_make_splits_errors():
    with pytest.raises(DataError, match="toy: training needs at least 2 classes, found only 'pos'"):
        make_splits(_data(10, labels=("pos",)), 0.2)
    with pytest.raises(DataError, match=r"valid.csv: validation labels \['meh'\] never occur"):
        make_splits(_data(10), 0.1, valid=LabeledTexts(["x"], ["meh"], "valid.csv"))
    with pytest.raises(DataError, match="validation part is empty"):
        make_splits(_data(10), 0.1, valid=LabeledTexts(["text 1"], ["pos"], "valid.csv"))


@pytest.fixture
def lengths() -> list[int]:
    rng = random.Random(0)
    return [rng.randint(1, 300) for _ in range(1000)]


def test_sampler_yields_every_index_once_per_epoch(lengths):
    sampler = BucketBatchSampler(lengths, batch_size=32, seed=0)
    seen = [i for batch in sampler for i in batch]
    assert sorted(seen) == list(range(1000)) and len(list(sampler)) == len(sampler) == 32


def test_sampler_is_seeded_per_epoch(lengths):
    a, b = BucketBatchSampler(lengths, 32, seed=0), BucketBatchSampler(lengths, 32, seed=0)
    first = list(a)
    a.set_epoch(1)
    second = list(a)
    assert first != second
    b.set_epoch(1)
    assert list(b) == second  # epoch 1 does not depend on having iterated epoch 0: resume-safe
    b.set_epoch(0)
    assert list(b) == first


def test_bucketing_cuts_padding_several_fold(lengths):
    def padded(batches):
        return sum(len(b) * max(lengths[i] for i in b) for b in batches)

    bucketed = padded(list(BucketBatchSampler(lengths, 32, seed=0)))
    order = list(range(1000))
    random.Random(0).shuffle(order)
    unbucketed = padded([order[i : i + 32] for i in range(0, 1000, 32)])
    assert bucketed < 0.6 * unbucketed
    assert bucketed >= sum(lengths)


def test_sampler_without_shuffle_is_sorted_and_fixed(lengths):
    batches = list(BucketBatchSampler(lengths, 100, shuffle=False))
    flat = [lengths[i] for batch in batches for i in batch]
    assert flat == sorted(lengths)
    assert batches == list(BucketBatchSampler(lengths, 100, shuffle=False, seed=9))
    with pytest.raises(ValueError, match="batch_size: expected >= 1, received 0"):
        BucketBatchSampler(lengths, 0)


def test_text_batches_keep_labels_with_their_texts():
    sequences = [[i + 1] * (i % 7 + 1) for i in range(50)]
    labels = [i % 3 for i in range(50)]
    batches = TextBatches(sequences, labels, batch_size=8, shuffle=True, seed=1)
    batches.set_epoch(2)
    count = 0
    for batch in batches:
        for row, i in enumerate(batch.index):
            assert batch.ids[row, : batch.lengths[row]].tolist() == sequences[i]
            assert int(batch.labels[row]) == labels[i]
            assert not batch.mask[row, batch.lengths[row] :].any()
        count += len(batch)
    assert count == 50 and len(batches) == 7
    assert batch.to("cpu").ids.dtype == torch.long
    with pytest.raises(ValueError, match="labels: expected 50 entries, received 3"):
        TextBatches(sequences, [0, 1, 2], 8)
