from __future__ import annotations

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed (pip install 'rnnlab[serve]')")

from serve_testing import ThreadServer, train_tiny  # noqa: E402


@pytest.fixture(scope="session")
def sentiment_run(tmp_path_factory):
    return train_tiny("sentiment", tmp_path_factory.mktemp("serve") / "zh")


@pytest.fixture(scope="session")
def translate_run(tmp_path_factory):
    return train_tiny("translate", tmp_path_factory.mktemp("serve") / "dates")


@pytest.fixture(scope="module")
def sentiment_server(sentiment_run):
    from rnnlab.serve.app import create_app
    from rnnlab.serve.limits import ServeLimits

    # a long drain bound: a 413 that waited for it (a body already complete) would show as a timeout
    limits = ServeLimits(max_texts=50, max_text_chars=2000, max_body_bytes=200_000, max_drain_ms=120_000)
    app = create_app(sentiment_run, limits)
    server = ThreadServer(app)
    server.app = app
    yield server
    server.stop()
