"""``rnnlab serve`` as a process: clients that go away mid-request harm nobody else; SIGTERM lets the
requests in flight finish, then the process exits cleanly (one server process: its start-up is the cost)."""

from __future__ import annotations

import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from serve_testing import ProcessServer, call

PARTIAL = [
    b'POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"texts": [',  # half a body
    b'POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 23\r\n\r\n{"texts": ["very good"]}',  # no wait
    b"POST /v1/predict HTTP/1.1\r\nHost: x\r\n",  # half the headers
]


def test_disconnects_are_harmless_and_sigterm_finishes_requests_in_flight(sentiment_run):
    # a long batch wait keeps the requests in the queue when the signal comes
    server = ProcessServer(sentiment_run, "--max-wait-ms", "1500", "--max-batch-size", "64")
    try:
        for partial in PARTIAL:
            with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
                s.sendall(partial)  # then gone, before any answer
        status, _, body = call(server.port, "POST", "/v1/predict", {"texts": ["太差了"]})
        assert status == 200 and body["predictions"][0]["text"] == "太差了" and server.proc.poll() is None

        with ThreadPoolExecutor(8) as pool:
            texts = [f"很棒{i}" for i in range(8)]
            futures = [pool.submit(call, server.port, "POST", "/v1/predict", {"texts": [t]}) for t in texts]
            time.sleep(0.5)  # all sent, none answered yet
            assert not any(f.done() for f in futures)
            code = server.stop()
            answers = [f.result() for f in futures]
    finally:
        server.stop()
    assert [a[0] for a in answers] == [200] * 8
    assert [a[2]["predictions"][0]["text"] for a in answers] == texts
    assert code == 0
    assert "Shutting down" in server.log and "Traceback" not in server.log
    with pytest.raises(OSError):  # the port is closed
        call(server.port, "GET", "/health", timeout=2)
