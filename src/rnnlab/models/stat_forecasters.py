"""Statistical forecasters for collections of series: statsforecast's models and the M4 competition's Naive2.

* ``SeasonalNaive``, ``AutoETS``, ``Theta``, ``AutoARIMA``: statsforecast (Nixtla; Garza et al., 2022), each
  fitted on one series at a time with ``season_length = m`` and asked for its 80 % and 95 % intervals.
  AutoETS follows Hyndman et al. (2002, 2008), Theta is the standard Theta method of Assimakopoulos &
  Nikolopoulos (2000) with its seasonality test and multiplicative adjustment, AutoARIMA is Hyndman &
  Khandakar (2008).
* ``Naive2`` (:func:`naive2`): the benchmark that M4's OWA is relative to (M4 Competitor's Guide, 2018, and
  the competition's R code, ``SeasonalityTest`` and ``Benchmarks``). statsforecast has no such model:

  1. seasonality test, for ``m > 1`` and ``n >= 3 m``: with the sample autocorrelations ``r_k``, the series
     is seasonal when ``|r_m| > 1.645 sqrt((1 + 2 sum_{k=1}^{m-1} r_k^2) / n)``;
  2. if seasonal, classical multiplicative decomposition (a centred moving average of order ``m``, ``2 x m``
     when ``m`` is even; the ratios to it averaged per position in the cycle, counted from the first value,
     and normalised to mean 1), and the series divided by its seasonal indices;
  3. the naive forecast of the adjusted series (its last value), multiplied by the indices of the next
     ``h`` positions of the cycle.

Series too short for a model fall back, and each fallback is written in the model's ``notes``: a seasonal
model on fewer than two seasons (``n < 2 m``) is fitted without a season; a model that fails or forecasts a
non-finite value is replaced by Naive2 for that series.

Forecasts are cached on disk (``<rnnlab cache>/statsforecast/``), keyed by a fingerprint of the series, the
horizon, the period, the levels, the model and statsforecast's version, so that a benchmark and ``evaluate``
fit AutoARIMA on a collection once.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

__all__ = [
    "MODELS",
    "seasonality_test",
    "seasonal_indices",
    "naive2",
    "forecast_collection",
    "cache_path",
]

MODELS = ("SeasonalNaive", "Naive2", "AutoETS", "Theta", "AutoARIMA")
_SEASONAL = ("AutoETS", "Theta", "AutoARIMA")
# bumped whenever this file changes what it stores, so that an old cache entry is never read as a new one
_CACHE_FORMAT = 1
# normal quantiles of the two-sided levels of Naive2's intervals (as statsforecast's Naive computes them)
_Z = {80: 1.2815515655446004, 95: 1.959963984540054}


def _acf(x: np.ndarray, max_lag: int) -> np.ndarray:
    """Sample autocorrelations ``r_0 .. r_max_lag`` as R's ``acf`` computes them (biased, mean removed)."""
    d = x - x.mean()
    denom = float(np.dot(d, d))
    if denom == 0:
        return np.zeros(max_lag + 1)
    return np.array([np.dot(d[: len(d) - k], d[k:]) / denom for k in range(max_lag + 1)])


def seasonality_test(x, m: int) -> bool:
    """M4's 90 % test that a series is seasonal with period ``m``.

    False when ``m <= 1``, when the series has fewer than ``3 m`` values, or when lag ``m`` lies beyond R's
    default ``acf`` lags (``floor(10 log10 n)``): the competition's code reads NA there, "not seasonal".
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    n = len(x)
    if m <= 1 or n < 3 * m or m > math.floor(10 * math.log10(n)):
        return False
    r = _acf(x, m)  # (m + 1,), r[0] == 1
    limit = 1.645 * math.sqrt((1.0 + 2.0 * float(np.sum(r[1:m] ** 2))) / n)
    return bool(abs(r[m]) > limit)


def seasonal_indices(x, m: int) -> np.ndarray:
    """Classical multiplicative decomposition's seasonal indices, (m,), index ``i`` for the positions
    ``t = i, i + m, ...`` counted from the first value, normalised to mean 1 (R's ``decompose``)."""
    x = np.asarray(x, dtype=np.float64).ravel()
    if m < 2 or len(x) < 2 * m:
        raise ValueError(f"x: expected at least 2 seasons (2 m = {2 * m} values), received {len(x)}")
    # even m: the 2 x m moving average (centred on a value, half weights at both ends), (m + 1,); odd m: (m,)
    w = np.r_[0.5, np.ones(m - 1), 0.5] / m if m % 2 == 0 else np.ones(m) / m
    half = len(w) // 2
    trend = np.convolve(x, w, mode="valid")  # (n - 2 half,), trend[j] belongs to x[j + half]
    ratio = x[half : half + len(trend)] / trend
    positions = np.arange(half, half + len(trend)) % m
    figure = np.array([ratio[positions == i].mean() for i in range(m)])  # (m,)
    return figure / figure.mean()


def naive2(x, h: int, m: int, levels: Sequence[int] = ()) -> dict[str, np.ndarray]:
    """M4's Naive2 forecast of the ``h`` values after ``x``: ``{"mean": (h,), "lo80": (h,), "hi80": ...}``.

    Intervals (not part of M4's definition) are the naive's on the adjusted series,
    ``last +- z sigma sqrt(k)`` with ``sigma`` the root mean square of its one-step changes, reseasonalised.
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    if len(x) < 1:
        raise ValueError("x: expected at least one value, received none")
    n = len(x)
    if seasonality_test(x, m):
        figure = seasonal_indices(x, m)  # (m,)
        adjusted = x / figure[np.arange(n) % m]
        si_out = figure[(n + np.arange(h)) % m]  # (h,) the cycle continued past the last value
    else:
        adjusted, si_out = x, np.ones(h)
    out = {"mean": adjusted[-1] * si_out}
    if levels:
        steps = np.diff(adjusted)
        sigma = float(np.sqrt(np.mean(steps**2))) if len(steps) else 0.0
        spread = sigma * np.sqrt(np.arange(1, h + 1))  # (h,)
        for level in levels:
            z = _Z[level]
            out[f"lo{level}"] = (adjusted[-1] - z * spread) * si_out
            out[f"hi{level}"] = (adjusted[-1] + z * spread) * si_out
    return out


def _statsforecast_model(name: str, m: int):
    from statsforecast import models as sf

    return getattr(sf, name)(season_length=m)


def _one(name: str, x: np.ndarray, h: int, m: int, levels: Sequence[int]) -> tuple[dict, str | None]:
    """One series' forecast by one model, and the note of its fallback (or None)."""
    if name == "Naive2":
        return naive2(x, h, m, levels), None
    note = None
    season = m
    if name == "SeasonalNaive" and len(x) < m:
        season, note = 1, f"{len(x)} values < m={m}: naive (last value)"
    elif name in _SEASONAL and m > 1 and len(x) < 2 * m:
        season, note = 1, f"{len(x)} values < 2 seasons (m={m}): fitted without a season"
    try:
        with warnings.catch_warnings():
            # statsforecast's optimisers warn on hard series; the fallback below judges the result instead
            warnings.simplefilter("ignore")
            raw = _statsforecast_model(name, season).forecast(y=x, h=h, level=list(levels))
        out = {"mean": np.asarray(raw["mean"], dtype=np.float64)}
        for level in levels:
            out[f"lo{level}"] = np.asarray(raw[f"lo-{level}"], dtype=np.float64)
            out[f"hi{level}"] = np.asarray(raw[f"hi-{level}"], dtype=np.float64)
        if not all(np.isfinite(v).all() and v.shape == (h,) for v in out.values()):
            raise ValueError("a non-finite forecast")
        return out, note
    except Exception as exc:  # any failure of the fit: this series gets Naive2, and the note says why
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return naive2(x, h, m, levels), f"{name} failed ({reason[:120]}): Naive2"


def _run_chunk(args) -> tuple[list[dict], list[tuple[int, str]]]:
    name, chunk, start, h, m, levels = args
    outs, notes = [], []
    t0, every = time.perf_counter(), max(1, len(chunk) // 10)
    for j, x in enumerate(chunk):
        out, note = _one(name, x, h, m, levels)
        outs.append(out)
        if note:
            notes.append((start + j, note))
        if (j + 1) % every == 0 and len(chunk) >= 100:  # AutoARIMA on a collection takes minutes: say so
            elapsed = time.perf_counter() - t0
            logger.info("%s: %d of %d series in %.0f s", name, j + 1, len(chunk), elapsed)
    return outs, notes


def _fingerprint(series: list[np.ndarray], h: int, m: int, levels: Sequence[int], name: str) -> str:
    from importlib.metadata import version

    digest = hashlib.sha256()
    head = {"format": _CACHE_FORMAT, "h": h, "m": m, "levels": list(levels), "model": name}
    head["statsforecast"] = version("statsforecast")
    digest.update(json.dumps(head, sort_keys=True).encode())
    for x in series:  # length-prefixed, so that two splits of the same values never collide
        digest.update(np.int64(len(x)).tobytes())
        digest.update(np.ascontiguousarray(x, dtype="<f8").tobytes())
    return digest.hexdigest()


def cache_path(train_list: Sequence, h: int, m: int, model: str, levels: Sequence[int] = (80, 95)) -> Path:
    """Where :func:`forecast_collection` keeps ``model``'s forecasts of this collection."""
    from rnnlab.data.sources import cache_dir

    series = [np.asarray(x, dtype=np.float64).ravel() for x in train_list]
    key = _fingerprint(series, h, m, tuple(levels), model)
    return cache_dir() / "statsforecast" / f"{model}-{key[:24]}.npz"


def _save(path: Path, result: dict) -> None:
    from rnnlab.training.files import atomic_write_bytes

    arrays = {k: np.stack(v) for k, v in result.items() if isinstance(v, list) and k != "notes"}
    buf = io.BytesIO()
    times = {k: np.float64(np.nan if result[k] is None else result[k]) for k in ("seconds", "cpu_seconds")}
    np.savez(buf, notes=np.array(result["notes"], dtype=str), **times, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def _load(path: Path) -> dict | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            out: dict = {k: list(z[k]) for k in z.files if k not in ("seconds", "cpu_seconds", "notes")}
            out["seconds"] = float(z["seconds"])
            cpu = float(z["cpu_seconds"]) if "cpu_seconds" in z.files else math.nan
            out["cpu_seconds"] = None if math.isnan(cpu) else cpu
            out["notes"] = [str(s) for s in z["notes"]]
    except (OSError, ValueError, KeyError):  # a damaged or foreign file: fit again and overwrite it
        return None
    out["cached"] = True
    return out


def forecast_collection(
    train_list: Sequence,
    h: int,
    m: int,
    models: Sequence[str] = MODELS,
    levels: Sequence[int] = (80, 95),
    n_jobs: int = 1,
    cache: bool = True,
) -> dict[str, dict]:
    """Forecast the ``h`` values after each of N training parts with each model.

    Args:
        train_list: N training parts, 1-D arrays of any lengths.
        h: the horizon; m: the seasonal period (1 for yearly data).
        models: names among :data:`MODELS`.
        levels: interval levels among 80 and 95.
        n_jobs: worker processes (1 runs in this process).
        cache: read and write the disk cache.

    Returns:
        ``{model: {"mean": N arrays (h,), "lo80": ..., "hi80": ..., "lo95": ..., "hi95": ...,
        "seconds": fitting wall time, "cpu_seconds": this process's CPU time for it (None with worker
        processes; both as first measured when read from the cache), "notes": ["series i: why it fell
        back", ...], "cached": bool}}``.
    """
    if not isinstance(h, (int, np.integer)) or h < 1:
        raise ValueError(f"h: expected a positive integer horizon, received {h!r}")
    if not isinstance(m, (int, np.integer)) or m < 1:
        raise ValueError(f"m: expected a positive integer seasonal period, received {m!r}")
    unknown = [name for name in models if name not in MODELS]
    if unknown:
        raise ValueError(f"models: expected names among {list(MODELS)}, received {unknown}")
    if not set(levels) <= set(_Z):
        raise ValueError(f"levels: expected levels among {sorted(_Z)}, received {list(levels)}")
    if n_jobs < 1:
        raise ValueError(f"n_jobs: expected at least 1, received {n_jobs}")
    series = [np.asarray(x, dtype=np.float64).ravel() for x in train_list]
    for i, x in enumerate(series):
        if len(x) < 1 or not np.isfinite(x).all():
            raise ValueError(
                f"train_list[{i}]: expected a non-empty series of finite values, received {x[:5]}..."
            )
    levels = tuple(sorted(levels))
    results = {}
    for name in models:
        path = cache_path(series, h, m, name, levels) if cache else None
        if path is not None and path.exists():
            loaded = _load(path)
            if loaded is not None:
                results[name] = loaded
                continue
        t0, c0 = time.perf_counter(), time.process_time()
        outs, notes = _fit_all(name, series, h, m, levels, n_jobs)
        result: dict = {k: [o[k] for o in outs] for k in outs[0]}
        result["seconds"] = time.perf_counter() - t0
        # the CPU time tells the cost on a shared machine, where wall time depends on the neighbours
        result["cpu_seconds"] = time.process_time() - c0 if n_jobs == 1 else None
        result["notes"] = [f"series {i}: {note}" for i, note in notes]
        if path is not None:
            _save(path, result)
        result["cached"] = False
        results[name] = result
    return results


def _fit_all(name, series, h, m, levels, n_jobs):
    """Every series' forecast, in order, and the fallback notes ``[(series index, note), ...]``."""
    if n_jobs == 1 or len(series) < 2 * n_jobs:
        return _run_chunk((name, series, 0, h, m, levels))
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    bounds = np.linspace(0, len(series), n_jobs * 4 + 1).astype(int)  # 4 chunks per worker: even load
    pairs = zip(bounds[:-1], bounds[1:], strict=True)
    tasks = [(name, series[a:b], a, h, m, levels) for a, b in pairs if b > a]
    outs, notes = [], []
    # fork where the platform has it, as statsforecast's pool does: the workers run numpy and statsforecast
    # only (never torch), and a spawned worker would spend seconds importing rnnlab.models, torch included
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    with ProcessPoolExecutor(max_workers=n_jobs, mp_context=context) as pool:
        for o, n in pool.map(_run_chunk, tasks):
            outs.extend(o)
            notes.extend(n)
    return outs, notes
