"""The server's limits and micro-batching settings, in one dataclass (``rnnlab serve --help`` lists them).

A request over a limit is refused with a 4xx and a JSON body ``{"error": {"code", "message"}}`` naming the
limit; the codes are listed in :mod:`rnnlab.serve.app`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

__all__ = ["ServeLimits"]


@dataclass(frozen=True)
class ServeLimits:
    max_body_bytes: int = 1 << 20  # a request body over this many bytes: 413 body_too_large
    max_texts: int = 256  # texts in one /v1/predict request: 413 too_many_texts
    max_text_chars: int = 10_000  # characters of one text: 413 text_too_long
    max_generate_length: int = 2_000  # characters one /v1/generate request may ask for
    max_history: int = 100_000  # values one /v1/forecast request may send
    max_batch_size: int = 32  # texts in one forward pass (micro-batching; 1 turns it off)
    max_wait_ms: float = 5.0  # how long the worker waits for more requests to fill a batch
    max_queue: int = 1024  # requests waiting for the worker; beyond: 503 overloaded
    # An over-limit body is read and thrown away (up to these bounds) before its 413 is sent, so that a
    # client that writes its whole body before reading gets the answer instead of a reset connection.
    max_drain_bytes: int = 64 << 20  # bytes of an over-limit body read and discarded, at most
    max_drain_ms: float = 10_000.0  # time spent discarding an over-limit body, at most

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or value < (0 if f.name == "max_wait_ms" else 1)
            ):
                low = ">= 0" if f.name == "max_wait_ms" else ">= 1"
                raise ValueError(f"{f.name}: expected a number {low}, received {value!r}")
