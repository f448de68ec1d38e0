"""The forecast task's fitting steps: split-conformal spread by hand, the refit's trainer options, and what
the refit and the calibration learn from (the validation part: yes; the holdout: never)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from test_forecast import TINY, write_series

from rnnlab.models.forecaster import ForecasterConfig, RecurrentForecaster
from rnnlab.tasks import forecast
from rnnlab.tasks.config import apply_overrides
from rnnlab.tasks.forecast_fit import MIN_SPREAD, conformal_spread, refit_config
from rnnlab.training import TrainerConfig, load_checkpoint

pytestmark = [pytest.mark.xdist_group("forecast"), pytest.mark.usefixtures("one_thread")]


def flat_model() -> RecurrentForecaster:
    """Head at zero, no highway: every member forecasts median = level, q_lo / q_hi = level -/+ log 2."""
    torch.manual_seed(0)
    c = ForecasterConfig(cell="gru", hidden_size=4, window=6, horizon=3, num_features=0, period=3, ensemble=2)
    return RecurrentForecaster(c.__class__(**{**c.to_dict(), "highway": False}))


def test_conformal_spread_is_the_corrected_quantile_of_the_interval_scale_that_covers_each_target():
    model = flat_model()
    model.set_spread(7.0, 7.0)  # reset before scoring: the scores are of the uncalibrated quantiles
    r = np.array([-0.1, 0.2, -0.3, 0.4, -0.5, 0.6, -0.7, 0.8, -0.9, 1.0, 50.0, -50.0])  # (12,) = (B=4, H=3)
    y = torch.tensor(r * math.log(2), dtype=torch.float32).view(4, 3)  # the window's level is 0
    mask = torch.ones(4, 3, dtype=torch.bool)
    mask[3, 1:] = False  # the two far targets are unknown: they must not count
    batches = [(torch.zeros(2, 6), torch.zeros(2, 6, 0), y[:2], mask[:2])]
    batches.append((torch.zeros(2, 6), torch.zeros(2, 6, 0), y[2:], mask[2:]))
    s = conformal_spread(model, batches)
    # scores |r| = 0.1 ... 1.0 (n = 10); level 0.9 - 0.1 = 0.8: rank ceil(11 * 0.8) = 9 -> 0.9
    assert s == pytest.approx((0.9, 0.9), rel=1e-5)
    assert torch.equal(model.spread, torch.ones(2))  # conformal_spread scores; the caller sets it

    tiny = [(torch.zeros(1, 6), torch.zeros(1, 6, 0), torch.zeros(1, 3), torch.ones(1, 3, dtype=torch.bool))]
    assert conformal_spread(model, tiny) == (MIN_SPREAD, MIN_SPREAD)  # targets on the median: the floor


def test_refit_config_keeps_the_optimizer_and_drops_the_stopping():
    base = TrainerConfig(
        epochs=30, lr=3e-3, weight_decay=1e-3, patience=10, monitor="valid_loss", monitor_mode="min"
    )
    c = refit_config(base, 9)
    assert (c.epochs, c.patience, c.monitor, c.monitor_mode) == (9, None, "train_loss", "min")
    assert (c.lr, c.weight_decay, c.lr_schedule, c.seed) == (
        base.lr,
        base.weight_decay,
        base.lr_schedule,
        base.seed,
    )
    assert refit_config(base, 0).epochs == 1  # no epoch chosen (NaN losses): one epoch, never zero


def test_the_refit_learns_from_the_validation_part(tmp_path, monkeypatch):
    monkeypatch.setattr(forecast, "forecast_all", lambda train, horizon, period: {})  # baselines: not here
    base = write_series(tmp_path / "base.csv")
    n, H = 72, 12
    y = np.loadtxt(base, delimiter=",", skiprows=1, usecols=1)
    changed_valid = y.copy()
    changed_valid[n - 2 * H : n - H] *= 1.2  # the validation part only
    write_series(tmp_path / "valid.csv", holdout=changed_valid[n - 2 * H :])
    results = {}
    for name in ("base", "valid"):
        data = tmp_path / f"{name}.csv"  # unscaled, so that the training part's values are the same in both
        config = apply_overrides(
            forecast.Config(), [f"data.dataset={data}", "data.scaling=none", "data.refit=true", *TINY]
        )
        results[name] = forecast.train(config, tmp_path / name)
    a, b = (load_checkpoint(r.run_dir / "best") for r in results.values())
    r = results["base"]
    assert len(r.refit_history) == r.best_epoch >= 1  # the refit ran for the selected epoch count
    assert a.meta["trainer"]["config"]["epochs"] == r.best_epoch
    assert a.meta["selection"]["best_epoch"] == r.best_epoch
    assert a.state_dict["spread"].tolist() == pytest.approx(list(r.spread)) and r.spread != (1.0, 1.0)
    # the selection's training loss never read the validation targets (the same in both runs); the refit did
    assert r.history[0]["train_loss"] == results["valid"].history[0]["train_loss"]
    assert r.refit_history[0]["train_loss"] != results["valid"].refit_history[0]["train_loss"]
    assert not all(w.equal(b.state_dict[k]) for k, w in a.state_dict.items() if k != "spread")


def test_the_refit_and_the_calibration_never_read_the_holdout(tmp_path, monkeypatch):
    monkeypatch.setattr(forecast, "forecast_all", lambda train, horizon, period: {})
    results = []
    for name, holdout in (("a", None), ("b", np.full(12, 1000.0))):
        data = write_series(tmp_path / f"{name}.csv", holdout=holdout)
        config = apply_overrides(forecast.Config(), [f"data.dataset={data}", "data.refit=true", *TINY])
        results.append(forecast.train(config, tmp_path / name))
    a, b = (load_checkpoint(r.run_dir / "best") for r in results)
    assert results[0].spread == results[1].spread != (1.0, 1.0)
    for key, weight in a.state_dict.items():  # the spread buffer included
        assert weight.equal(b.state_dict[key]), key
    rows = [[row["train_loss"] for row in r.refit_history] for r in results]
    assert rows[0] == rows[1]
