"""How the micro-batcher forms batches, checked with a fake model that records when each batch starts:
the window counts from a job's arrival (a job that queued behind a running batch is not held once more),
a full batch never waits, lengths are grouped so that one long text does not pad a batch of short ones,
and the oldest job always leads (no job is overtaken without end)."""

from __future__ import annotations

import asyncio
import threading
import time

from rnnlab.serve.batching import _SLACK, _SPREAD, MicroBatcher


class _Model:
    """Records (start time, key, items) per batch; the first batch waits for ``gate`` when one is given;
    every batch takes ``seconds``."""

    def __init__(self, gate: threading.Event | None = None, seconds: float = 0.0) -> None:
        self.gate, self.seconds, self.batches = gate, seconds, []

    def __call__(self, key, items):
        self.batches.append((time.perf_counter(), key, list(items)))
        if self.gate is not None and len(self.batches) == 1:
            self.gate.wait(10)
        time.sleep(self.seconds)
        return list(items)


def test_a_job_that_queued_behind_a_running_batch_goes_at_once():
    gate = threading.Event()
    model = _Model(gate)
    batcher = MicroBatcher(model, max_batch_size=8, max_wait_ms=300)

    async def go():
        first = batcher.submit(None, ["x"])
        await asyncio.sleep(0.5)  # the lone job waited its window, then started: the model is busy
        second = batcher.submit(None, ["y"])
        await asyncio.sleep(0.4)  # longer than the window: "y" has waited enough
        released = time.perf_counter()
        gate.set()
        await asyncio.gather(first, second)
        return released

    released = asyncio.run(go())
    batcher.stop()
    (_, _, a), (t1, _, b) = model.batches
    assert (a, b) == (["x"], ["y"])
    assert t1 - released < 0.15  # not another 300 ms window after the wait it already had


def test_a_lone_job_waits_at_most_the_window_and_a_full_batch_not_at_all():
    model = _Model()
    batcher = MicroBatcher(model, max_batch_size=4, max_wait_ms=150)

    async def go():
        t_lone = time.perf_counter()
        await batcher.submit(None, ["a"])
        t_full = time.perf_counter()
        await asyncio.gather(*(batcher.submit(None, [c]) for c in "bcde"))
        return t_lone, t_full

    t_lone, t_full = asyncio.run(go())
    batcher.stop()
    (s0, _, _), (s1, _, items) = model.batches
    assert 0.1 < s0 - t_lone < 0.15 + 0.1  # it waited for company, for the window and no longer
    assert items == list("bcde") and s1 - t_full < 0.1  # four of four: no waiting


def test_lengths_are_grouped_and_the_oldest_job_leads():
    gate = threading.Event()
    model = _Model(gate)
    batcher = MicroBatcher(model, max_batch_size=16, max_wait_ms=0)
    long_first = "长" * 250
    texts = [long_first] + [("短" * (3 + i % 4)) if i % 2 else "长" * (200 + i) for i in range(1, 21)]

    async def go():
        busy = batcher.submit(None, ["busy"])
        await asyncio.sleep(0.2)  # the model runs "busy"; the others queue up behind it
        futures = [batcher.submit(None, [t]) for t in texts]
        gate.set()
        return await asyncio.gather(busy, *futures)

    results = asyncio.run(go())
    batcher.stop()
    assert results[1:] == [[t] for t in texts]  # every job its own answer, in order
    batches = [items for _, _, items in model.batches[1:]]
    assert batches[0][0] == long_first  # the oldest leads, though the short texts outnumber it
    assert sorted(t for b in batches for t in b) == sorted(texts) and len(batches) == 2
    for items in batches:
        lengths = [len(t) for t in items]
        assert max(lengths) <= _SPREAD * min(lengths) + _SLACK, lengths  # short and long never mixed


def test_no_job_waits_more_than_the_running_batch_or_its_window():
    """Jobs arrive every 70 ms, each batch takes 200 ms, the window is 100 ms: a job that arrives while a
    batch runs waits for it and then goes (its window has run out meanwhile), so no job waits more than
    about 200 ms. (The old rule opened a fresh window after the running batch: up to 300 ms.)"""
    model = _Model(seconds=0.2)
    batcher = MicroBatcher(model, max_batch_size=8, max_wait_ms=100)

    async def go():
        futures, sent = [], []
        for i in range(16):
            sent.append(time.perf_counter())
            futures.append(batcher.submit(None, [str(i)]))
            await asyncio.sleep(0.07)
        await asyncio.gather(*futures)
        return sent

    sent = asyncio.run(go())
    batcher.stop()
    starts = {item: s for s, _, items in model.batches for item in items}
    waits = [starts[str(i)] - t for i, t in enumerate(sent)]
    assert max(waits) < 0.2 + 0.05, sorted(waits)[-3:]
