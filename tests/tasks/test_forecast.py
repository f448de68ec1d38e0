"""The forecast task end to end on a small synthetic monthly series: train -> evaluate (with baselines and a
backtest) -> predict -> plot through the command line; the holdout never reaches training or scaling; each
bad input a one-line error that leaves an earlier run untouched."""

from __future__ import annotations

import json

import numpy as np
import pytest
from task_testing import assert_user_error, cli, snapshot

from rnnlab.inference.forecaster import Forecaster
from rnnlab.tasks import forecast
from rnnlab.tasks.config import apply_overrides
from rnnlab.training import load_checkpoint

pytestmark = [pytest.mark.xdist_group("forecast"), pytest.mark.usefixtures("one_thread")]
pytest.importorskip("statsmodels")

TINY = ["model.cell=gru", "model.hidden_size=4", "model.ensemble=2", "train.epochs=2", "train.progress=false"]
TINY += ["data.steps_per_epoch=2", "data.horizon=12"]


def write_series(path, n=72, holdout=None, seed=0):
    """A monthly series with trend and season; ``holdout`` replaces its last values."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    y = 100 + 0.8 * t + 12 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 1, n)
    if holdout is not None:
        y[-len(holdout) :] = holdout
    rows = [f"{2000 + i // 12}-{i % 12 + 1:02d},{v:.4f}" for i, v in enumerate(y)]
    path.write_text("month,sales\n" + "\n".join(rows) + "\n")
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("forecast")
    data = write_series(folder / "sales.csv")
    code = forecast.train(apply_overrides(forecast.Config(), [f"data.dataset={data}", *TINY]), folder / "run")
    assert code.run_dir == folder / "run"
    return folder / "run"


def test_the_run_folder_and_its_split(run):
    assert {"config.json", "run.json", "metrics.csv", "test_metrics.json", "best", "last"} <= {
        p.name for p in run.iterdir()
    }
    info = json.loads((run / "run.json").read_text())["data"]
    assert (info["train"]["size"], info["valid"]["size"], info["test"]["size"]) == (48, 12, 12)
    assert (info["test"]["start"], info["test"]["end"]) == ("2005-01", "2005-12")
    config = forecast.load_run_config(run)
    assert (config.model.window, config.model.horizon, config.model.period) == (24, 12, 12)


def test_cli_evaluate_predict_plot(run, capsys, tmp_path):
    code, out, err = cli(capsys, "evaluate", run, "--json", "--backtest", "1")
    assert code == 0, err
    result = json.loads(out)
    for key in ("mape", "smape", "mase", "pinball", "coverage"):
        assert isinstance(result[key], float)
    assert set(result["baselines"]) == {"seasonal_naive", "drift", "holt_winters", "sarima"}
    assert all({"mape", "smape", "mase"} <= set(b) for b in result["baselines"].values())
    assert result["interval"] == pytest.approx(0.8) and result["backtest"][0]["origin"] == "2004-01"
    saved = json.loads((run / "test_metrics.json").read_text())
    assert saved["mape"] == pytest.approx(result["mape"])  # evaluate rebuilds what train scored

    code, out, err = cli(capsys, "predict", run, "--json")
    assert code == 0, err
    p = json.loads(out)
    assert (
        p["times"][0] == "2006-01"
        and len(p["forecast"]) == 12
        and set(p["quantiles"]) == {"0.1", "0.5", "0.9"}
    )
    q = np.array([p["quantiles"][k] for k in ("0.1", "0.5", "0.9")])  # (Q, H)
    assert (np.diff(q, axis=0) > 0).all() and p["forecast"] == p["quantiles"]["0.5"]
    code, out, _ = cli(capsys, "predict", run)
    assert code == 0 and out.splitlines()[0] == "time\tq0.1\tq0.5\tq0.9" and len(out.splitlines()) == 13

    code, out, err = cli(capsys, "plot", "forecast", run, "-o", tmp_path / "f.png")
    assert code == 0, err
    assert (tmp_path / "f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_errors_on_a_forecast_run(run, capsys):
    assert_user_error(*cli(capsys, "evaluate", run, "--backtest", "2")[::2], "at most 1 origin fits")
    assert_user_error(*cli(capsys, "predict", run, "some text")[::2], "takes no texts")
    assert_user_error(*cli(capsys, "evaluate", run, "--beam", "2")[::2], "--beam applies to sequence outputs")


def test_forecaster_from_python(run):
    f = Forecaster.from_checkpoint(run)
    own = f.predict()
    history = np.array(f.tail)
    again = f.predict(history, last_time="2005-12")
    np.testing.assert_allclose(again["forecast"], own["forecast"])
    shifted = f.predict(history * 1.1, last_time="2005-12")
    assert shifted["forecast"] != own["forecast"]
    with pytest.raises(Exception, match="history: expected at least window=24 values"):
        f.predict(history[:5])


def test_the_holdout_never_reaches_training_or_scaling(tmp_path, monkeypatch):
    monkeypatch.setattr(
        forecast, "forecast_all", lambda train, horizon, period: {}
    )  # baselines: not tested here
    runs = []
    for name, holdout in (("a", None), ("b", np.full(12, 1000.0))):
        data = write_series(tmp_path / f"{name}.csv", holdout=holdout)
        config = apply_overrides(forecast.Config(), [f"data.dataset={data}", *TINY])
        runs.append(forecast.train(config, tmp_path / name))
    a, b = (load_checkpoint(r.run_dir / "best") for r in runs)
    assert a.meta["scaler"] == b.meta["scaler"]
    assert a.state_dict["spread"].tolist() != [1.0, 1.0]  # calibrated (on the validation part), and the
    # loop below finds it equal in both runs: the holdout does not reach the calibration
    for key, weight in a.state_dict.items():
        assert weight.equal(b.state_dict[key]), key
    losses = [[row[k] for k in ("train_loss", "valid_loss")] for r in runs for row in r.history]
    assert losses[: len(losses) // 2] == losses[len(losses) // 2 :]  # the same fit, epoch by epoch
    assert runs[0].test_metrics["mape"] != runs[1].test_metrics["mape"]  # the holdout is what is scored


@pytest.mark.parametrize(
    ("edit", "overrides", "match"),
    [
        (None, ["data.horizon=40"], "too short: 72 values"),
        (lambda lines: lines.__setitem__(9, "2000-09,n/a"), [], "'n/a' in column 'sales' is not a number"),
        (lambda lines: lines.__setitem__(9, lines[8]), [], "duplicate timestamp"),
        (lambda lines: lines.__setitem__(9, "1990-01,5"), [], "not sorted"),
        (lambda lines: lines.pop(9), [], "a gap in the monthly series"),
        ("constant", [], "constant series"),
        (None, ["data.horizon=0"], "data.horizon: expected >= 1"),
    ],
    ids=["short", "non-numeric", "duplicate", "unsorted", "gap", "constant", "horizon-0"],
)
def test_bad_input_is_one_line_and_leaves_the_earlier_run(run, tmp_path, capsys, edit, overrides, match):
    data = write_series(tmp_path / "bad.csv")
    lines = data.read_text().splitlines()
    if edit == "constant":
        lines = [lines[0]] + [f"{row.split(',')[0]},7" for row in lines[1:]]
    elif edit is not None:
        edit(lines)
    data.write_text("\n".join(lines) + "\n")
    before = snapshot(run)
    tiny = [o for o in TINY if not o.startswith("data.horizon")] + (overrides or ["data.horizon=12"])
    code, _, err = cli(capsys, "train", "forecast", "--data", data, "--out", run, "--overwrite", *tiny)
    assert_user_error(code, err, match)
    assert snapshot(run) == before
