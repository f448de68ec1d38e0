"""M4's measures: a two-series collection worked by hand (different horizons, a series too short for its
season), Naive2's OWA of exactly 1, and utilsforecast's own sMAPE and MASE on the same forecasts."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from rnnlab.training.competition_metrics import (
    coverage,
    mase,
    mase_scale,
    msis,
    owa,
    score_collection,
    smape,
)

# Series A: m = 2, seasonal differences |12-10| = |22-20| = |14-12| = |24-22| = 2, so the scale is 2.
# Series B: two values, no more than m, so the scale is the lag-1 one, |6 - 4| = 2; its test part is one
# value while the model forecasts two steps (cut to one).
X = [np.array([10.0, 20, 12, 22, 14, 24]), np.array([4.0, 6])]
Y = [np.array([16.0, 26]), np.array([10.0])]
F = [np.array([15.0, 28]), np.array([8.0, 9])]
N2 = [np.array([14.0, 24]), np.array([6.0])]
LO80 = [np.array([15.0, 25]), np.array([11.0])]
HI80 = [np.array([17.0, 27]), np.array([13.0])]


def test_point_measures_by_hand():
    np.testing.assert_allclose(smape(Y[0], F[0]), [200 * 1 / 31, 200 * 2 / 54])
    assert mase_scale(X[0], 2) == 2.0
    assert mase_scale(X[1], 2) == 2.0  # too short for m = 2: lag 1
    assert mase_scale(X[0], 1) == pytest.approx(np.mean([10, 8, 10, 8, 10]))
    np.testing.assert_allclose(mase(Y[0], F[0], X[0], 2), [0.5, 1.0])
    # (N, H) with one training part per row
    np.testing.assert_allclose(
        mase(np.stack([Y[0], Y[0]]), np.stack([F[0], N2[0]]), [X[0], X[0]], 2), [[0.5, 1], [1, 1]]
    )
    np.testing.assert_allclose(coverage(Y[1], LO80[1], HI80[1]), [0.0])
    # width 2 plus 2 / 0.2 times the miss of 1 below the lower bound, over the scale 2
    np.testing.assert_allclose(msis(Y[1], LO80[1], HI80[1], X[1], 2, 0.2), [(2 + 10 * 1) / 2])
    np.testing.assert_allclose(msis(Y[0], LO80[0], HI80[0], X[0], 2, 0.2), [1.0, 1.0])


def test_score_collection_by_hand():
    s = score_collection(Y, F, X, 2, lo={80: LO80}, hi={80: HI80}, naive2=N2)
    smape_a, smape_b = (200 / 31 + 200 * 2 / 54) / 2, 200 * 2 / 18
    assert s["smape"] == pytest.approx((smape_a + smape_b) / 2)
    assert s["mase"] == pytest.approx((0.75 + 1.0) / 2)
    smape_n2 = ((200 * 2 / 30 + 200 * 2 / 50) / 2 + 200 * 4 / 16) / 2
    mase_n2 = (1.0 + 2.0) / 2
    assert s["smape_naive2"] == pytest.approx(smape_n2)
    assert s["mase_naive2"] == pytest.approx(mase_n2)
    assert s["owa"] == pytest.approx(0.5 * (s["smape"] / smape_n2 + 0.875 / mase_n2))
    assert s["coverage80"] == pytest.approx(0.5)
    assert s["msis80"] == pytest.approx((1.0 + 6.0) / 2)
    # step 1 averages both series; step 2 only series A, which alone reaches it
    np.testing.assert_allclose(s["per_step"]["smape"], [(200 / 31 + 200 * 2 / 18) / 2, 200 * 2 / 54])
    np.testing.assert_allclose(s["per_step"]["coverage80"], [0.5, 1.0])
    assert [r["h"] for r in s["per_series"]] == [2, 1]
    assert s["per_series"][1]["smape"] == pytest.approx(smape_b)
    assert s["n_series"] == 2
    assert "owa" not in score_collection(Y, F, X, 2)


def test_owa_of_naive2_is_one_and_zero_terms():
    s = score_collection(Y, N2, X, 2, naive2=N2)
    assert s["owa"] == pytest.approx(1.0)
    assert owa(10.0, 1.0, 20.0, 2.0) == pytest.approx(0.5)
    # 0 / 0 is a perfect forecast, not NaN
    np.testing.assert_array_equal(smape([0.0, 1.0], [0.0, 1.0]), [0.0, 0.0])


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="f_list: expected 2 entries"):
        score_collection(Y, F[:1], X, 2)
    with pytest.raises(ValueError, match=r"f_list\[1\]: expected at least 1 values"):
        score_collection(Y, [F[0], np.array([])], X, 2)
    with pytest.raises(ValueError, match="lo, hi: expected the same levels"):
        score_collection(Y, F, X, 2, lo={80: LO80}, hi={95: HI80})
    with pytest.raises(ValueError, match="m: expected a positive integer"):
        mase_scale(X[0], 0)
    with pytest.raises(ValueError, match="alpha: expected"):
        msis(Y[0], LO80[0], HI80[0], X[0], 2, 5)
    with pytest.raises(ValueError, match="f: expected the shape"):
        smape([1.0, 2.0], [1.0])


def test_constant_training_part_scale():
    # scale 0: an exact forecast scores 0, any other one infinity (no division warning)
    np.testing.assert_array_equal(mase([3.0, 4.0], [3.0, 5.0], [3.0, 3.0, 3.0], 1), [0.0, np.inf])


@pytest.mark.skipif(importlib.util.find_spec("utilsforecast") is None, reason="utilsforecast")
def test_matches_utilsforecast():
    import pandas as pd
    from utilsforecast.losses import mase as uf_mase
    from utilsforecast.losses import smape as uf_smape

    rng = np.random.default_rng(0)
    m, h = 4, 5
    xs = [50 + rng.normal(0, 5, n).cumsum() for n in (20, 33)]
    ys = [x[-1] + rng.normal(0, 3, h) for x in xs]
    fs = [np.full(h, x[-1]) + rng.normal(0, 2, h) for x in xs]
    test = pd.DataFrame({
        "unique_id": np.repeat(["a", "b"], h), "ds": np.tile(np.arange(h), 2),
        "y": np.concatenate(ys), "model": np.concatenate(fs),
    })  # fmt: skip
    train = pd.DataFrame({
        "unique_id": np.repeat(["a", "b"], [len(x) for x in xs]),
        "ds": np.concatenate([np.arange(len(x)) - len(x) for x in xs]), "y": np.concatenate(xs),
    })  # fmt: skip
    s = score_collection(ys, fs, xs, m)
    # utilsforecast's sMAPE is the same ratio without the factor 200 (it reports a fraction in [0, 1])
    uf_s = uf_smape(test, ["model"]).set_index("unique_id")["model"]
    np.testing.assert_allclose([r["smape"] for r in s["per_series"]], 200 * uf_s.loc[["a", "b"]].to_numpy())
    uf_m = uf_mase(test, ["model"], seasonality=m, train_df=train).set_index("unique_id")["model"]
    np.testing.assert_allclose([r["mase"] for r in s["per_series"]], uf_m.loc[["a", "b"]].to_numpy())
