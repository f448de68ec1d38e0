"""The character LM and forecaster endpoints: /v1/generate (whole text, or server-sent events that add up
to the same text as ``Sampler.stream`` for the same seed) and /v1/forecast (equal to
``Forecaster.predict``), each bad option a 4xx JSON error."""

from __future__ import annotations

import http.client
import json
import math
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from serve_testing import ThreadServer, call

from benchmark_loading import load_benchmark
from rnnlab.cli import main

pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.xdist_group("serve_generate_forecast")]

NAMES = [("Kent", "king"), ("Lear", "storm"), ("Fool", "egg")] * 12
TEXT = "".join(
    f"{name}.\nI have {n} (good) reasons, my lord; the {word} is old.\n\n"
    for n, (name, word) in enumerate(NAMES)
)
CHARLM = ["data.batch_size=2", "data.bptt=16", "data.steps_per_epoch=2", "data.eval_batch_size=2",
          "model.hidden_size=16", "model.embedding_dim=8", "train.epochs=1", "train.warmup_steps=0",
          "train.progress=false"]  # fmt: skip
FORECAST = [
    "model.cell=gru",
    "model.hidden_size=4",
    "model.ensemble=2",
    "train.epochs=1",
    "train.progress=false",
]
FORECAST += ["data.steps_per_epoch=2", "data.horizon=12"]


@pytest.fixture(scope="module")
def charlm_server(tmp_path_factory):
    from rnnlab.serve.app import create_app

    folder = tmp_path_factory.mktemp("charlm")
    (folder / "text.txt").write_text(TEXT, encoding="utf-8")
    assert (
        main(["train", "charlm", "--data", str(folder / "text.txt"), "--out", str(folder / "run"), *CHARLM])
        == 0
    )
    server = ThreadServer(create_app(folder / "run"))
    server.run_dir = folder / "run"
    yield server
    server.stop()


@pytest.fixture(scope="module")
def forecast_server(tmp_path_factory):
    from rnnlab.serve.app import create_app

    folder = tmp_path_factory.mktemp("forecast")
    rows = [
        f"{2000 + i // 12}-{i % 12 + 1:02d},{100 + 0.8 * i + 12 * math.sin(2 * math.pi * i / 12):.4f}"
        for i in range(72)
    ]
    (folder / "sales.csv").write_text("month,sales\n" + "\n".join(rows) + "\n", encoding="utf-8")
    assert (
        main(
            [
                "train",
                "forecast",
                "--data",
                str(folder / "sales.csv"),
                "--out",
                str(folder / "run"),
                *FORECAST,
            ]
        )
        == 0
    )
    server = ThreadServer(create_app(folder / "run"))
    server.run_dir = folder / "run"
    yield server
    server.stop()


def _events(port: int, body: dict) -> tuple[str, list[str]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("POST", "/v1/generate", body=json.dumps(body), headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    assert r.status == 200 and r.getheader("content-type").startswith("text/event-stream")
    raw = r.read().decode()
    conn.close()
    events = [e for e in raw.split("\n\n") if e]
    return raw, events


def test_generate_equals_the_sampler_whole_and_streamed(charlm_server):
    from rnnlab.inference.sampler import Sampler

    sampler = Sampler.from_checkpoint(charlm_server.run_dir)
    options = {"prime": "Kent", "length": 40, "temperature": 0.8, "top_k": 5, "top_p": 0.9, "seed": 3}
    want = "".join(sampler.stream(**options))
    status, headers, body = call(charlm_server.port, "POST", "/v1/generate", options)
    assert status == 200 and body == {"prime": "Kent", "text": want} and headers["x-request-id"]
    _, events = _events(charlm_server.port, {**options, "stream": True})
    assert events[-1] == "event: done\ndata: {}"
    chars = [json.loads(e.removeprefix("data: "))["text"] for e in events[:-1]]
    assert len(chars) == 40 and "".join(chars) == want  # one event per character, as sampled
    assert call(charlm_server.port, "GET", "/info")[2]["endpoint"] == "/v1/generate"


@pytest.mark.parametrize(
    ("body", "status", "code", "names"),
    [
        ({"length": 0}, 422, "invalid_option", "length"),
        ({"length": 10**6}, 422, "invalid_option", "length"),
        ({"temperature": -1}, 422, "invalid_option", "temperature"),
        ({"top_p": 1.5}, 422, "invalid_option", "top_p"),
        ({"prime": "ΩΩΩ"}, 422, "invalid_option", "prime"),
        ({"length": "ten"}, 422, "invalid_request", "length"),
        ({"prime": "a" * 20_000}, 413, "text_too_long", "prime"),
    ],
)
def test_bad_generate_options_are_4xx(charlm_server, body, status, code, names):
    got, _, answer = call(charlm_server.port, "POST", "/v1/generate", body)
    assert (got, answer["error"]["code"]) == (status, code) and names in answer["error"]["message"]


def test_forecast_equals_the_forecaster(forecast_server):
    from rnnlab.inference.forecaster import Forecaster

    forecaster = Forecaster.from_checkpoint(forecast_server.run_dir)
    history = [float(v) for v in forecaster.tail * 1.1]
    for request, want in (({}, forecaster.predict()), ({"history": history}, forecaster.predict(history))):
        status, _, body = call(forecast_server.port, "POST", "/v1/forecast", request)
        assert status == 200 and body["times"] == want["times"] and body["horizon"] == want["horizon"] == 12
        assert body["forecast"] == pytest.approx(want["forecast"])
        assert body["quantiles"].keys() == want["quantiles"].keys()
        for level, values in want["quantiles"].items():
            assert body["quantiles"][level] == pytest.approx(values)
    assert body["forecast"] != pytest.approx(forecaster.predict()["forecast"])  # the history was read
    info = call(forecast_server.port, "GET", "/info")[2]
    assert info["task"] == "forecast" and info["horizon"] == 12 and len(info["tail"]) == info["window"]


@pytest.mark.parametrize(
    ("body", "code"),
    [({"history": [1.0, 2.0]}, "invalid_option"), ({"history": ["a"]}, "invalid_request"),
     ({"history": [1.0] * 100_001}, "too_many_values"), ({"history": 5}, "invalid_request")],
)  # fmt: skip
def test_bad_forecast_input_is_4xx(forecast_server, body, code):
    status, _, answer = call(forecast_server.port, "POST", "/v1/forecast", body)
    assert 400 <= status < 500 and answer["error"]["code"] == code and "history" in answer["error"]["message"]


def test_forecasts_share_a_forward_pass_and_a_bad_one_fails_alone(forecast_server):
    from rnnlab.inference.forecaster import Forecaster
    from rnnlab.serve.app import create_app
    from rnnlab.serve.limits import ServeLimits

    forecaster = Forecaster.from_checkpoint(forecast_server.run_dir)
    histories = [[float(v) for v in forecaster.tail * (1 + k / 10)] for k in range(6)]
    bodies = [{"history": h} for h in histories] + [{"history": [1.0, 2.0]}, {}]
    server = ThreadServer(create_app(forecast_server.run_dir, ServeLimits(max_wait_ms=300)))
    try:
        with ThreadPoolExecutor(len(bodies)) as pool:
            answers = list(pool.map(lambda b: call(server.port, "POST", "/v1/forecast", b), bodies))
        metrics = call(server.port, "GET", "/metrics")[2]
    finally:
        server.stop()
    for history, (status, _, body) in zip(histories, answers[:6], strict=True):
        want = forecaster.predict(history)
        assert status == 200 and body["times"] == want["times"]
        assert body["forecast"] == pytest.approx(want["forecast"], rel=1e-5)
    assert answers[6][0] == 422 and answers[6][2]["error"]["code"] == "invalid_option"
    default = forecaster.predict()["forecast"]  # no history: after the run's own series
    assert answers[7][0] == 200 and answers[7][2]["forecast"] == pytest.approx(default)
    counts = dict(line.rsplit(" ", 1) for line in metrics.splitlines() if line and not line.startswith("#"))
    jobs, passes = float(counts["rnnlab_batch_requests_sum"]), float(counts["rnnlab_batch_requests_count"])
    assert jobs == 7 and passes < 7  # the seven good forecasts shared forward passes


def _generate(port: int, body: dict) -> str:
    """The text of one /v1/generate request, whole or from its events."""
    if not body.get("stream"):
        status, _, answer = call(port, "POST", "/v1/generate", body)
        assert status == 200, answer
        return answer["text"]
    _, events = _events(port, body)
    assert events[-1] == "event: done\ndata: {}"
    return "".join(json.loads(e.removeprefix("data: "))["text"] for e in events[:-1])


def test_concurrent_generates_share_forward_passes_and_equal_the_sampler(charlm_server):
    from rnnlab.inference.sampler import Sampler

    sampler = Sampler.from_checkpoint(charlm_server.run_dir)
    bodies = [
        {"prime": ["Kent", "Lear", "F", ""][i % 4], "length": 30 + 7 * i, "temperature": 0.9, "seed": i,
         "top_k": [None, 5][i % 2], "stream": i % 3 == 0}
        for i in range(10)
    ]  # fmt: skip
    metrics = call(charlm_server.port, "GET", "/metrics")[2]
    before = _counts(metrics)
    with ThreadPoolExecutor(10) as pool:
        texts = list(pool.map(lambda b: _generate(charlm_server.port, b), bodies))
    for body, text in zip(bodies, texts, strict=True):
        options = {k: v for k, v in body.items() if k != "stream"}
        assert text == "".join(sampler.stream(**options))
    after = _counts(call(charlm_server.port, "GET", "/metrics")[2])
    rows = after["rnnlab_batch_size_sum"] - before.get("rnnlab_batch_size_sum", 0)
    passes = after["rnnlab_batch_size_count"] - before.get("rnnlab_batch_size_count", 0)
    assert rows == sum(b["length"] for b in bodies)  # one row-step per character drawn
    assert passes < rows  # some forward passes drew for several requests at once


def _counts(metrics: str) -> dict[str, float]:
    lines = (line.rsplit(" ", 1) for line in metrics.splitlines() if line and line[0] != "#")
    return {key: float(value) for key, value in lines}


def test_a_stream_whose_client_leaves_stops_being_sampled(charlm_server):
    from rnnlab.serve.app import create_app
    from rnnlab.serve.limits import ServeLimits

    app = create_app(charlm_server.run_dir, ServeLimits(max_generate_length=1_000_000))
    server = ThreadServer(app)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        body = json.dumps({"prime": "Kent", "length": 1_000_000, "stream": True})
        conn.request("POST", "/v1/generate", body=body, headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        assert r.status == 200 and r.readline().startswith(b"data: ")
        conn.sock.close()  # the client goes away after one character
        conn.close()
        streams = app.fastapi.state.streams
        deadline = time.monotonic() + 20
        while len(streams.batch) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(streams.batch) == 0  # long before its million characters
        assert call(server.port, "POST", "/v1/generate", {"prime": "Kent", "length": 5})[0] == 200
    finally:
        server.stop()


@pytest.mark.parametrize("which", ["charlm_server", "forecast_server"])
def test_the_load_benchmark_workload_of_each_task(which, request):
    """benchmarks/serve_load.py's requests for a run, built from its training part: every good one gets
    its 200 (a stream every character it asked for), every bad one the 4xx the benchmark expects."""
    bench = load_benchmark("serve_load")
    server = request.getfixturevalue(which)
    work = bench.run_workload(server.run_dir, n=40)
    if work.task == "charlm":  # shorter streams (the benchmark asks for 200 characters)
        work.good = [
            (body.replace(b'"length": 200', b'"length": 20'), want and 20) for body, want in work.good
        ]
    bad = len(work.bad)
    r = bench._round(server.port, work, clients=4, requests=2 * bad * 2, bad_every=2)
    assert (r["good"], r["bad"]) == (2 * bad, 2 * bad)  # every bad body twice
    assert (r["good_errors"], r["bad_not_4xx"], r["dropped"]) == (0, 0, 0), r


def test_a_backward_lm_answers_what_precedes_the_prime(tmp_path):
    """model.reverse=true: the whole answer reads left to right and ends where the prime begins (as
    ``rnnlab sample`` prints it); the stream's characters come in the order drawn, last first."""
    from rnnlab.inference.sampler import Sampler
    from rnnlab.serve.app import create_app

    (tmp_path / "text.txt").write_text(TEXT, encoding="utf-8")
    run = tmp_path / "run"
    args = ["train", "charlm", "--data", str(tmp_path / "text.txt"), "--out", str(run), "model.reverse=true"]
    assert main([*args, *CHARLM]) == 0
    sampler = Sampler.from_checkpoint(run)
    options = {"prime": "my lord", "length": 25, "temperature": 0.8, "seed": 4}
    drawn = "".join(sampler.stream(**{**options, "prime": options["prime"][::-1]}))
    server = ThreadServer(create_app(run))
    try:
        status, _, body = call(server.port, "POST", "/v1/generate", options)
        assert status == 200 and body == {"prime": "my lord", "text": drawn[::-1]}
        _, events = _events(server.port, {**options, "stream": True})
        assert "".join(json.loads(e.removeprefix("data: "))["text"] for e in events[:-1]) == drawn
        assert call(server.port, "GET", "/info")[2]["reverse"] is True
    finally:
        server.stop()
