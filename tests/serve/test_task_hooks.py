"""A task brings its own serving and export: a task module that names ``SERVE_BACKEND`` and ``EXPORT``
(import strings) is served and exported with no line added to ``rnnlab.serve`` or ``rnnlab.export``.
This test file is the task module of a made-up task, ``echo``, registered in ``TASKS`` for the test."""

from __future__ import annotations

import json
import sys

import pytest
from serve_testing import ThreadServer, call

from rnnlab.serve.backends import Backend

SERVE_BACKEND = f"{__name__}:EchoBackend"  # what a task module writes
EXPORT = f"{__name__}:export_echo"


class EchoBackend(Backend):
    task, endpoint = "echo", "/v1/predict"

    def prepare(self, body):
        return None, body.texts

    def run_batch(self, key, items):
        return [{"text": t, "echo": t[::-1]} for t in items]


def export_echo(run_dir, output, dynamic):
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(b"not really onnx")
    return {"task": "echo", "model": output.name}


@pytest.fixture
def echo_run(tmp_path, monkeypatch):
    from rnnlab.tasks import TASKS, TaskEntry

    monkeypatch.setitem(TASKS, "echo", TaskEntry(__name__, "reverses texts (a test task)"))
    assert sys.modules[__name__].SERVE_BACKEND  # get_task imports this very module
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"task": "echo"}), encoding="utf-8")
    return run


def test_a_task_module_names_its_own_backend(echo_run):
    from rnnlab.serve.app import create_app

    server = ThreadServer(create_app(echo_run))
    try:
        status, _, body = call(server.port, "POST", "/v1/predict", {"texts": ["abc", "好的"]})
        info = call(server.port, "GET", "/info")[2]
        wrong = call(server.port, "POST", "/v1/forecast", {})
    finally:
        server.stop()
    assert status == 200 and body["predictions"] == [
        {"text": "abc", "echo": "cba"},
        {"text": "好的", "echo": "的好"},
    ]
    assert info["task"] == "echo" and info["endpoint"] == "/v1/predict"
    assert wrong[0] == 404 and "use /v1/predict" in wrong[2]["error"]["message"]


def test_a_task_module_names_its_own_export(echo_run, tmp_path):
    pytest.importorskip("onnx", reason="the export extra is not installed")
    from rnnlab.export import export_run

    out = tmp_path / "out" / "m.onnx"
    sidecar = export_run(echo_run, out)
    assert json.loads(sidecar.read_text(encoding="utf-8")) == {
        "format": "rnnlab-onnx", "version": 1, "task": "echo", "model": "m.onnx"
    }  # fmt: skip
    assert out.read_bytes() == b"not really onnx"
