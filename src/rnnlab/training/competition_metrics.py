"""The M4 competition's accuracy measures, for collections of series: sMAPE, MASE, OWA, MSIS and coverage.

Definitions from the M4 Competitor's Guide (Makridakis, Spiliotis & Assimakopoulos, 2018, "M4 Competitor's
Guide: prizes and rules", section "Performance measures") and the competition's R code (``Evaluation`` in
the M4-methods repository), for a series with training part ``x_1 .. x_n``, test part ``y_1 .. y_h``,
forecasts ``f_1 .. f_h`` and seasonal period ``m``:

* ``sMAPE_t = 200 |y_t - f_t| / (|y_t| + |f_t|)`` (percent; the series' sMAPE is the mean over its ``h``).
* ``MASE_t = |y_t - f_t| / s`` with the in-sample seasonal naive scale ``s = mean_{t>m} |x_t - x_{t-m}|``.
  The scale uses lag 1 when ``m == 1`` or when the training part has no more than ``m`` values (no seasonal
  difference exists), which is where the competition's code falls back to the ordinary naive.
* ``OWA = (sMAPE / sMAPE_Naive2 + MASE / MASE_Naive2) / 2``, each ratio taken between the collection's means
  (not per series), Naive2 being the seasonally adjusted naive
  (:func:`rnnlab.models.stat_forecasters.naive2`).
* ``MSIS_t = ((u_t - l_t) + 2/a (l_t - y_t) [y_t < l_t] + 2/a (y_t - u_t) [y_t > u_t]) / s`` for the
  ``100 (1 - a)`` % interval ``[l_t, u_t]`` (a = 0.05 for 95 %, 0.2 for 80 %), with MASE's scale ``s``.
* coverage: the share of test values inside ``[l_t, u_t]``.

A collection's figure is the mean over series of each series' mean over its horizon, as M4 reports it; series
may differ in length and in horizon, so every function over a collection takes lists, one array per series.
One choice outside the guide: when ``y_t`` and ``f_t`` are both 0 the sMAPE term (0 / 0) is taken as 0, as
utilsforecast does; M4's series have no zeros, so its figures are unaffected.

Shapes: N series, H horizon steps; per-point functions keep their input's shape ``(H,)`` or ``(N, H)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

__all__ = [
    "smape",
    "mase_scale",
    "mase",
    "msis",
    "coverage",
    "owa",
    "score_collection",
]


def _pair(y, f, what: str = "f") -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype=np.float64)
    f = np.asarray(f, dtype=np.float64)
    if y.shape != f.shape:
        raise ValueError(f"{what}: expected the shape of y {y.shape}, received {f.shape}")
    return y, f


def smape(y, f) -> np.ndarray:
    """Per-point sMAPE in percent, ``200 |y - f| / (|y| + |f|)``: the shape of ``y``, (H,) or (N, H).

    >>> smape([100.0, 0.0], [110.0, 0.0]).round(4).tolist()
    [9.5238, 0.0]
    """
    y, f = _pair(y, f)
    den = np.abs(y) + np.abs(f)
    num = 200.0 * np.abs(y - f)
    # 0 / 0 (both zero) is a perfect forecast: 0, not NaN
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def mase_scale(insample, m: int) -> float:
    """The in-sample mean absolute seasonal difference ``mean_{t>m} |x_t - x_{t-m}|`` (lag 1 when ``m == 1``
    or when ``insample`` has no more than ``m`` values)."""
    x = np.asarray(insample, dtype=np.float64).ravel()
    if not isinstance(m, (int, np.integer)) or m < 1:
        raise ValueError(f"m: expected a positive integer seasonal period, received {m!r}")
    lag = m if len(x) > m else 1
    if len(x) <= lag:
        raise ValueError(f"insample: expected at least 2 values for a naive scale, received {len(x)}")
    return float(np.mean(np.abs(x[lag:] - x[:-lag])))


def _scaled(err: np.ndarray, scale: float) -> np.ndarray:
    # a constant training part has scale 0: an exact forecast scores 0, any other one is infinitely bad
    if scale > 0:
        return err / scale
    return np.where(err == 0, 0.0, np.inf)


def mase(y, f, insample, m: int) -> np.ndarray:
    """Per-point MASE of one series (``y``, ``f``: (H,), ``insample``: its training part) or of N series of
    one horizon (``y``, ``f``: (N, H), ``insample``: N arrays): the shape of ``y``."""
    y, f = _pair(y, f)
    err = np.abs(y - f)
    if y.ndim == 1:
        return _scaled(err, mase_scale(insample, m))
    if len(insample) != len(y):
        raise ValueError(
            f"insample: expected {len(y)} training parts (one per row of y), received {len(insample)}"
        )
    return np.stack([_scaled(e, mase_scale(x, m)) for e, x in zip(err, insample, strict=True)])


def msis(y, lo, hi, insample, m: int, alpha: float) -> np.ndarray:
    """Per-point scaled interval score of the ``100 (1 - alpha)`` % interval ``[lo, hi]`` for one series
    (``y``, ``lo``, ``hi``: (H,)): (H,)."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha: expected a number in (0, 1) (0.05 for a 95 % interval), received {alpha!r}")
    y, lo = _pair(y, lo, "lo")
    _, hi = _pair(y, hi, "hi")
    score = (hi - lo) + (2.0 / alpha) * ((lo - y) * (y < lo) + (y - hi) * (y > hi))
    return _scaled(score, mase_scale(insample, m))


def coverage(y, lo, hi) -> np.ndarray:
    """1.0 where ``lo <= y <= hi``, else 0.0: the shape of ``y``."""
    y, lo = _pair(y, lo, "lo")
    _, hi = _pair(y, hi, "hi")
    return ((lo <= y) & (y <= hi)).astype(np.float64)


def owa(smape, mase, smape_naive2, mase_naive2) -> float:
    """M4's overall weighted average: ``(sMAPE / sMAPE_Naive2 + MASE / MASE_Naive2) / 2`` over a collection.

    Each argument is the collection's mean (a number); an array is reduced to its mean first, so per-series
    figures may be passed as they are. Naive2 itself scores exactly 1.
    """
    a, b, c, d = (float(np.mean(v)) for v in (smape, mase, smape_naive2, mase_naive2))
    if c <= 0 or d <= 0:
        raise ValueError(f"naive2: expected positive sMAPE and MASE for Naive2, received {c!r} and {d!r}")
    return 0.5 * (a / c + b / d)


_ALPHA = {80: 0.2, 95: 0.05}


def _fit_horizon(y: np.ndarray, f, i: int, what: str) -> np.ndarray:
    """A forecast cut to its series' own horizon (a model may forecast further than a series is tested)."""
    f = np.asarray(f, dtype=np.float64).ravel()
    if len(f) < len(y):
        raise ValueError(
            f"{what}[{i}]: expected at least {len(y)} values (the series' test part), received {len(f)}"
        )
    return f[: len(y)]


def _per_step(rows: list[np.ndarray]) -> np.ndarray:
    """Mean over series at each horizon step; series with a shorter horizon count only where they reach."""
    width = max(len(r) for r in rows)
    padded = np.full((len(rows), width), np.nan)
    for i, r in enumerate(rows):
        padded[i, : len(r)] = r
    return np.nanmean(padded, axis=0)


def score_collection(
    y_list: Sequence,
    f_list: Sequence,
    insample_list: Sequence,
    m: int,
    lo: Mapping[int, Sequence] | None = None,
    hi: Mapping[int, Sequence] | None = None,
    naive2: Sequence | None = None,
) -> dict:
    """Score the forecasts of a collection of N series the way M4 does.

    Args:
        y_list: N test parts, (h_i,) each (horizons may differ).
        f_list: N point forecasts, at least h_i values each (cut to h_i).
        insample_list: N training parts (the scale of MASE and MSIS).
        m: the collection's seasonal period (1 for yearly data).
        lo, hi: optional ``{level: N arrays}`` interval bounds, level 80 and/or 95.
        naive2: optional N Naive2 forecasts on the same split; gives ``owa``.

    Returns:
        A dict of numbers: ``smape``, ``mase``, ``n_series``; with ``naive2`` also ``owa``, ``smape_naive2``,
        ``mase_naive2``; with intervals ``coverage80``, ``msis80``, ``coverage95``, ``msis95``. Each is the
        mean over series of the series' mean over its horizon. Beside them ``per_step``: the same keys (less
        ``owa`` and ``n_series``) as (H_max,) arrays, the mean over the series that reach each step; and
        ``per_series``: one dict per series, ``{"index", "h", "smape", "mase", ...}``.
    """
    n = len(y_list)
    if n == 0:
        raise ValueError("y_list: expected at least one series, received none")
    for name, seq in (("f_list", f_list), ("insample_list", insample_list)):
        if len(seq) != n:
            raise ValueError(f"{name}: expected {n} entries (one per series of y_list), received {len(seq)}")
    lo, hi = dict(lo or {}), dict(hi or {})
    if set(lo) != set(hi) or not set(lo) <= set(_ALPHA):
        raise ValueError(
            f"lo, hi: expected the same levels among {sorted(_ALPHA)}, received {sorted(lo)} and {sorted(hi)}"
        )
    ys = [np.asarray(y, dtype=np.float64).ravel() for y in y_list]
    point = {"smape": [], "mase": []}
    for level in sorted(lo):
        point[f"coverage{level}"], point[f"msis{level}"] = [], []
    if naive2 is not None:
        if len(naive2) != n:
            raise ValueError(f"naive2: expected {n} forecasts (one per series), received {len(naive2)}")
        point["smape_naive2"], point["mase_naive2"] = [], []
    for i, y in enumerate(ys):
        f = _fit_horizon(y, f_list[i], i, "f_list")
        x = insample_list[i]
        point["smape"].append(smape(y, f))
        point["mase"].append(mase(y, f, x, m))
        for level in sorted(lo):
            l_i = _fit_horizon(y, lo[level][i], i, f"lo[{level}]")
            h_i = _fit_horizon(y, hi[level][i], i, f"hi[{level}]")
            point[f"coverage{level}"].append(coverage(y, l_i, h_i))
            point[f"msis{level}"].append(msis(y, l_i, h_i, x, m, _ALPHA[level]))
        if naive2 is not None:
            g = _fit_horizon(y, naive2[i], i, "naive2")
            point["smape_naive2"].append(smape(y, g))
            point["mase_naive2"].append(mase(y, g, x, m))
    series_means = {k: np.array([r.mean() for r in rows]) for k, rows in point.items()}  # (N,) each
    out: dict = {k: float(v.mean()) for k, v in series_means.items()}
    if naive2 is not None:
        out["owa"] = owa(out["smape"], out["mase"], out["smape_naive2"], out["mase_naive2"])
    out["n_series"] = n
    out["per_step"] = {k: _per_step(rows) for k, rows in point.items()}
    out["per_series"] = [
        {"index": i, "h": len(ys[i]), **{k: float(v[i]) for k, v in series_means.items()}} for i in range(n)
    ]
    return out
