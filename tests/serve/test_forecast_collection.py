"""A forecast run trained across a collection, served: ``/v1/forecast`` forecasts the history each request
sends, on its own scale, with the combination the run kept (what ``rnnlab predict RUN --data FILE`` gives),
requests share the network's forward pass, and a history it cannot take is a 422 naming why."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from serve_testing import ThreadServer, call

from rnnlab.tasks import forecast, forecast_global
from tiny_series import write_collection

pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.xdist_group("serve_forecast_collection")]


@pytest.fixture(scope="module")
def collection_run(tmp_path_factory):
    import rnnlab.data.sources

    root = tmp_path_factory.mktemp("collection")
    cfg = forecast.Config()
    cfg.data.dataset = str(write_collection(root / "long.csv"))
    cfg.data.horizon, cfg.data.baselines, cfg.data.jobs = 6, "Naive2,SeasonalNaive,Theta", 1
    cfg.data.batch_size, cfg.data.steps_per_epoch = 16, 3
    cfg.model.hidden_size, cfg.model.ensemble = 4, 1
    cfg.train.epochs, cfg.train.progress = 2, False
    with pytest.MonkeyPatch.context() as mp:  # the statistical forecasts' cache: here, not the user's
        mp.setattr(rnnlab.data.sources, "cache_dir", lambda: root / "cache")
        forecast.train(cfg, root / "run")
    return root / "run"


def _histories() -> list[list[float]]:
    t = np.arange(40)
    return [list(100 + 30 * np.sin(2 * np.pi * t / 12) + 2 * t), list(5 + np.cos(t[:20] / 3))]


def test_a_history_is_forecast_with_the_kept_combination(collection_run):
    from rnnlab.serve.app import create_app

    model, scaler, meta = forecast_global.load_model(collection_run)
    histories = _histories()
    want = forecast_global.forecast_combined(model, meta, [np.asarray(h) for h in histories], True, False)
    server = ThreadServer(create_app(collection_run))
    try:
        info = call(server.port, "GET", "/info")[2]
        assert info["collection"]["series"] == 6 and info["horizon"] == 6
        with ThreadPoolExecutor(2) as pool:
            bodies = [{"history": histories[0], "last_time": "2003-04-01"}, {"history": histories[1]}]
            answers = list(pool.map(lambda b: call(server.port, "POST", "/v1/forecast", b), bodies))
    finally:
        server.stop()
    for (status, _, body), q in zip(answers, want, strict=True):
        assert status == 200, body
        assert body["combination"] == meta["selection"]["combination"] == info["combination"]
        np.testing.assert_allclose(body["forecast"], q[:, list(model.levels).index(0.5)], rtol=1e-6)
        np.testing.assert_allclose(body["quantiles"]["0.9"], q[:, list(model.levels).index(0.9)], rtol=1e-6)
    assert answers[0][2]["times"][:2] == ["2003-05", "2003-06"] and answers[1][2]["times"] is None


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ({}, "history: a run trained across a collection"),
        ({"history": [1.0, 2.0]}, "at least 3 values"),
        ({"history": [1.0, -2.0, 3.0, 4.0]}, "values > 0"),
    ],
)
def test_a_history_it_cannot_take_is_a_422(collection_run, body, names):
    from rnnlab.serve.app import create_app

    server = ThreadServer(create_app(collection_run))
    try:
        status, _, answer = call(server.port, "POST", "/v1/forecast", body)
    finally:
        server.stop()
    assert status == 422 and names in answer["error"]["message"]


def test_the_kept_combination_moves_every_quantile_onto_its_point(collection_run):
    """With Theta in the combination, the median is the mean of the network's median and Theta's forecast
    of the same history, and every quantile moves with it (the interval keeps its width)."""
    from rnnlab.models.stat_forecasters import forecast_collection

    model, scaler, meta = forecast_global.load_model(collection_run)
    histories = [np.asarray(h) for h in _histories()]
    meta = {**meta, "selection": {**meta["selection"], "combination": "rnn+Theta"}}
    alone = forecast_global.forecast_series(model, histories, scaler.log)
    combined = forecast_global.forecast_combined(model, meta, histories, scaler.log, cache=False)
    theta = forecast_collection(histories, 6, meta["collection"]["period"], models=("Theta",), cache=False)
    m = list(model.levels).index(0.5)
    for a, c, t in zip(alone, combined, theta["Theta"]["mean"], strict=True):
        np.testing.assert_allclose(c[:, m], (a[:, m] + t) / 2, rtol=1e-9)
        np.testing.assert_allclose(c - c[:, m : m + 1], a - a[:, m : m + 1], atol=1e-9)
