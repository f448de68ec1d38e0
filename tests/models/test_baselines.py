"""The classical baselines: seasonal naive and drift by hand, Holt-Winters and SARIMA equal statsmodels'
own fits, and on AirPassengers the figures the forecasting issue quotes (13.2 / 5.6 / 4.2 % MAPE)."""

from __future__ import annotations

import importlib.util
import warnings

import numpy as np
import pytest
import torch

from rnnlab.models.baselines import (
    drift,
    forecast_all,
    holt_winters,
    pinball,
    point_scores,
    sarima,
    seasonal_naive,
)
from rnnlab.training.metrics import mape, mase

needs_statsmodels = pytest.mark.skipif(importlib.util.find_spec("statsmodels") is None, reason="statsmodels")


def seasonal_series(n=60, m=12, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return 50 + 0.5 * t + 10 * np.sin(2 * np.pi * t / m) + rng.normal(0, 1, n)


def test_seasonal_naive_and_drift_by_hand():
    y = np.array([1.0, 2, 3, 4, 5, 7])
    np.testing.assert_array_equal(seasonal_naive(y, 5, 3), [4, 5, 7, 4, 5])
    np.testing.assert_array_equal(seasonal_naive(y, 2, 1), [7, 7])
    np.testing.assert_allclose(drift(y, 3), [8.2, 9.4, 10.6])  # slope (7 - 1) / 5


def test_point_scores_agree_with_rnnlab_metrics():
    rng = np.random.default_rng(1)
    train, target, pred = rng.uniform(1, 10, 30), rng.uniform(1, 10, 6), rng.uniform(1, 10, 6)
    s = point_scores(pred, target, train, 4)
    assert s["mape"] == pytest.approx(mape(torch.tensor(pred), torch.tensor(target)))
    assert s["mase"] == pytest.approx(mase(torch.tensor(pred), torch.tensor(target), torch.tensor(train), 4))
    assert s["smape"] == pytest.approx(100 * np.mean(2 * abs(target - pred) / (abs(target) + abs(pred))))
    q = np.stack([pred - 1, pred, pred + 1], axis=1)  # (H, 3)
    by_hand = np.mean(
        [
            max(lv * (y - v), (lv - 1) * (y - v))
            for y, row in zip(target, q, strict=True)
            for lv, v in zip((0.1, 0.5, 0.9), row, strict=True)
        ]
    )
    assert pinball(q, target, (0.1, 0.5, 0.9)) == pytest.approx(by_hand)


@needs_statsmodels
def test_holt_winters_and_sarima_equal_statsmodels_own_fits():
    from statsmodels.tsa.holtwinters import ExponentialSmoothing
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    y = seasonal_series()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hw = ExponentialSmoothing(y, trend="add", seasonal="mul", seasonal_periods=12,
                                  initialization_method="estimated").fit().forecast(8)  # fmt: skip
        sa = SARIMAX(y, order=(0, 1, 1), seasonal_order=(0, 1, 1, 12)).fit(disp=False).forecast(8)
    np.testing.assert_allclose(holt_winters(y, 8, 12)[0], hw)
    np.testing.assert_allclose(sarima(y, 8, 12)[0], sa)


@needs_statsmodels
def test_a_series_too_short_for_a_baseline_leaves_it_out_with_the_reason():
    out = forecast_all(seasonal_series(n=15), 4, 12)
    assert out["seasonal_naive"]["forecast"] is not None
    assert out["holt_winters"]["forecast"] is None and out["holt_winters"]["note"].startswith("not fitted")


@pytest.mark.skipif(
    importlib.util.find_spec("pmdarima") is None or importlib.util.find_spec("statsmodels") is None,
    reason="pmdarima and statsmodels",
)
def test_airpassengers_baselines_match_the_quoted_figures():
    from rnnlab.data.series import load_series

    y = load_series("airpassengers").values
    train, test = y[:-36], y[-36:]
    out = forecast_all(train, 36, 12)
    got = {name: point_scores(b["forecast"], test, train, 12)["mape"] for name, b in out.items()}
    assert round(got["seasonal_naive"], 1) == 13.2
    # The issue quotes 5.6 %; statsmodels 0.15's optimizer finds a better Holt-Winters fit (5.07 %) than the
    # release the quote was measured with. The fit itself is checked against statsmodels above.
    assert 5.0 <= got["holt_winters"] <= 5.7
    assert round(got["sarima"], 1) == 4.2
