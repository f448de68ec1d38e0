"""One forecaster across a collection: windows, the model's median over members, the task's steps, no leak
of the test parts into any weight or choice, the collection's defaults, and a two-process gloo run."""

from __future__ import annotations

import json
import os
import socket
import time

import numpy as np
import pytest
import torch
import torch.distributed as dist

from rnnlab.models.forecaster import ForecasterConfig
from rnnlab.models.global_forecaster import GlobalForecaster
from rnnlab.tasks import forecast, forecast_global
from rnnlab.tasks.forecast_windows import CollectionScaler, SeriesWindows, windows_at
from rnnlab.training import load_checkpoint
from tiny_series import write_collection


@pytest.fixture(scope="module", autouse=True)
def private_forecast_cache(tmp_path_factory):
    """The statistical models' forecasts are cached (rnnlab.models.stat_forecasters): here, not in the user's
    cache folder."""
    import rnnlab.data.sources

    folder = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(rnnlab.data.sources, "cache_dir", lambda: folder)
        yield folder


def tiny_config(path, **data):
    cfg = forecast.Config()
    cfg.data.dataset = str(path)
    cfg.data.horizon = 6
    cfg.data.baselines = "Naive2,SeasonalNaive"
    cfg.data.jobs = 1
    cfg.data.batch_size = 16
    cfg.data.steps_per_epoch = 3
    cfg.model.hidden_size = 4
    cfg.model.ensemble = 1
    cfg.train.epochs = 2
    cfg.train.progress = False
    for key, value in data.items():
        setattr(cfg.data, key, value)
    return cfg


# -- windows -----------------------------------------------------------------------------------------------


def test_windows_pad_short_series_with_their_first_value_and_flag_it():
    z = [np.arange(1.0, 6.0, dtype=np.float32), np.arange(10.0, 30.0, dtype=np.float32)]
    x, observed = windows_at(z, np.array([0, 1]), np.array([3, 20]), 5)
    np.testing.assert_array_equal(x[0], [1, 1, 1, 2, 3])
    np.testing.assert_array_equal(observed[0, :, 0], [0, 0, 1, 1, 1])
    np.testing.assert_array_equal(x[1], np.arange(25.0, 30.0))
    assert observed[1].all()


def test_training_windows_stay_before_the_stop_and_near_the_end():
    z = [np.arange(50, dtype=np.float32), np.arange(30, dtype=np.float32) + 100]
    stops = np.array([44, 24])
    batches = SeriesWindows(z, stops, 8, 6, 64, steps=5, span=12, seed=3)
    for x, _observed, y, mask in batches:
        last = x[:, -1].numpy()  # z is its index (+100): the origin is last + 1
        row = (last >= 100).astype(int)
        origin = np.where(row == 1, last - 100, last) + 1
        assert (origin <= stops[row] - 1).all() and (origin >= stops[row] - 12).all()
        known = mask.sum(1).numpy()
        np.testing.assert_array_equal(known, np.minimum(6, stops[row] - origin))
        assert (y.numpy()[~mask.numpy()] == 0).all()
        target_first = y[:, 0].numpy()
        np.testing.assert_array_equal(target_first, np.where(row == 1, origin + 100, origin))


def test_same_epoch_same_batches_other_epoch_other_batches():
    z = [np.arange(40, dtype=np.float32)]
    a = SeriesWindows(z, [34], 6, 6, 8, steps=2, span=20, seed=1)
    first = [b[0].clone() for b in a]
    again = [b[0].clone() for b in a]
    a.set_epoch(1)
    other = [b[0].clone() for b in a]
    assert all(torch.equal(p, q) for p, q in zip(first, again, strict=True))
    assert not all(torch.equal(p, q) for p, q in zip(first, other, strict=True))


def test_scaler_logs_positive_collections_and_divides_the_others():
    parts = [np.array([1.0, 2.0, 4.0]), np.array([10.0, 20.0])]
    s = CollectionScaler.fit(parts)
    assert s.log
    np.testing.assert_allclose(s.inverse(1, s.transform(1, parts[1])), parts[1])
    with_zero = [np.array([0.0, 2.0, 4.0]), np.array([-10.0, 20.0])]
    s = CollectionScaler.fit(with_zero)
    assert not s.log and s.scales == [2.0, 15.0]
    np.testing.assert_allclose(s.transform(1, with_zero[1]), [-10 / 15, 20 / 15])


# -- the model -----------------------------------------------------------------------------------------------


def test_global_forecaster_is_the_median_of_its_members_and_monotone():
    torch.manual_seed(0)
    cfg = ForecasterConfig(hidden_size=4, ensemble=3, horizon=5, period=4, quantiles="0.1,0.5,0.9")
    model = GlobalForecaster(cfg, [6, 9]).eval()
    for p in model.parameters():  # non-zero heads, so the members differ
        torch.nn.init.normal_(p, std=0.3)
    x, observed = torch.randn(7, 9), torch.ones(7, 9, 1)
    members = model(x, observed, members=True)  # (B, K, H, Q)
    assert members.shape == (7, 6, 5, 3)
    median = members.median(dim=1).values.detach()
    np.testing.assert_allclose(model(x, observed).detach(), median, rtol=1e-6, atol=1e-6)
    # the group of look-back 6 reads only the last 6 steps
    g = model.groups[0]
    np.testing.assert_allclose(
        members[:, :3].detach(), g.uncalibrated(x[:, -6:], observed[:, -6:]).detach(), rtol=1e-5, atol=1e-6
    )
    q = model(x, observed)
    assert (q.diff(dim=-1) >= 0).all()
    model.set_spread(2.0, 2.0)
    wide = model(x, observed)
    np.testing.assert_allclose((wide - wide[..., 1:2]).detach(), 2 * (q - q[..., 1:2]).detach(), atol=1e-6)
    with pytest.raises(ValueError, match=r"x: expected \(B, window=9\), received \(7, 6\)"):
        model(x[:, :6], observed[:, :6])


# -- the task ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("global")
    path = write_collection(root / "long.csv")
    result = forecast.train(tiny_config(path), root / "run")
    return root, path, result


def test_a_collection_run_scores_like_the_competitions(trained):
    root, _, result = trained
    t = result.test_metrics
    for key in ("smape", "mase", "owa", "coverage80", "msis80", "coverage95", "msis95"):
        assert np.isfinite(t[key]), key
    assert set(t["baselines"]) == {"Naive2", "SeasonalNaive"}
    assert t["baselines"]["Naive2"]["owa"] == pytest.approx(1.0)
    assert len(t["per_step"]["smape"]) == 6
    assert t["combination"] in forecast_global.COMBINATIONS
    run = root / "run"
    for name in ("config.json", "run.json", "selection.json", "test_metrics.json", "best", "last", "select"):
        assert (run / name).exists(), name
    assert json.loads((run / "run.json").read_text())["kind"] == "collection"
    # evaluate reads the same run to the same figures
    again = forecast_global.evaluate(run)
    assert again["smape"] == pytest.approx(t["smape"]) and again["owa"] == pytest.approx(t["owa"])
    per = forecast_global.evaluate(run, per_series=True)
    assert len(per["per_series"]) == 6 and per["ids"] == [f"s{i}" for i in range(6)]
    assert np.mean([r["smape"] for r in per["per_series"]]) == pytest.approx(t["smape"])


def test_collection_defaults_apply_only_where_the_user_left_the_one_series_ones(trained):
    _, _, result = trained
    assert "model.hidden_size" not in result.adapted  # set to 4 by the test
    assert result.adapted["model.quantiles"] == ("0.1,0.5,0.9", "0.025,0.1,0.5,0.9,0.975")
    cfg = forecast.Config()
    cfg.model.hidden_size = 100
    adapted = forecast_global.apply_collection_defaults(cfg)
    assert cfg.model.hidden_size == 100 and "model.hidden_size" not in adapted
    assert cfg.data.batch_size == 256 and adapted["data.batch_size"] == (32, 256)


def test_changing_a_test_value_changes_no_weight_and_no_choice(trained, tmp_path):
    root, _, result = trained
    other = write_collection(tmp_path / "long.csv", bump=(2, 500.0))  # series 2's last test value moves
    second = forecast.train(tiny_config(other), tmp_path / "run")
    a, b = (load_checkpoint(r / "best") for r in (root / "run", tmp_path / "run"))
    for key in a.state_dict:
        assert torch.equal(a.state_dict[key], b.state_dict[key]), key
    sel_a, sel_b = (json.loads((r / "run" / "selection.json").read_text()) for r in (root, tmp_path))
    for sel in (sel_a, sel_b):
        sel["best_metrics"].pop("time")  # wall-clock seconds of the epoch
    assert sel_a == sel_b
    assert (result.best_epoch, result.spread, result.combination) == (
        second.best_epoch,
        second.spread,
        second.combination,
    )
    assert second.test_metrics["smape"] != result.test_metrics["smape"]  # the test part did change


def test_unseen_series_are_forecast_on_their_own_scale(trained):
    root, _, _ = trained
    model, scaler, _ = forecast_global.load_model(root / "run")
    t = np.arange(30)
    history = 1000 * (1 + 0.2 * np.sin(2 * np.pi * t / 12))
    q = forecast_global.forecast_series(model, [history, history / 1000], scaler.log)
    assert q[0].shape == (6, 5)
    np.testing.assert_allclose(q[0], 1000 * q[1], rtol=1e-4)  # scale-free: log and level normalisation
    assert 200 < q[0][:, 2].mean() < 5000


def test_bad_lookbacks_name_the_key():
    with pytest.raises(Exception, match=r"data.lookbacks: expected multiples of the horizon"):
        forecast_global.lookback_windows("two", 6)
    assert forecast_global.lookback_windows("1.5,2", 18) == [27, 36]


# -- two processes -----------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, root: str) -> None:
    os.environ.update(
        {"RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank), "MASTER_ADDR": "127.0.0.1",
         "MASTER_PORT": str(port)}
    )  # fmt: skip
    torch.set_num_threads(1)
    path = os.path.join(root, "long.csv")
    forecast.train(tiny_config(path, baselines=""), os.path.join(root, "run"))
    model, _, _ = forecast_global.load_model(os.path.join(root, "run"))
    torch.save(model.state_dict(), os.path.join(root, f"rank{rank}.pt"))
    if dist.is_initialized():
        dist.barrier()


@pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()), reason="gloo backend unavailable")
@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
def test_two_process_gloo_run_trains_one_model(tmp_path):
    write_collection(tmp_path / "long.csv")
    method = "fork" if "fork" in torch.multiprocessing.get_all_start_methods() else "spawn"
    ctx = torch.multiprocessing.start_processes(
        _ddp_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=False, start_method=method
    )
    deadline = time.monotonic() + 120
    while not ctx.join(timeout=1):
        if time.monotonic() > deadline:
            for p in ctx.processes:
                p.kill()
            pytest.fail("the two-process run did not finish within 120 s")
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    for key in r0:
        assert torch.equal(r0[key], r1[key]), key
    assert load_checkpoint(tmp_path / "run" / "last").meta["trainer"]["world_size"] == 2


# -- the command line ------------------------------------------------------------------------------------


def test_cli_evaluate_and_predict_a_collection_run(trained, capsys, tmp_path):
    from rnnlab.cli import main

    root, _, result = trained
    run = str(root / "run")
    assert main(["evaluate", run, "--json", "--per-series"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["smape"] == pytest.approx(result.test_metrics["smape"]) and len(out["per_series"]) == 6
    assert main(["evaluate", run]) == 0
    text = capsys.readouterr().out
    assert "rnn alone" in text and "Naive2" in text and "owa" in text
    # series it never saw: a long file of 2 series and a one-series CSV
    other = write_collection(tmp_path / "new.csv", n=2, seed=5)
    assert main(["predict", run, "--data", str(other), "--json"]) == 0
    pred = json.loads(capsys.readouterr().out)
    assert pred["ids"] == ["s0", "s1"] and np.array(pred["quantiles"]).shape == (2, 6, 5)
    one = tmp_path / "one.csv"
    one.write_text("time,value\n" + "\n".join(f"2001-{m:02d}-01,{10 + m}" for m in range(1, 13)) + "\n")
    assert main(["predict", run, "--data", str(one)]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 1 + 6
    assert main(["evaluate", run, "--data", "m3-monthly"]) == 2
    assert "a collection run is scored on its own test parts" in capsys.readouterr().err


def test_resume_after_the_selection_refits_to_the_same_weights(trained, tmp_path):
    root, path, _ = trained
    import shutil

    run = tmp_path / "run"
    shutil.copytree(root / "run", run)
    for name in (
        "best",
        "last",
        "metrics.csv",
        "test_metrics.json",
        "selection.json",
    ):  # stopped before refit
        target = run / name
        shutil.rmtree(target) if target.is_dir() else target.unlink(missing_ok=True)
    resumed = forecast.train(tiny_config(path), run, resume=True)
    a, b = (load_checkpoint(r / "best") for r in (root / "run", run))
    for key in a.state_dict:
        assert torch.equal(a.state_dict[key], b.state_dict[key]), key
    assert resumed.test_metrics["smape"] == pytest.approx(
        json.loads((root / "run" / "test_metrics.json").read_text())["smape"]
    )
    with pytest.raises(Exception, match=r"changed|differ"):  # a resumed run keeps its data and model
        forecast.train(tiny_config(path, lookbacks="1,2"), run, resume=True)


def test_plot_one_series_of_a_collection_run(trained, tmp_path, capsys):
    from rnnlab.cli import main

    root, _, _ = trained
    out = tmp_path / "s3.png"
    assert main(["plot", "forecast", str(root / "run"), "--series", "s3", "-o", str(out)]) == 0
    assert out.stat().st_size > 1000 and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["plot", "forecast", str(root / "run"), "--series", "nope", "-o", str(out)]) == 2
    assert "series id 'nope': not in" in capsys.readouterr().err


def test_export_says_a_collection_run_is_not_its_own_yet(trained, capsys, tmp_path):
    from rnnlab.cli import main

    root, _, _ = trained
    assert main(["export", str(root / "run"), "-o", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err
    assert "is a collection run" in err and "rnnlab predict RUN --data FILE" in err
    assert not (tmp_path / "m.onnx").exists()
