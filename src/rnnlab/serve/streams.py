"""Continuous batching for a character LM: every request in flight advances one character per forward pass.

A request to ``/v1/generate`` (whole or streamed) becomes a row of one
:class:`~rnnlab.inference.batch_sampler.BatchSampler` that a worker thread steps for as long as it has rows.
Between two steps the worker takes new requests in (each reads its prime alone, then joins the batch: up to
``max_rows`` rows at once, the rest wait in arrival order) and drops the rows whose client went away, so a
new request never waits for a whole batch to finish and a short one leaves as soon as it is done. The
characters of a step are handed to the event loop in one call; each request reads its own from an
``asyncio.Queue`` (:meth:`Stream.chars`). A request's text is what the lone sampler writes for its options
(see :mod:`rnnlab.inference.batch_sampler`).

The number of requests waiting or running is bounded by ``max_queue``: beyond it
:meth:`StreamScheduler.submit` raises :class:`~rnnlab.serve.batching.Overloaded` (a 503). ``stop()``
lets every request already taken finish, then ends the worker.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import queue
import threading
from collections.abc import AsyncIterator, Callable

from rnnlab.inference.batch_sampler import BatchSampler
from rnnlab.inference.sampler import Sampler
from rnnlab.serve.batching import Overloaded

__all__ = ["Stream", "StreamScheduler"]

_DONE = object()
_STOP = object()


class Stream:
    """One request's characters, as they are drawn (read them with :meth:`chars` or :meth:`text`)."""

    def __init__(self, key: int, options: dict, loop: asyncio.AbstractEventLoop) -> None:
        self.key, self.options, self.loop = key, options, loop
        self.queue: asyncio.Queue = asyncio.Queue()  # characters, then _DONE or an exception
        self.cancelled = False

    async def chars(self) -> AsyncIterator[str]:
        """Each character as it comes; raises what made the request fail."""
        while True:
            item = await self.queue.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    async def text(self) -> str:
        return "".join([ch async for ch in self.chars()])


class StreamScheduler:
    """The worker thread that steps one batch of samplings (see the module docstring).

    ``on_step(n_rows)`` is called after each forward pass (the metrics' batch-size histograms).
    """

    def __init__(
        self,
        sampler: Sampler,
        max_rows: int = 32,
        max_queue: int = 1024,
        on_step: Callable[[int], None] | None = None,
    ) -> None:
        self.batch, self.max_rows = BatchSampler(sampler), max_rows
        self.max_queue, self.on_step = max_queue, on_step
        self._inbox: queue.Queue = queue.Queue()
        self._keys = itertools.count()
        self._streams: dict[int, Stream] = {}  # taken in: waiting or running
        self._count, self._lock = 0, threading.Lock()  # submitted and not yet finished
        self._thread = threading.Thread(target=self._work, name="rnnlab-serve-streams", daemon=True)
        self._thread.start()

    def submit(self, options: dict) -> Stream:
        """A new request (the keyword arguments of ``BatchSampler.add`` but ``key``). Raises
        :class:`Overloaded` when ``max_queue`` requests are already waiting or running."""
        with self._lock:
            if self._count >= self.max_queue:
                raise Overloaded(f"the request queue is full ({self.max_queue} waiting); retry later")
            self._count += 1
        stream = Stream(next(self._keys), dict(options), asyncio.get_running_loop())
        self._inbox.put_nowait(stream)
        return stream

    def cancel(self, stream: Stream) -> None:
        """The client went away: its row leaves the batch before the next step (no more characters)."""
        stream.cancelled = True

    def stop(self, timeout: float | None = 30.0) -> None:
        """Finish every request already submitted, then end the worker thread."""
        self._inbox.put(_STOP)
        self._thread.join(timeout)

    # The worker thread.

    def _work(self) -> None:
        waiting: collections.deque[Stream] = collections.deque()
        running = True
        while running or waiting or len(self.batch):
            idle = not waiting and not len(self.batch)
            try:  # block only when there is nothing to step
                item = self._inbox.get() if idle and running else self._inbox.get_nowait()
                while True:
                    if item is _STOP:
                        running = False
                    else:
                        waiting.append(item)
                    item = self._inbox.get_nowait()
            except queue.Empty:
                pass
            for key in self.batch.keys:
                if self._streams[key].cancelled:
                    self.batch.remove(key)
                    self._finish(self._streams[key], None)
            while waiting and len(self.batch) < self.max_rows:
                stream = waiting.popleft()
                if stream.cancelled:
                    self._finish(stream, None)
                    continue
                try:
                    self.batch.add(stream.key, **stream.options)
                except Exception as error:  # a bad prime or option fails its own request only
                    self._finish(stream, error)
                    continue
                self._streams[stream.key] = stream
            if len(self.batch):
                self._step()

    def _step(self) -> None:
        try:
            drawn = self.batch.step()
        except Exception as error:  # a failed pass fails the requests in it; the worker lives on
            for key in self.batch.keys:
                self.batch.remove(key)
                self._finish(self._streams[key], error)
            return
        if self.on_step is not None:
            self.on_step(len(drawn))
        by_loop: dict = {}
        for key, ch, last in drawn:
            stream = self._streams[key]
            by_loop.setdefault(stream.loop, []).append((stream.queue, ch))
            if last:
                by_loop[stream.loop].append((stream.queue, _DONE))
                self._finish(stream, None, notify=False)
        for loop, items in by_loop.items():  # one hand-over per step, not one per character
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits for these any more
                loop.call_soon_threadsafe(_deliver, items)

    def _finish(self, stream: Stream, error: BaseException | None, notify: bool = True) -> None:
        self._streams.pop(stream.key, None)
        with self._lock:
            self._count -= 1
        if notify:
            with contextlib.suppress(RuntimeError):
                stream.loop.call_soon_threadsafe(_deliver, [(stream.queue, error or _DONE)])


def _deliver(items: list) -> None:
    for q, item in items:
        q.put_nowait(item)
