"""The HTTP contract: /health, /info, /metrics, /v1/predict equal to ``rnnlab predict --json``, request ids,
every bad input a 4xx JSON error naming the problem."""

from __future__ import annotations

import json
import socket

import pytest
from serve_testing import ThreadServer, call

from rnnlab.cli import main

pytestmark = pytest.mark.usefixtures("one_thread")

TEXTS = ["这个东西很棒推荐", "太差了失望", "一般般", "好用满意还有"]


def _cli_predict(capsys, run_dir, texts, *extra) -> list[dict]:
    capsys.readouterr()
    assert main(["predict", str(run_dir), *texts, "--json", *extra]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_health_info_and_request_ids(sentiment_server, sentiment_run):
    status, headers, body = call(sentiment_server.port, "GET", "/health")
    assert (status, body) == (200, {"status": "ok"})
    assert len(headers["x-request-id"]) == 32
    status, headers, body = call(sentiment_server.port, "GET", "/info", headers={"X-Request-ID": "abc-1"})
    assert status == 200 and headers["x-request-id"] == "abc-1"  # the client's id comes back
    assert body["task"] == "sentiment" and body["labels"] == ["neg", "pos"]
    assert body["config"] == json.loads((sentiment_run / "config.json").read_text(encoding="utf-8"))
    assert body["limits"]["max_texts"] == 50
    # an id that is not short and printable is replaced, never echoed
    _, headers, _ = call(sentiment_server.port, "GET", "/health", headers={"X-Request-ID": "x" * 100})
    assert headers["x-request-id"] != "x" * 100


def test_predict_equals_the_cli_json_in_order(sentiment_server, sentiment_run, capsys):
    status, headers, body = call(sentiment_server.port, "POST", "/v1/predict", {"texts": TEXTS})
    assert status == 200 and headers["x-request-id"]
    expected = _cli_predict(capsys, sentiment_run, TEXTS)
    assert [p["text"] for p in body["predictions"]] == TEXTS
    for got, want in zip(body["predictions"], expected, strict=True):
        assert got.keys() == want.keys() and got["label"] == want["label"] and got["tokens"] == want["tokens"]
        assert got["probabilities"] == pytest.approx(want["probabilities"], abs=1e-6)
        assert got["attention"] == pytest.approx(want["attention"], abs=1e-6)


def test_metrics_count_requests_errors_and_batches(sentiment_server):
    call(sentiment_server.port, "POST", "/v1/predict", {"texts": ["很棒"]})
    call(sentiment_server.port, "POST", "/v1/predict", {"texts": []})
    status, headers, text = call(sentiment_server.port, "GET", "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain")
    lines = dict(line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))
    assert float(lines['rnnlab_requests_total{path="/v1/predict",status="200"}']) >= 1
    assert float(lines['rnnlab_errors_total{code="empty_texts"}']) >= 1
    assert float(lines["rnnlab_batch_size_count"]) >= 1
    assert float(lines['rnnlab_request_seconds_count{path="/v1/predict"}']) >= 2


BAD = [
    (b'{"texts": ["a"', 400, "malformed_json"),
    (b'{"texts": ["\xff\xfe"]}', 400, "not_utf8"),
    (b"[1, 2]", 422, "invalid_request"),
    (b'{"texts": "one text"}', 422, "invalid_request"),
    (b'{"texts": [1, 2]}', 422, "invalid_request"),
    (b'{"texts": ["a"], "extra": 1}', 422, "invalid_request"),
    (b'{"text": ["a"]}', 422, "invalid_request"),
    (b'{"texts": []}', 422, "empty_texts"),
    (b'{"texts": ["ok", "  "]}', 422, "empty_text"),
    (b'{"texts": ["ok"], "beam": 2}', 422, "invalid_option"),
    (json.dumps({"texts": ["长" * 2001]}).encode(), 413, "text_too_long"),
    (json.dumps({"texts": ["好"] * 51}).encode(), 413, "too_many_texts"),
    (b"", 400, "malformed_json"),
]


@pytest.mark.parametrize(("body", "status", "code"), BAD, ids=[b[2] + str(i) for i, b in enumerate(BAD)])
def test_bad_input_is_a_4xx_json_error(sentiment_server, body, status, code):
    got, headers, answer = call(sentiment_server.port, "POST", "/v1/predict", body)
    assert (got, answer["error"]["code"]) == (status, code), answer
    assert answer["error"]["message"] and headers["x-request-id"]


def test_huge_inputs_are_refused_by_the_size_limit(sentiment_server):
    # 2 M characters in one text, 100,000 texts: both over the 200 kB body limit of this server
    for body in ({"texts": ["差" * 2_000_000]}, {"texts": ["好"] * 100_000}):
        status, _, answer = call(sentiment_server.port, "POST", "/v1/predict", body)
        assert status == 413 and answer["error"]["code"] == "body_too_large"


def test_a_body_over_the_limit_without_content_length_is_refused(sentiment_server):
    """Chunked, its last chunk past the limit: the body is complete, so the 413 comes at once (it once
    waited for more of a body that had ended, until the drain bound: 120 s here, past the timeout)."""
    with socket.create_connection(("127.0.0.1", sentiment_server.port), timeout=20) as s:
        s.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"a" * 100_000
        for _ in range(3):
            s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        s.sendall(b"0\r\n\r\n")
        reply = b""
        while b"}}" not in reply:  # the headers, then the JSON body, maybe in separate packets
            part = s.recv(4096)
            assert part, reply
            reply += part
        reply = reply.decode()
    assert reply.startswith("HTTP/1.1 413") and "body_too_large" in reply


def test_wrong_routes_and_methods_are_json_errors(sentiment_server):
    assert call(sentiment_server.port, "GET", "/nowhere")[2]["error"]["code"] == "not_found"
    status, _, body = call(sentiment_server.port, "GET", "/v1/predict")
    assert status == 405 and body["error"]["code"] == "method_not_allowed"
    status, _, body = call(sentiment_server.port, "POST", "/v1/generate", {"prime": "a"})
    assert status == 404 and body["error"]["code"] == "wrong_task" and "sentiment" in body["error"]["message"]


def test_page_and_its_files_are_served(sentiment_server):
    status, headers, html = call(sentiment_server.port, "GET", "/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert "/static/app.js" in html and "http" not in html.replace("http-equiv", "")  # nothing from elsewhere
    for name, kind in (("app.js", "text/javascript"), ("style.css", "text/css")):
        status, headers, _ = call(sentiment_server.port, "GET", f"/static/{name}")
        assert status == 200 and headers["content-type"].startswith(kind)
    assert call(sentiment_server.port, "GET", "/static/../app.py")[0] == 404


def test_translator_predict_equals_the_cli_json_with_beam(translate_run, capsys):
    from rnnlab.serve.app import create_app

    texts = ["March 3, 2001", "12 jan 1999"]
    server = ThreadServer(create_app(translate_run))
    try:
        for beam in (None, 3):
            body = {"texts": texts} if beam is None else {"texts": texts, "beam": beam}
            status, _, answer = call(server.port, "POST", "/v1/predict", body)
            extra = [] if beam is None else ["--beam", str(beam)]
            assert status == 200 and answer["predictions"] == _cli_predict(
                capsys, translate_run, texts, *extra
            )
        status, _, answer = call(server.port, "POST", "/v1/predict", {"texts": texts, "beam": 0})
        assert (
            status == 422
            and answer["error"]["code"] == "invalid_option"
            and "beam" in answer["error"]["message"]
        )
        assert call(server.port, "GET", "/info")[2]["task"] == "translate"
    finally:
        server.stop()
