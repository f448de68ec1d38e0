"""Tiny collections of series in long format (the forecasting tests and the benchmark's smoke test)."""

from __future__ import annotations

import numpy as np

__all__ = ["write_collection"]


def write_collection(path, n=6, seed=0, bump=None):
    """``n`` seasonal monthly series of 40-50 values in long format; ``bump``: (series, value) added to the
    last value of that series (inside its test part)."""
    rng = np.random.default_rng(seed)
    rows = ["id,time,value"]
    for s in range(n):
        length = 40 + int(rng.integers(0, 10))
        t = np.arange(length)
        y = 50 * (1 + s) * (1 + 0.01 * t) * (1 + 0.2 * np.sin(2 * np.pi * t / 12 + s)) + rng.normal(
            0, 1, length
        )
        if bump is not None and bump[0] == s:
            y[-1] += bump[1]
        months = np.arange(np.datetime64("2000-01"), np.datetime64("2000-01") + length)
        rows += [f"s{s},{m}-01,{v:.4f}" for m, v in zip(months, y, strict=True)]
    path.write_text("\n".join(rows) + "\n")
    return path
