"""Windows over a collection of series, in the scaled space: the global forecaster's batches.

A collection's series are scaled one by one (:class:`CollectionScaler`), then every row of a batch is one
series' window ending at an origin ``o`` (the first forecast step): ``z[o - W : o]``, left-padded with the
series' first value where ``o < W`` (the ``observed`` flag is 0 there), and the targets ``z[o : o + H]``,
masked at and after the series' ``stop`` (the end of the part that the fitting step may learn from).

Training origins are drawn near each series' end, where the future is most like the test part: series
uniformly (each series weighs the same, as in the competitions' means), then an origin uniformly among the
last ``span`` of the series' points before its stop (N-BEATS samples its origins from the last L_H
horizons, Oreshkin et al. 2020, section 3.4).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from rnnlab.data.sources import DataError

__all__ = ["CollectionScaler", "SeriesWindows", "windows_at"]


@dataclass
class CollectionScaler:
    """Per-series scaling of a collection: ``log(y)`` when every value of every training part is > 0, else
    ``y / s_i`` with ``s_i`` the mean absolute value of series i's training part (the tourism data hold
    zeros). The global model normalises each window by its own level on top of this, so no per-series shift
    is needed."""

    log: bool
    scales: list[float]  # s_i (1.0 under log)

    @classmethod
    def fit(cls, parts: list[np.ndarray], scaling: str = "auto") -> CollectionScaler:
        positive = all(float(np.min(p)) > 0 for p in parts)
        if scaling == "log" and not positive:
            raise DataError("data.scaling=log: some series hold values <= 0; use auto or none")
        log = positive and scaling in ("auto", "log")
        if log:
            return cls(True, [1.0] * len(parts))
        scales = [float(np.mean(np.abs(p))) or 1.0 for p in parts]
        return cls(False, scales)

    def transform(self, i: int, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=np.float64)
        if self.log:
            if (values <= 0).any():
                raise DataError("history: the model was trained on log values; expected values > 0")
            return np.log(values)
        return values / self.scales[i]

    def inverse(self, i: int, z: np.ndarray) -> np.ndarray:
        z = np.asarray(z, dtype=np.float64)
        return np.exp(z) if self.log else z * self.scales[i]

    def to_dict(self) -> dict:
        return {"log": self.log, "scales": self.scales}

    @classmethod
    def from_dict(cls, d: dict) -> CollectionScaler:
        return cls(bool(d["log"]), [float(s) for s in d["scales"]])


def windows_at(z: list[np.ndarray], rows: np.ndarray, origins: np.ndarray, W: int):
    """Windows (B, W) and observed flags (B, W, 1) of series ``rows`` ending before ``origins`` (B,)."""
    B = len(rows)
    x = np.empty((B, W), dtype=np.float32)
    observed = np.zeros((B, W, 1), dtype=np.float32)
    for b, (i, o) in enumerate(zip(rows, origins, strict=True)):
        seen = z[i][max(0, o - W) : o]  # (<= W,)
        x[b, W - len(seen) :] = seen
        x[b, : W - len(seen)] = seen[0]  # the first value where the series is shorter than the window
        observed[b, W - len(seen) :, 0] = 1.0
    return x, observed


class SeriesWindows:
    """Batches of (x (B, W), observed (B, W, 1), y (B, H), mask (B, H)) over a collection.

    ``stops[i]``: series i's targets at or after it are masked (the fitting part ends there). Training
    (``steps`` given): ``steps`` random batches an epoch, seeded by ``(seed, epoch)`` so a resumed run draws
    the same ones; origins among the last ``span`` points before each stop. Evaluation (``steps`` None): one
    row per series at origin ``origins[i]``, in order.
    """

    def __init__(self, z, stops, W, H, batch_size, steps=None, span=None, origins=None, seed=0):
        self.z, self.stops = z, np.asarray(stops)
        self.W, self.H, self.batch_size, self.steps, self.seed, self.epoch = W, H, batch_size, steps, seed, 0
        if steps is None:
            self.origins = np.asarray(origins if origins is not None else stops)
        else:
            self.high = self.stops - 1  # the last origin with a target
            self.low = np.maximum(1, self.stops - int(span)) if span else np.ones_like(self.stops)
            self.low = np.minimum(self.low, self.high)
            if (self.high < 1).any():
                i = int(np.argmax(self.high < 1))
                raise DataError(f"series {i}: {self.stops[i]} values to fit: at least 2 are needed")

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.steps or -(-len(self.origins) // self.batch_size)

    def batch(self, rows: np.ndarray, origins: np.ndarray):
        H = self.H
        x, observed = windows_at(self.z, rows, origins, self.W)
        y = np.zeros((len(rows), H), dtype=np.float32)
        mask = np.zeros((len(rows), H), dtype=bool)
        for b, (i, o) in enumerate(zip(rows, origins, strict=True)):
            known = self.z[i][o : min(o + H, self.stops[i])]
            y[b, : len(known)] = known
            mask[b, : len(known)] = True
        return torch.from_numpy(x), torch.from_numpy(observed), torch.from_numpy(y), torch.from_numpy(mask)

    def __iter__(self):
        if self.steps is None:
            rows = np.arange(len(self.origins))
            for a in range(0, len(rows), self.batch_size):
                yield self.batch(rows[a : a + self.batch_size], self.origins[a : a + self.batch_size])
            return
        rng = np.random.default_rng([self.seed, self.epoch])
        N = len(self.z)
        for _ in range(self.steps):
            rows = rng.integers(0, N, size=self.batch_size)
            origins = rng.integers(self.low[rows], self.high[rows] + 1)
            yield self.batch(rows, origins)
