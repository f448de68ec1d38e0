"""The forecast task's fitting steps: window batches, the pinball step, interval calibration and the refit.

:func:`rnnlab.tasks.forecast.train` runs them in this order (``|`` cuts the series in time)::

    train | valid | holdout
    1. select:    fit on the train part's targets, early stopping on valid  -> the epoch count E
    2. calibrate: the selected model's quantiles on valid -> the spread (s_below, s_above)
    3. refit:     a fresh model (same seed) on the targets of train + valid, for E epochs

Refitting on all the data before the holdout once the epoch count is chosen is common practice for short
series: the last seasons before the holdout are the ones most like it, and without the refit the weights
never learn from them (on AirPassengers the selected model, which learnt from 1949-1954 only, carries that
period's steeper growth into the holdout).
The holdout is never read by any of the three steps.

Calibration is split-conformal on the quantile model's own output (conformalized quantile regression,
Romano, Patterson & Candès 2019), with a multiplicative score instead of CQR's additive margin, so that the
interval still widens with the horizon as the model's does. For each validation pair (origin, step) with
median m, outer quantiles q_lo < m < q_hi and target y (all in the scaled space), the score is the smallest
scale of the interval that covers y::

    r = max((y - m) / (q_hi - m), (m - y) / (m - q_lo))
    s = the ceil((n + 1) (level_hi - level_lo)) / n empirical quantile of the n scores   (e.g. 0.9 - 0.1)

and every quantile gets its distance from the median scaled by s (``spread = (s, s)``; see
:mod:`rnnlab.models.forecaster`). The scores come from the model of step 1, which has not learnt from the
validation targets; the refit model carries the same spread. One scale for both sides, not one per side: the
refit model's bias differs from the selected model's (it has learnt from the validation part), so a
per-side correction of that bias would not carry over. The pairs of overlapping origins are not
exchangeable, so the coverage guarantee is nominal; the holdout coverage is measured in
benchmarks/quality_forecast.py.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import torch

from rnnlab.models.forecaster import RecurrentForecaster, pinball_loss
from rnnlab.training import TrainerConfig

__all__ = ["WindowBatches", "step", "valid_metrics", "conformal_spread", "refit_config", "MIN_SPREAD"]

MIN_SPREAD = 0.01  # the smallest scale a side gets: > 0, so the quantiles stay strictly increasing


class WindowBatches:
    """Random batches of (window, calendar, targets, mask) from the origins ``origins``, ``steps`` per epoch.

    Origin ``o`` reads ``z[o - W : o]`` and targets ``z[o : o + H]``; targets at or after ``stop`` are
    masked out (unknown to this part). Shuffled with a generator seeded by ``(seed, epoch)``, so a resumed
    run draws the same batches.
    """

    def __init__(self, z, cal, origins, window, horizon, stop, batch_size, steps=None, seed=0):
        self.z, self.cal = z, cal  # (T,), (T, F)
        self.origins = np.asarray(origins)
        self.W, self.H, self.stop = window, horizon, stop
        self.batch_size, self.steps, self.seed, self.epoch = batch_size, steps, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.steps or -(-len(self.origins) // self.batch_size)

    def batch(self, origins: np.ndarray) -> tuple[torch.Tensor, ...]:
        W, H = self.W, self.H
        idx = origins[:, None] + np.arange(H)[None, :]  # (B, H)
        mask = idx < self.stop
        y = self.z[np.minimum(idx, len(self.z) - 1)] * mask  # (B, H)
        x = np.stack([self.z[o - W : o] for o in origins])  # (B, W)
        cal = np.stack([self.cal[o - W : o] for o in origins])  # (B, W, F)
        as_t = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
        return as_t(x), as_t(cal), as_t(y), torch.as_tensor(mask)

    def __iter__(self):
        if self.steps is None:  # evaluation: every origin once, in order
            for i in range(0, len(self.origins), self.batch_size):
                yield self.batch(self.origins[i : i + self.batch_size])
            return
        rng = np.random.default_rng([self.seed, self.epoch])
        for _ in range(self.steps):
            yield self.batch(
                rng.choice(self.origins, size=min(self.batch_size, len(self.origins)), replace=False)
            )


def step(model: RecurrentForecaster, batch) -> torch.Tensor:
    """The training loss of a batch: the pinball loss of every member's uncalibrated quantiles."""
    x, cal, y, mask = (t.to(next(model.parameters()).device) for t in batch)
    return pinball_loss(model.uncalibrated(x, cal), y, model.config.levels, mask)


def valid_metrics(model: RecurrentForecaster, batches) -> dict[str, float]:
    """The ensemble's pinball loss over every known target of ``batches``."""
    total, n = 0.0, 0
    for batch in batches:
        x, cal, y, mask = (t.to(next(model.parameters()).device) for t in batch)
        q = model.predict(x, cal)  # (B, H, Q)
        total += pinball_loss(q, y, model.config.levels, mask).item() * int(mask.sum())
        n += int(mask.sum())
    return {"loss": total / max(n, 1)}


def _conformal_quantile(scores: np.ndarray, level: float) -> float:
    """The ``ceil((n + 1) level) / n`` empirical quantile of ``scores`` (n,): split conformal's finite-sample
    correction; the largest score when that rank is past n."""
    ordered = np.sort(scores)
    rank = min(math.ceil((len(ordered) + 1) * level), len(ordered))
    return float(ordered[rank - 1])


def conformal_spread(model: RecurrentForecaster, batches) -> tuple[float, float]:
    """(s, s) from the targets of ``batches`` (see the module docstring); the model's own spread is reset to
    (1, 1) first, so the scores are of its uncalibrated quantiles. (1, 1) when the levels have no quantile
    on both sides of the median."""
    levels, i = model.config.levels, model.median_index
    model.set_spread(1.0, 1.0)
    if i == 0 or i == len(levels) - 1:
        return 1.0, 1.0
    model.eval()
    qs, ys = [], []
    with torch.no_grad():
        for batch in batches:
            x, cal, y, mask = (t.to(next(model.parameters()).device) for t in batch)
            q = model.predict(x, cal)  # (B, H, Q)
            qs.append(q[mask].double().cpu().numpy())  # (n_b, Q)
            ys.append(y[mask].double().cpu().numpy())  # (n_b,)
    q, y = np.concatenate(qs), np.concatenate(ys)  # (n, Q), (n,)
    if len(y) == 0:
        raise ValueError("conformal_spread: no known target in the calibration batches")
    median = q[:, i]
    scores = np.maximum((y - median) / (q[:, -1] - median), (median - y) / (median - q[:, 0]))  # (n,)
    s = max(_conformal_quantile(scores, levels[-1] - levels[0]), MIN_SPREAD)
    return s, s


def refit_config(train: TrainerConfig, epochs: int) -> TrainerConfig:
    """The trainer's options for the refit: the selected epoch count, no validation part to stop on."""
    return replace(train, epochs=max(1, epochs), patience=None, monitor="train_loss", monitor_mode="min")
