"""Learning-rate schedules tied to a time budget: the rate decays to zero as the budget is spent.

A step-count schedule (``lr_factor(step, total_steps, ...)``) needs the number of steps in advance; under a
time budget that number depends on the machine, so a run either stops with the rate still high or decays
long before the budget is spent. :class:`TimeBudget` measures the progress ``p = elapsed / budget`` in
``[0, 1]`` on the trainer's clock (wall time by default: what the user waits for), and
:func:`budget_lr_factor` maps it to a multiplier of the peak rate:

    warmup (step < warmup_steps):  (step + 1) / warmup_steps
    constant:                      1
    linear:                        1 - p
    cosine:                        (1 + cos(pi p)) / 2

The clock is an argument, so tests drive it by hand. ``elapsed`` survives a resume: a budget of 600 s cut
after 200 s continues with 400 s left (the trainer saves it in its loop state).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

__all__ = ["TimeBudget", "budget_lr_factor", "SCHEDULES"]

SCHEDULES = ("constant", "cosine", "linear")


def budget_lr_factor(step: int, progress: float, warmup_steps: int, schedule: str) -> float:
    """Multiplier of the peak lr at optimizer step ``step`` (0-based), ``progress`` of the budget spent.

    >>> [round(budget_lr_factor(9, p, 0, "cosine"), 3) for p in (0.0, 0.5, 1.0)]
    [1.0, 0.5, 0.0]
    >>> budget_lr_factor(0, 0.9, warmup_steps=4, schedule="linear")  # warmup goes by steps
    0.25
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule: expected one of {SCHEDULES}, received {schedule!r}")
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    p = min(max(progress, 0.0), 1.0)
    if schedule == "constant":
        return 1.0
    return 0.5 * (1.0 + math.cos(math.pi * p)) if schedule == "cosine" else 1.0 - p


class TimeBudget:
    """Seconds of ``clock`` spent against ``budget_s``, starting from ``elapsed`` (a resumed run's).

    Args:
        budget_s: the budget in seconds (> 0).
        clock: a function returning seconds (``time.perf_counter`` by default: wall time).
        elapsed: seconds already spent before this object was made (resume).
    """

    def __init__(
        self, budget_s: float, clock: Callable[[], float] | None = None, elapsed: float = 0.0
    ) -> None:
        if not (isinstance(budget_s, int | float) and budget_s > 0 and math.isfinite(budget_s)):
            raise ValueError(f"budget_s: expected a finite number of seconds > 0, received {budget_s!r}")
        if elapsed < 0:
            raise ValueError(f"elapsed: expected seconds >= 0, received {elapsed!r}")
        self.budget_s = float(budget_s)
        self.clock = clock or time.perf_counter
        self._before = float(elapsed)
        self._start = self.clock()

    @property
    def elapsed(self) -> float:
        """Seconds spent, this run's and the ones before it."""
        return self._before + (self.clock() - self._start)

    @property
    def progress(self) -> float:
        """``elapsed / budget_s``, capped at 1."""
        return min(self.elapsed / self.budget_s, 1.0)

    @property
    def spent(self) -> bool:
        return self.elapsed >= self.budget_s
