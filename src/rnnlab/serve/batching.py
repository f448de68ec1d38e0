"""Micro-batching: requests that arrive together go through the model in one forward pass.

The event loop only enqueues a job (``submit``) and awaits its future; one worker thread forms batches and
runs the model, then hands each job its own slice of the results, in order. How a batch is formed:

1. **The oldest waiting job leads.** Every batch starts with the job that has waited longest, so no job is
   overtaken for long by younger ones (however they are grouped), and the wait is bounded by the jobs ahead.
2. **The window counts from the leader's arrival**, not from when the worker got to it: a job that already
   waited ``max_wait_ms`` behind a running batch goes at once with whatever has arrived, and an idle worker
   waits for company at most ``max_wait_ms`` after a job arrives (and not at all once the batch is full).
   The old rule (wait ``max_wait_ms`` after taking the job) made every job that had queued behind a running
   batch wait once more: queueing plus a window, at every batch.
3. **Jobs of similar length are grouped.** A batch is padded to its longest text, so one long text in a
   batch of short ones costs the whole batch its length. Jobs of the leader's key (the same decoding
   options) join nearest length first, while the longest stays within ``2 x shortest + 16`` characters and
   the batch within ``max_batch_size`` items; the others wait for a batch of their own length (point 1
   bounds that wait).

A job of more items than the batch size runs alone (the model batches it internally). The queue is
bounded: a full queue refuses the job (:class:`Overloaded`, a 503), it never blocks the event loop.
``stop()`` lets the worker finish every job already queued, then ends it.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import queue
import threading
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field

__all__ = ["MicroBatcher", "Overloaded", "item_length"]

_SPREAD, _SLACK = 2.0, 16  # a batch's longest job: at most _SPREAD x its shortest + _SLACK


class Overloaded(RuntimeError):
    """The queue is full: the server is busy; the client may retry."""


def item_length(item) -> int:
    """The padding length of one item: a text's characters; 1 for anything else (a generate or forecast
    request's options, which are not padded against each other)."""
    return len(item) if isinstance(item, str) else 1


@dataclass
class _Job:
    key: Hashable
    items: list
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop
    length: int = 1  # its longest item's padding length
    enqueued: float = field(default_factory=time.perf_counter)


_STOP = object()


class MicroBatcher:
    """``run_batch(key, items) -> results`` (one per item, in order) on a worker thread, batched.

    ``on_batch(n_items, n_jobs)`` is called after each forward pass (the metrics' batch-size histogram);
    ``length(item)`` gives an item's padding length (default :func:`item_length`).
    """

    def __init__(
        self,
        run_batch: Callable[[Hashable, list], Sequence],
        max_batch_size: int = 32,
        max_wait_ms: float = 5.0,
        max_queue: int = 1024,
        on_batch: Callable[[int, int], None] | None = None,
        length: Callable[[object], int] = item_length,
    ) -> None:
        self.run_batch, self.max_batch_size, self.max_wait = run_batch, max_batch_size, max_wait_ms / 1000
        self.on_batch, self.length, self.max_queue = on_batch, length, max_queue
        self._queue: queue.Queue = queue.Queue()  # bounded by _waiting, which counts the worker's jobs too
        self._waiting, self._lock = 0, threading.Lock()  # jobs submitted and not yet in a forward pass
        self._thread = threading.Thread(target=self._work, name="rnnlab-serve-model", daemon=True)
        self.worker_ident: int | None = None
        self._thread.start()

    def submit(self, key: Hashable, items: list) -> asyncio.Future:
        """Enqueue ``items``; the future gets their results. Raises :class:`Overloaded` on a full queue."""
        loop = asyncio.get_running_loop()
        items = list(items)
        job = _Job(key, items, loop.create_future(), loop, max([1, *map(self.length, items)]))
        with self._lock:
            if self._waiting >= self.max_queue:
                raise Overloaded(f"the request queue is full ({self.max_queue} waiting); retry later")
            self._waiting += 1
        self._queue.put_nowait(job)
        return job.future

    def stop(self, timeout: float | None = 30.0) -> None:
        """Finish the queued jobs, then end the worker thread."""
        self._queue.put(_STOP)
        self._thread.join(timeout)

    # The worker thread.

    def _take(self, pending: list[_Job], timeout: float | None) -> bool:
        """Move one job from the queue into ``pending`` (waiting up to ``timeout``; 0: not at all), then
        every job already there. False once the stop mark is seen; queue.Empty if none came in time."""
        job = self._queue.get(timeout=timeout) if timeout is None or timeout > 0 else self._queue.get_nowait()
        running = job is not _STOP
        if running:
            pending.append(job)
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                return running
            if job is _STOP:
                running = False
            else:
                pending.append(job)

    def _work(self) -> None:
        self.worker_ident = threading.get_ident()
        pending: list[_Job] = []  # in arrival order
        running = True
        while True:
            with contextlib.suppress(queue.Empty):  # nothing new: go on with the jobs in hand
                running = self._take(pending, None if running and not pending else 0) and running
            if not pending:
                if running:
                    continue
                return
            head = pending[0]
            # Wait for company while the leader is younger than the window and its batch is not full.
            while running and sum(len(j.items) for j in pending if j.key == head.key) < self.max_batch_size:
                remaining = head.enqueued + self.max_wait - time.perf_counter()
                if remaining <= 0:
                    break
                try:
                    running = self._take(pending, remaining)
                except queue.Empty:
                    break
            jobs = self._choose(pending)
            chosen = {id(j) for j in jobs}
            pending = [j for j in pending if id(j) not in chosen]
            with self._lock:
                self._waiting -= len(jobs)
            self._run(jobs)

    def _choose(self, pending: list[_Job]) -> list[_Job]:
        """The oldest job, and the jobs of its key nearest to its length that fit (see the module doc)."""
        head = pending[0]
        jobs, n, short, long = [head], len(head.items), head.length, head.length
        if n >= self.max_batch_size:
            return jobs
        others = [j for j in pending[1:] if j.key == head.key]
        others.sort(key=lambda j: abs(math.log(j.length / head.length)))  # stable: older first on ties
        for job in others:
            lo, hi = min(short, job.length), max(long, job.length)
            if n + len(job.items) <= self.max_batch_size and hi <= _SPREAD * lo + _SLACK:
                jobs.append(job)
                n, short, long = n + len(job.items), lo, hi
        return jobs

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
