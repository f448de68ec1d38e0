"""Micro-batching: requests that arrive together share one forward pass on the worker thread, each gets its
own results in order, and batched answers equal one-by-one answers."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from serve_testing import ThreadServer, call

from rnnlab.serve.batching import MicroBatcher, Overloaded

pytestmark = pytest.mark.usefixtures("one_thread")


class _Recorder:
    def __init__(self, gate: threading.Event | None = None, fail_on=None):
        self.batches, self.threads, self.gate, self.fail_on = [], set(), gate, fail_on

    def __call__(self, key, items):
        if self.gate is not None:
            self.gate.wait(10)
        self.threads.add(threading.get_ident())
        self.batches.append((key, list(items)))
        if self.fail_on is not None and self.fail_on in items:
            raise ValueError(f"bad item {self.fail_on}")
        return [(key, item * 10) for item in items]


def _submit_all(batcher, jobs):
    async def go():
        loop_thread = threading.get_ident()
        futures = [batcher.submit(key, items) for key, items in jobs]
        results = await asyncio.gather(*futures, return_exceptions=True)
        return loop_thread, results

    return asyncio.run(go())


def test_jobs_that_arrive_together_share_a_batch_off_the_event_loop():
    record = _Recorder(gate := threading.Event())
    batcher = MicroBatcher(record, max_batch_size=8, max_wait_ms=200, max_queue=100)
    jobs = [(None, [i, i + 100]) for i in range(10)]  # 20 items: batches of at most 8

    async def go():
        futures = [batcher.submit(key, items) for key, items in jobs]
        gate.set()
        return threading.get_ident(), await asyncio.gather(*futures)

    loop_thread, results = asyncio.run(go())
    batcher.stop()
    assert results == [[(None, i * 10), (None, (i + 100) * 10)] for i in range(10)]
    sizes = [len(items) for _, items in record.batches]
    assert sum(sizes) == 20 and max(sizes) <= 8 and len(sizes) < 10  # batched, never over the cap
    assert record.threads == {batcher.worker_ident} and loop_thread not in record.threads


def test_keys_are_never_mixed_and_batch_size_one_runs_each_job_alone():
    record = _Recorder()
    batcher = MicroBatcher(record, max_batch_size=1, max_wait_ms=50, max_queue=100)
    _, results = _submit_all(batcher, [(k % 2, [k]) for k in range(6)])
    batcher.stop()
    assert results == [[(k % 2, k * 10)] for k in range(6)]
    assert [len(items) for _, items in record.batches] == [1] * 6
    record = _Recorder()
    batcher = MicroBatcher(record, max_batch_size=64, max_wait_ms=100, max_queue=100)
    _, results = _submit_all(batcher, [(k % 2, [k]) for k in range(6)])
    batcher.stop()
    assert results == [[(k % 2, k * 10)] for k in range(6)]
    assert all(len({(key, item % 2) for item in items}) == 1 for key, items in record.batches)


def test_a_full_queue_refuses_and_an_error_reaches_only_its_batch():
    gate = threading.Event()
    batcher = MicroBatcher(_Recorder(gate), max_batch_size=1, max_wait_ms=0, max_queue=2)

    async def go():
        futures = [batcher.submit(None, [0])]
        await asyncio.sleep(0.1)  # the worker has taken it and waits at the gate
        futures += [batcher.submit(None, [i]) for i in (1, 2)]  # the queue's two places
        with pytest.raises(Overloaded, match="queue is full"):
            for i in range(3):
                futures.append(batcher.submit(None, [i]))
        gate.set()
        return await asyncio.gather(*futures)

    assert [r[0][1] for r in asyncio.run(go())][:3] == [0, 10, 20]
    batcher.stop()
    batcher = MicroBatcher(_Recorder(fail_on=3), max_batch_size=1, max_wait_ms=0)
    _, results = _submit_all(batcher, [(None, [3]), (None, [4])])
    batcher.stop()
    assert isinstance(results[0], ValueError) and results[1] == [(None, 40)]  # the worker lives on


def test_batched_http_answers_equal_one_by_one_answers(sentiment_run):
    from rnnlab.inference import Predictor
    from rnnlab.serve.app import create_app
    from rnnlab.serve.limits import ServeLimits

    texts = [f"这个{'很棒' if i % 2 else '太差'}东西{'的' * i}" for i in range(12)]
    app = create_app(sentiment_run, ServeLimits(max_batch_size=16, max_wait_ms=150))
    server = ThreadServer(app)
    try:
        with ThreadPoolExecutor(12) as pool:
            answers = list(
                pool.map(lambda t: call(server.port, "POST", "/v1/predict", {"texts": [t]}), texts)
            )
        _, _, metrics = call(server.port, "GET", "/metrics")
    finally:
        server.stop()
    predictor = Predictor.from_checkpoint(sentiment_run)
    for text, (status, _, body) in zip(texts, answers, strict=True):
        (alone,) = predictor.predict([text])
        (got,) = body["predictions"]
        assert status == 200 and got["text"] == text and got["label"] == alone["label"]
        assert got["probabilities"] == pytest.approx(alone["probabilities"], abs=1e-5)
        assert got["attention"] == pytest.approx(alone["attention"], abs=1e-5)
    counts = dict(line.rsplit(" ", 1) for line in metrics.splitlines() if line and not line.startswith("#"))
    n_batches = float(counts["rnnlab_batch_size_count"])
    assert float(counts["rnnlab_batch_size_sum"]) == 12 and n_batches < 12  # some requests shared a pass
