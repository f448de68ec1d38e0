"""Micro-batching: requests that arrive together go through the model in one forward pass.

The event loop only enqueues a job (``submit``) and awaits its future; one worker thread takes the first
waiting job, then keeps taking jobs with the same key (the same decoding options) until the batch holds
``max_batch_size`` items or ``max_wait_ms`` have passed since the first, runs the model once on all their
items and hands each job its own slice of the results, in order. A job of more items than the batch size
runs alone (the model batches it internally). The queue is bounded: a full queue refuses the job
(:class:`Overloaded`, a 503), it never blocks the event loop. ``stop()`` lets the worker finish every
job already queued, then ends it.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field

__all__ = ["MicroBatcher", "Overloaded"]


class Overloaded(RuntimeError):
    """The queue is full: the server is busy; the client may retry."""


@dataclass
class _Job:
    key: Hashable
    items: list
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop
    enqueued: float = field(default_factory=time.perf_counter)


_STOP = object()


class MicroBatcher:
    """``run_batch(key, items) -> results`` (one per item, in order) on a worker thread, batched.

    ``on_batch(n_items, n_jobs)`` is called after each forward pass (the metrics' batch-size histogram).
    """

    def __init__(
        self,
        run_batch: Callable[[Hashable, list], Sequence],
        max_batch_size: int = 32,
        max_wait_ms: float = 5.0,
        max_queue: int = 1024,
        on_batch: Callable[[int, int], None] | None = None,
    ) -> None:
        self.run_batch, self.max_batch_size, self.max_wait = run_batch, max_batch_size, max_wait_ms / 1000
        self.on_batch = on_batch
        self._queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self._held: _Job | None = None  # a job of another key, taken while filling a batch: first next time
        self._thread = threading.Thread(target=self._work, name="rnnlab-serve-model", daemon=True)
        self.worker_ident: int | None = None
        self._thread.start()

    def submit(self, key: Hashable, items: list) -> asyncio.Future:
        """Enqueue ``items``; the future gets their results. Raises :class:`Overloaded` on a full queue."""
        loop = asyncio.get_running_loop()
        job = _Job(key, list(items), loop.create_future(), loop)
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            raise Overloaded(
                f"the request queue is full ({self._queue.maxsize} waiting); retry later"
            ) from None
        return job.future

    def stop(self, timeout: float | None = 30.0) -> None:
        """Finish the queued jobs, then end the worker thread."""
        self._queue.put(_STOP)
        self._thread.join(timeout)

    def _next(self, timeout: float | None):
        if self._held is not None:
            job, self._held = self._held, None
            return job
        return (
            self._queue.get(timeout=timeout) if timeout is None or timeout > 0 else self._queue.get_nowait()
        )

    def _gather(self, first: _Job) -> tuple[list[_Job], bool]:
        jobs, n, deadline = [first], len(first.items), time.perf_counter() + self.max_wait
        while n < self.max_batch_size:
            try:
                job = self._next(deadline - time.perf_counter())
            except queue.Empty:
                break
            if job is _STOP:
                return jobs, True
            if job.key != first.key or n + len(job.items) > self.max_batch_size:
                self._held = job
                break
            jobs.append(job)
            n += len(job.items)
        return jobs, False

    def _work(self) -> None:
        self.worker_ident = threading.get_ident()
        stopping = False
        while True:
            if stopping and self._held is None and self._queue.empty():
                return
            try:
                first = self._next(None if not stopping else 0)
            except queue.Empty:
                return
            if first is _STOP:
                stopping = True
                continue
            jobs, stop_seen = self._gather(first)
            stopping = stopping or stop_seen
            self._run(jobs)

    def _run(self, jobs: list[_Job]) -> None:
        items = [item for job in jobs for item in job.items]
        try:
            results = list(self.run_batch(jobs[0].key, items))
            if len(results) != len(items):
                raise RuntimeError(f"run_batch returned {len(results)} results for {len(items)} items")
        except BaseException as error:  # handed to every request of the batch; the worker lives on
            for job in jobs:
                _call_soon(job, None, error)
            return
        if self.on_batch is not None:
            self.on_batch(len(items), len(jobs))
        start = 0
        for job in jobs:
            part = results[start : start + len(job.items)]
            start += len(job.items)
            _call_soon(job, part, None)


def _call_soon(job: _Job, *args) -> None:
    with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits for this result any more
        job.loop.call_soon_threadsafe(_settle, job.future, *args)


def _settle(future: asyncio.Future, result, error) -> None:
    if future.done():  # the client went away and its request was cancelled
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
