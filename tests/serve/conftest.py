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

    app = create_app(sentiment_run, ServeLimits(max_texts=50, max_text_chars=2000, max_body_bytes=200_000))
    server = ThreadServer(app)
    server.app = app
    yield server
    server.stop()
