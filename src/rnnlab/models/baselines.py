"""Classical forecasters fitted on the same training part as the recurrent model, scored on the same holdout.

* ``seasonal_naive``: ``y_{T+h} = y_{T+h-m*k}``, the value one season before (k = ceil(h / m)); with m = 1,
  the last value.
* ``drift``: the random walk with drift, ``y_{T+h} = y_T + h (y_T - y_1) / (T - 1)`` (Hyndman &
  Athanasopoulos, *Forecasting: Principles and Practice*, 5.2).
* ``holt_winters``: statsmodels' ``ExponentialSmoothing`` with an additive trend and a multiplicative season
  (additive when the series is not strictly positive; no season when m = 1), parameters estimated.
* ``sarima``: statsmodels' ``SARIMAX``: the airline model SARIMA(0,1,1)(0,1,1)m (Box & Jenkins) for seasonal
  series, AR(2) with a constant (Yule's sunspot model) when m = 1. For m > 24 (weekly data, m = 52) a seasonal
  ARIMA's state space is too slow to fit (minutes, even on three seasons), so the season is taken out by STL
  (Cleveland et al. 1990) and ARIMA(1,1,1) forecasts the rest (statsmodels' ``STLForecast``); the model's
  description says which was fitted.

statsmodels is imported on use (the ``tasks`` extra); its convergence warnings are recorded, not raised.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

__all__ = [
    "BASELINES",
    "seasonal_naive",
    "drift",
    "holt_winters",
    "sarima",
    "forecast_all",
    "smape",
    "pinball",
    "point_scores",
]


def seasonal_naive(train: np.ndarray, horizon: int, period: int) -> np.ndarray:
    """The last observed season repeated: (H,)."""
    train = np.asarray(train, dtype=np.float64)
    if len(train) < period:
        raise ValueError(f"seasonal_naive: expected at least period={period} values, received {len(train)}")
    last = train[-period:]  # (m,)
    return np.array([last[h % period] for h in range(horizon)])


def drift(train: np.ndarray, horizon: int, period: int = 1) -> np.ndarray:
    """The last value plus ``h`` times the mean step of the training part: (H,)."""
    train = np.asarray(train, dtype=np.float64)
    slope = (train[-1] - train[0]) / (len(train) - 1)
    return train[-1] + slope * np.arange(1, horizon + 1)


def _quiet(fit):
    """Run ``fit()`` with statsmodels' warnings caught; returns (result, the first warning's text or None)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fit()
    note = next((str(w.message).splitlines()[0] for w in caught), None)
    return result, note


def holt_winters(train: np.ndarray, horizon: int, period: int) -> tuple[np.ndarray, str, str | None]:
    """Holt-Winters forecast (H,), its description and statsmodels' first warning (or None)."""
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    train = np.asarray(train, dtype=np.float64)
    seasonal = None if period == 1 else ("mul" if train.min() > 0 else "add")
    model = ExponentialSmoothing(
        train,
        trend="add",
        seasonal=seasonal,
        seasonal_periods=period if seasonal else None,
        initialization_method="estimated",
    )
    result, note = _quiet(model.fit)
    spec = f"Holt-Winters (additive trend, {seasonal or 'no'} season" + (
        f", m={period})" if seasonal else ")"
    )
    return np.asarray(result.forecast(horizon), dtype=np.float64), spec, note


def sarima(train: np.ndarray, horizon: int, period: int) -> tuple[np.ndarray, str, str | None]:
    """SARIMA forecast (H,), its description and statsmodels' first warning (or None)."""
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    train = np.asarray(train, dtype=np.float64)
    if period == 1:
        model = SARIMAX(train, order=(2, 0, 0), trend="c")
        spec = "ARIMA(2,0,0) with constant"
    elif period > 24:
        from statsmodels.tsa.arima.model import ARIMA
        from statsmodels.tsa.forecasting.stl import STLForecast

        model = STLForecast(train, ARIMA, model_kwargs={"order": (1, 1, 1)}, period=period)
        spec = f"STL (m={period}) + ARIMA(1,1,1)"
        result, note = _quiet(model.fit)
        return np.asarray(result.forecast(horizon), dtype=np.float64), spec, note
    else:
        model = SARIMAX(train, order=(0, 1, 1), seasonal_order=(0, 1, 1, period))
        spec = f"SARIMA(0,1,1)(0,1,1){period}"
    result, note = _quiet(lambda: model.fit(disp=False))
    return np.asarray(result.forecast(horizon), dtype=np.float64), spec, note


BASELINES = ("seasonal_naive", "drift", "holt_winters", "sarima")


def forecast_all(train: np.ndarray, horizon: int, period: int) -> dict[str, dict]:
    """Every baseline's forecast of the ``horizon`` values after ``train``:
    ``{name: {"forecast": (H,) array, "model": description, "note": warning or None}}``. A baseline that
    cannot be fitted (too short a series for its season) is left out with its reason in ``note``."""
    out: dict[str, dict] = {}
    out["seasonal_naive"] = {
        "forecast": seasonal_naive(train, horizon, period),
        "model": f"seasonal naive (m={period})" if period > 1 else "naive (last value)",
        "note": None,
    }
    out["drift"] = {"forecast": drift(train, horizon), "model": "random walk with drift", "note": None}
    for name, fit in (("holt_winters", holt_winters), ("sarima", sarima)):
        try:
            forecast, spec, note = fit(train, horizon, period)
        except (ValueError, np.linalg.LinAlgError) as err:  # e.g. fewer than two seasons
            out[name] = {"forecast": None, "model": name, "note": f"not fitted: {err}"}
            continue
        if not np.isfinite(forecast).all():
            forecast, note = None, "not fitted: non-finite forecast"
        out[name] = {"forecast": forecast, "model": spec, "note": note}
    return out


def smape(pred: np.ndarray, target: np.ndarray) -> float:
    """Symmetric MAPE in percent: ``100 * mean 2 |y - ŷ| / (|y| + |ŷ|)`` (0/0 counted as 0)."""
    pred, target = np.asarray(pred, dtype=np.float64), np.asarray(target, dtype=np.float64)
    denominator = np.abs(target) + np.abs(pred)
    ratio = np.where(
        denominator > 0, 2 * np.abs(target - pred) / np.where(denominator > 0, denominator, 1), 0
    )
    return float(100 * ratio.mean())


def pinball(quantiles: np.ndarray, target: np.ndarray, levels: tuple[float, ...]) -> float:
    """Mean pinball (quantile) loss over steps and levels: ``max(q (y - ŷ_q), (q - 1)(y - ŷ_q))``.

    Shapes: ``quantiles`` (H, Q), ``target`` (H,)."""
    diff = np.asarray(target, dtype=np.float64)[:, None] - np.asarray(quantiles, dtype=np.float64)  # (H, Q)
    q = np.asarray(levels, dtype=np.float64)[None, :]  # (1, Q)
    return float(np.maximum(q * diff, (q - 1) * diff).mean())


def point_scores(pred: np.ndarray, target: np.ndarray, train: np.ndarray, period: int) -> dict[str, float]:
    """MAPE (percent), sMAPE (percent) and MASE (scaled by the in-sample seasonal naive's mean error)."""
    pred, target, train = (np.asarray(a, dtype=np.float64) for a in (pred, target, train))
    nonzero = np.abs(target) > 0
    mape = (
        float(100 * np.mean(np.abs(target - pred)[nonzero] / np.abs(target[nonzero])))
        if nonzero.any()
        else math.nan
    )
    m = period if len(train) > period else 1
    scale = float(np.mean(np.abs(train[m:] - train[:-m])))
    mase = float(np.mean(np.abs(target - pred)) / scale) if scale > 0 else math.nan
    return {"mape": mape, "smape": smape(pred, target), "mase": mase}
