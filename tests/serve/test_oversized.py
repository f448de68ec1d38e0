"""Every over-limit request gets its JSON 413, on every ordinary client: urllib (which writes its whole body
before it reads, and asks for ``Connection: close``), requests, httpx and curl (with and without ``Expect:
100-continue``); bodies from just over the limit to 50 MB; a slow sender; the server's memory stays bounded
while it discards what it does not want (one ``rnnlab serve`` process, stopped by its own id)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from serve_testing import ProcessServer, call

LIMIT = 1 << 20  # the default max_body_bytes
SIZES = {"just-over": LIMIT + 1, "12MB": 12_000_000, "50MB": 50_000_000}


def _body(size: int) -> bytes:
    """A JSON body of exactly ``size`` bytes: one long review (what a user pasting a book would send)."""
    head, tail = b'{"texts": ["', b'"]}'
    return head + b"a" * (size - len(head) - len(tail)) + tail


@pytest.fixture(scope="module")
def server(sentiment_run):
    s = ProcessServer(sentiment_run)
    yield s
    s.stop()


def _url(server) -> str:
    return f"http://127.0.0.1:{server.port}/v1/predict"


def _check(status: int, text: str | bytes) -> None:
    answer = json.loads(text)
    assert status == 413, (status, answer)
    assert answer["error"]["code"] == "body_too_large" and str(LIMIT) in answer["error"]["message"]


def _urllib(server, body: bytes) -> tuple[int, bytes]:
    request = urllib.request.Request(_url(server), data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _requests(server, body: bytes) -> tuple[int, bytes]:
    requests = pytest.importorskip("requests")
    r = requests.post(_url(server), data=body, headers={"Content-Type": "application/json"}, timeout=60)
    return r.status_code, r.content


def _httpx(server, body: bytes) -> tuple[int, bytes]:
    httpx = pytest.importorskip("httpx")
    r = httpx.post(_url(server), content=body, headers={"Content-Type": "application/json"}, timeout=60)
    return r.status_code, r.content


CLIENTS = {"urllib": _urllib, "requests": _requests, "httpx": _httpx}


@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
@pytest.mark.parametrize("client", CLIENTS.values(), ids=CLIENTS.keys())
def test_python_clients_receive_the_json_413(server, client, size):
    _check(*client(server, _body(size)))
    assert call(server.port, "GET", "/health")[0] == 200  # and the server still serves


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed here")
@pytest.mark.parametrize("expect", ["100-continue", "none"])
@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
def test_curl_receives_the_json_413(server, tmp_path, size, expect):
    path = tmp_path / "body.json"
    path.write_bytes(_body(size))
    # curl asks for 100-continue by itself on big bodies; "Expect:" (empty) makes it send the whole body first
    extra = [] if expect == "100-continue" else ["-H", "Expect:"]
    out = subprocess.run(
        ["curl", "-sS", "-o", "-", "-w", "\n%{http_code}", "--data-binary", f"@{path}",
         "-H", "Content-Type: application/json", *extra, _url(server)],
        capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    text, _, status = out.stdout.rpartition(b"\n")
    _check(int(status), text)


def _read_reply(sock: socket.socket) -> bytes:
    reply = b""
    while part := sock.recv(65536):
        reply += part
    return reply


def test_a_slow_sender_that_writes_before_it_reads_gets_the_413(server):
    # urllib's way (Connection: close, the whole body, then read), but in 40 pieces a few ms apart
    body = _body(2 * LIMIT)
    head = (
        f"POST /v1/predict HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as s:
        s.sendall(head)
        step = len(body) // 40 + 1
        for i in range(0, len(body), step):
            s.sendall(body[i : i + step])
            time.sleep(0.02)
        reply = _read_reply(s)
    status_line, _, rest = reply.partition(b"\r\n")
    headers, _, payload = rest.partition(b"\r\n\r\n")
    assert status_line.startswith(b"HTTP/1.1 413") and b"connection: close" in headers.lower()
    _check(413, payload)


def test_a_chunked_body_over_the_limit_written_whole_gets_the_413(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as s:
        s.sendall(
            b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b"a" * 1_000_000
        for _ in range(5):
            s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        s.sendall(b"0\r\n\r\n")
        reply = _read_reply(s)
    assert reply.startswith(b"HTTP/1.1 413")
    answer = json.loads(reply.partition(b"\r\n\r\n")[2])
    assert answer["error"]["code"] == "body_too_large"


def _peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM line")


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="needs Linux's /proc")
def test_discarding_50MB_keeps_the_server_memory_bounded(server):
    _check(*_urllib(server, _body(SIZES["just-over"])))  # the path warmed up
    before = _peak_rss_kib(server.proc.pid)
    for _ in range(2):
        _check(*_urllib(server, _body(SIZES["50MB"])))
    grown_mib = (_peak_rss_kib(server.proc.pid) - before) / 1024
    assert grown_mib < 16, f"the server's peak memory grew by {grown_mib:.1f} MiB while discarding 100 MB"
