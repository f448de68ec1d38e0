"""A bounded load test on the loopback: 16 concurrent keep-alive clients x 240 requests, a tenth of them
bad, through ``benchmarks/serve_load.py``'s own round: no error on a good request, its 4xx on every bad one,
no dropped connection, and the batches of the worker really held several requests."""

from __future__ import annotations

import pytest
from serve_testing import ThreadServer, call

from benchmark_loading import load_benchmark

pytestmark = pytest.mark.usefixtures("one_thread")


def test_concurrent_clients_with_bad_requests(sentiment_run, tmp_path):
    from rnnlab.serve.app import create_app

    bench = load_benchmark("serve_load")
    texts = bench._reviews(tmp_path / "texts.csv", n=50, seed=1)
    server = ThreadServer(create_app(sentiment_run))
    try:
        r = bench._round(server.port, texts, clients=16, requests=240, bad_every=10)
        metrics = call(server.port, "GET", "/metrics")[2]
    finally:
        server.stop()
    assert (r["good"], r["bad"]) == (216, 24)
    assert (r["good_errors"], r["bad_not_4xx"], r["dropped"]) == (0, 0, 0)
    assert r["wall_s"] < 60
    counts = dict(line.rsplit(" ", 1) for line in metrics.splitlines() if line and not line.startswith("#"))
    jobs, passes = float(counts["rnnlab_batch_requests_sum"]), float(counts["rnnlab_batch_requests_count"])
    assert jobs == 216 and passes < jobs  # some forward passes served several requests
