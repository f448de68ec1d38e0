"""``rnnlab serve RUN --workers 2``: two processes answer on one port, ``/metrics`` counts the requests of
both, and SIGTERM stops them all cleanly (one server, stopped by its own process id)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from serve_testing import ProcessServer, call


def _counts(metrics: str) -> dict[str, float]:
    return {
        key: float(value)
        for key, value in (line.rsplit(" ", 1) for line in metrics.splitlines() if line and line[0] != "#")
    }


def test_two_workers_serve_and_metrics_sum_them(sentiment_run):
    server = ProcessServer(sentiment_run, "--workers", "2")
    try:
        pids: set[int] = set()
        asked = 0
        deadline = time.monotonic() + 60
        with ThreadPoolExecutor(8) as pool:  # fresh connections, several at once: both workers take some
            while len(pids) < 2 and time.monotonic() < deadline:
                answers = list(pool.map(lambda _: call(server.port, "GET", "/info"), range(16)))
                pids |= {a[2]["pid"] for a in answers}
                asked += len(answers)
            assert all(a[2]["workers"] == 2 for a in answers)
            n = 24
            texts = [f"很好{i}" for i in range(n)]
            body = [{"texts": [t]} for t in texts]
            replies = list(pool.map(lambda b: call(server.port, "POST", "/v1/predict", b), body))
        assert len(pids) == 2 and server.proc.pid not in pids, pids
        assert [r[0] for r in replies] == [200] * n
        assert [r[2]["predictions"][0]["text"] for r in replies] == texts
        # every worker's requests, whichever worker answered /metrics (both answered /info); a request is
        # counted just after its answer is sent, so the last ones may take a moment to show
        want = {'rnnlab_requests_total{path="/v1/predict",status="200"}': n, "rnnlab_batch_requests_sum": n}
        for _ in range(50):
            counts = _counts(call(server.port, "GET", "/metrics")[2])
            if all(counts.get(k) == v for k, v in want.items()):
                break
            time.sleep(0.1)
        assert counts['rnnlab_requests_total{path="/info",status="200"}'] == asked
        assert counts['rnnlab_requests_total{path="/v1/predict",status="200"}'] == n
        assert counts["rnnlab_batch_requests_sum"] == n
        code = server.stop()
    finally:
        server.stop()
    assert code == 0 and "Traceback" not in server.log
    assert server.log.count("Application startup complete") == 2  # one per worker
    with pytest.raises(OSError):  # the port is closed
        call(server.port, "GET", "/health", timeout=2)


def test_workers_below_one_is_a_one_line_error(sentiment_run, capsys):
    from rnnlab.cli import main

    assert main(["serve", str(sentiment_run), "--workers", "0"]) == 2
    assert capsys.readouterr().err == "rnnlab: error: --workers: expected a number >= 1, received 0\n"
