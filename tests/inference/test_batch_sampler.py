"""Sampling many requests in one batch: every row's text equals the lone sampler's for the same options
(LSTM-like and GRU-like states, rows of every length, rows joining while others run, rows removed), and a
bad request leaves the batch usable."""

from __future__ import annotations

import pytest
import torch

from rnnlab.data import DataError, Vocab
from rnnlab.inference.batch_sampler import BatchSampler
from rnnlab.inference.sampler import Sampler
from rnnlab.models.charlm import CharLM, CharLMConfig

pytestmark = pytest.mark.usefixtures("one_thread")

TEXT = "the cat sat on the mat\nand the dog ran far away\n"
REQUESTS = [
    {"prime": "the", "length": 30, "temperature": 1.0, "seed": 1},
    {"prime": "a", "length": 5, "temperature": 0.0, "seed": 2},  # greedy
    {"prime": "", "length": 50, "temperature": 0.7, "top_k": 3, "seed": 3},
    {"prime": "dog ran", "length": 17, "temperature": 1.3, "top_p": 0.8, "seed": 4},
    {"prime": "cat", "length": 1, "top_k": 2, "top_p": 0.5, "seed": 5},
]


def _sampler(cell: str) -> Sampler:
    torch.manual_seed(0)
    vocab = Vocab.build([list(TEXT)])
    config = CharLMConfig(vocab_size=len(vocab), hidden_size=24, embedding_dim=6, cell=cell, num_layers=2)
    return Sampler(CharLM(config), vocab)


def _alone(sampler: Sampler, options: dict) -> str:
    return "".join(sampler.stream(**options))


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_rows_sampled_together_equal_each_sampled_alone(cell):
    sampler = _sampler(cell)
    assert BatchSampler(sampler).run(REQUESTS) == [_alone(sampler, r) for r in REQUESTS]


def test_rows_join_and_leave_between_steps():
    sampler = _sampler("lstm")
    batch, texts = BatchSampler(sampler), {}
    batch.add("a", **REQUESTS[0])
    for _ in range(7):  # "a" is 7 characters in when "b" and "c" join
        for key, ch, _ in batch.step():
            texts[key] = texts.get(key, "") + ch
    batch.add("b", **REQUESTS[2])
    batch.add("c", **REQUESTS[3])
    sizes = []
    while batch:
        sizes.append(len(batch))
        for key, ch, last in batch.step():
            texts[key] = texts.get(key, "") + ch
            assert last == (len(texts[key]) == {"a": 30, "b": 50, "c": 17}[key])
        if len(texts.get("c", "")) == 5 and "c" in batch.keys:
            batch.remove("c")  # its client went away
            assert batch.keys == ["a", "b"]
    assert texts["a"] == _alone(sampler, REQUESTS[0]) and texts["b"] == _alone(sampler, REQUESTS[2])
    assert texts["c"] == _alone(sampler, REQUESTS[3])[:5]
    assert sizes[0] == 3 and sizes[-1] == 1 and not batch.keys


def test_a_bad_request_is_an_error_and_the_batch_stays_usable():
    sampler = _sampler("gru")
    batch = BatchSampler(sampler)
    with pytest.raises(DataError, match="prime"):
        batch.run([REQUESTS[0], {"prime": "ΩΩ", "length": 3}])
    with pytest.raises(DataError, match="--length"):
        batch.add("x", length=0)
    assert len(batch) == 0
    batch.add("x", **REQUESTS[1])
    with pytest.raises(ValueError, match="already a row"):
        batch.add("x", **REQUESTS[1])
    with pytest.raises(RuntimeError, match="already has rows"):
        batch.run([REQUESTS[0]])
    assert "".join(
        ch for _, ch, _ in batch.step() + batch.step() + batch.step() + batch.step() + batch.step()
    )
    assert batch.run(REQUESTS[:2]) == [_alone(sampler, r) for r in REQUESTS[:2]]
