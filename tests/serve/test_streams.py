"""Continuous batching of a character LM's requests (``serve/streams.py``): requests share forward passes,
each text equals the lone sampler's, at most ``max_rows`` run at once, a cancelled request leaves the
batch at once, a bad one fails alone, a full queue refuses, and ``stop()`` finishes what was taken."""

from __future__ import annotations

import asyncio

import pytest
import torch

from rnnlab.data import DataError, Vocab
from rnnlab.inference.sampler import Sampler
from rnnlab.models.charlm import CharLM, CharLMConfig
from rnnlab.serve.batching import Overloaded
from rnnlab.serve.streams import StreamScheduler

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def sampler():
    torch.manual_seed(0)
    vocab = Vocab.build([list("the cat sat on the mat\nand the dog ran far away\n")])
    return Sampler(CharLM(CharLMConfig(vocab_size=len(vocab), hidden_size=16, embedding_dim=6)), vocab)


def _options(i: int, length: int = 40) -> dict:
    return {"prime": "the"[: i % 3 + 1], "length": length + i, "temperature": 0.9, "top_k": None,
            "top_p": None, "seed": i}  # fmt: skip


def test_requests_share_passes_and_each_equals_the_lone_sampler(sampler):
    steps: list[int] = []
    scheduler = StreamScheduler(sampler, max_rows=32, on_step=steps.append)

    async def go():
        streams = [scheduler.submit(_options(i)) for i in range(12)]
        return await asyncio.gather(*(s.text() for s in streams))

    try:
        texts = asyncio.run(go())
    finally:
        scheduler.stop()
    assert texts == ["".join(sampler.stream(**_options(i))) for i in range(12)]
    assert max(steps) > 1  # several requests in one forward pass
    assert sum(steps) == sum(40 + i for i in range(12))  # one row-step per character, none wasted


def test_at_most_max_rows_at_once(sampler):
    steps: list[int] = []
    scheduler = StreamScheduler(sampler, max_rows=3, on_step=steps.append)

    async def go():
        return await asyncio.gather(*(scheduler.submit(_options(i, 10)).text() for i in range(7)))

    try:
        texts = asyncio.run(go())
    finally:
        scheduler.stop()
    assert [len(t) for t in texts] == [10 + i for i in range(7)]
    assert max(steps) == 3


def test_a_cancelled_request_leaves_and_a_bad_one_fails_alone(sampler):
    steps: list[int] = []
    scheduler = StreamScheduler(sampler, max_rows=8, max_queue=3, on_step=steps.append)

    async def go():
        long = scheduler.submit(_options(0, 100_000))
        bad = scheduler.submit({**_options(1), "prime": "ΩΩ"})
        short = scheduler.submit(_options(2))
        with pytest.raises(Overloaded):
            scheduler.submit(_options(3))  # three taken: the queue is full
        got = []
        async for ch in long.chars():
            got.append(ch)
            if len(got) == 5:
                break
        scheduler.cancel(long)
        with pytest.raises(DataError, match="prime"):
            await bad.text()
        text = await short.text()
        for _ in range(200):  # the cancelled row leaves before the next step
            if not len(scheduler.batch):
                break
            await asyncio.sleep(0.01)
        again = await scheduler.submit(_options(4)).text()  # its place in the queue is free again
        return text, again

    try:
        text, again = asyncio.run(go())
    finally:
        scheduler.stop()
    assert text == "".join(sampler.stream(**_options(2)))
    assert again == "".join(sampler.stream(**_options(4)))
    assert sum(steps) < 10_000  # the 100,000-character request stopped soon after its cancel


def test_stop_finishes_what_was_taken(sampler):
    scheduler = StreamScheduler(sampler)

    async def go():
        streams = [scheduler.submit(_options(i, 30)) for i in range(4)]
        await asyncio.get_running_loop().run_in_executor(None, scheduler.stop)
        return [await s.text() for s in streams]

    assert [len(t) for t in asyncio.run(go())] == [30, 31, 32, 33]
