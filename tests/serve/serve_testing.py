"""Helpers of the serve tests: tiny runs, servers on a free loopback port, a plain HTTP client."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from tiny_runs import TINY_SENTIMENT, TINY_TRANSLATE, write_reviews


def train_tiny(task: str, out: Path) -> Path:
    from rnnlab.cli import main

    if task == "sentiment":
        data = write_reviews(out.parent / f"{out.name}-reviews.csv")
        assert main(["train", "sentiment", "--data", str(data), "--out", str(out), *TINY_SENTIMENT]) == 0
    else:
        assert main(["train", "translate", "--out", str(out), *TINY_TRANSLATE]) == 0
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(port: int, method: str, path: str, body=None, headers=None, timeout: float = 30.0):
    """(status, headers, parsed JSON or text); ``body`` bytes go as they are, anything else as JSON."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        conn.request(method, path, body=data, headers={"Content-Type": "application/json", **(headers or {})})
        r = conn.getresponse()
        raw = r.read()
        kind = r.getheader("content-type", "")
        return r.status, dict(r.getheaders()), json.loads(raw) if "json" in kind else raw.decode()
    finally:
        conn.close()


def wait_healthy(port: int, timeout: float = 60.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {proc.stderr.read()[-2000:]}")
        try:
            if call(port, "GET", "/health", timeout=2)[0] == 200:
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"no healthy server on port {port} after {timeout} s")


class ProcessServer:
    """``rnnlab serve`` as a subprocess on a free loopback port; stopped by its own process id."""

    def __init__(self, run_dir: Path, *args: str) -> None:
        self.port = free_port()
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rnnlab", "serve", str(run_dir), "--port", str(self.port), *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )  # fmt: skip
        try:
            wait_healthy(self.port, proc=self.proc)
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log = self.log if hasattr(self, "log") else self.proc.stderr.read()
        self.proc.stdout.close()
        self.proc.stderr.close()
        return self.proc.returncode


class ThreadServer:
    """The app on uvicorn in a thread of this process (unit tests: the app object stays reachable)."""

    def __init__(self, app) -> None:
        import uvicorn

        self.port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        wait_healthy(self.port, timeout=30)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)
