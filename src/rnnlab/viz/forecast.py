"""The forecast plot of a run: history, holdout, the model's median and interval band, and the best baseline,
on a dated axis (``rnnlab plot forecast RUN -o FILE.png``). Drawn and written as :mod:`rnnlab.viz.plots`
does (object API on an Agg canvas, written atomically, the path checked first)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from rnnlab.viz.paths import check_output_path
from rnnlab.viz.plots import _save

__all__ = ["plot_dated_forecast", "plot_run_forecast"]

_SHOWN = 8  # horizons of history shown before the holdout, for long series


def plot_dated_forecast(
    times: np.ndarray,
    values: np.ndarray,
    origin: int,
    quantiles: np.ndarray,
    levels: tuple[float, ...],
    path: str | Path,
    baseline: tuple[str, np.ndarray] | None = None,
    title: str | None = None,
) -> Path:
    """``values`` (T,) at ``times`` (T,) datetime64, the forecast from ``origin`` as ``quantiles`` (H, Q) at
    ``levels``: the median as a line, the outer levels as a band; ``baseline``: (name, forecast (H,))."""
    path = check_output_path(path)
    times, values, quantiles = np.asarray(times), np.asarray(values), np.asarray(quantiles)
    if values.ndim != 1 or times.shape != values.shape or len(values) < 2:
        raise ValueError(
            f"times, values: expected two 1-D arrays (T,) of the same length >= 2, received "
            f"{times.shape} and {values.shape}"
        )
    if 0.5 not in levels:
        raise ValueError(f"levels: expected increasing levels including 0.5, received {tuple(levels)}")
    if quantiles.ndim != 2 or quantiles.shape[1] != len(levels):
        raise ValueError(f"quantiles: expected (H, {len(levels)}), received {quantiles.shape}")
    H = quantiles.shape[0]
    if not 1 <= origin <= len(values) or (origin + H > len(values) and origin != len(values)):
        raise ValueError(
            f"origin: expected 1 <= origin <= {len(values)} with origin + horizon {H} inside the series "
            f"or origin = {len(values)} (a forecast after its end), received {origin}"
        )
    start = max(0, origin - _SHOWN * H) if len(values) > 400 else 0
    if origin + H <= len(times):
        future = times[origin : origin + H]
    else:  # a forecast after the end: continue the series' own spacing
        future = times[-1] + (times[-1] - times[-2]) * np.arange(1, H + 1)
    fig = Figure(figsize=(9.0, 4.0))
    fig.set_layout_engine("constrained")
    ax = fig.add_subplot()
    ax.plot(times[start:origin], values[start:origin], color="tab:blue", linewidth=1.2, label="history")
    if origin < len(values):
        ax.plot(
            future, values[origin : origin + H], color="black", linewidth=1.2, marker=".", label="holdout"
        )
    median = quantiles[:, levels.index(0.5)]
    coverage = levels[-1] - levels[0]
    ax.fill_between(future, quantiles[:, 0], quantiles[:, -1], color="tab:orange", alpha=0.25,
                    label=f"{coverage:.0%} interval ({levels[0]:g}-{levels[-1]:g})")  # fmt: skip
    ax.plot(future, median, color="tab:orange", linewidth=1.6, label="forecast (median)")
    if baseline is not None:
        ax.plot(future, baseline[1], color="tab:green", linestyle="--", linewidth=1.2, label=baseline[0])
    ax.axvline(future[0], color="gray", linewidth=0.8, linestyle=":")
    ax.set_xlabel("time")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    return _save(fig, path, {})


def plot_run_forecast(
    forecaster, series, origin: int, scores: dict, path: str | Path, title: str | None = None
):
    """The plot of a run's holdout forecast: ``scores`` from :func:`rnnlab.tasks.forecast.score_origin`
    with ``details=True``."""
    best = scores.get("best_baseline")
    baseline = None
    if best is not None:
        b = scores["baselines"][best]
        baseline = (f"{best}: {b['model']} (MAPE {b['mape']:.1f} %)", np.asarray(b["forecast"]))
    label = f"{title + ': ' if title else ''}model MAPE {scores['mape']:.1f} %, MASE {scores['mase']:.2f}"
    return plot_dated_forecast(
        series.times.astype("datetime64[D]"), series.values, origin, np.asarray(scores["quantiles"]),
        forecaster.levels, path, baseline, label,
    )  # fmt: skip
