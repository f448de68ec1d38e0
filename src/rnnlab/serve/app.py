"""The ASGI app: ``create_app(run_dir, limits)``; ``rnnlab serve`` runs it on uvicorn.

Routes: ``GET /`` (the page), ``/static/*``, ``GET /health``, ``GET /info``, ``GET /metrics`` (Prometheus
text), ``POST /v1/predict`` (classifier, translator), ``POST /v1/generate`` (character LM, server-sent
events with ``"stream": true``), ``POST /v1/forecast``. Every response carries ``X-Request-ID`` (the
client's, when it sends a short printable one). Every error is a JSON ``{"error": {"code", "message"}}``:

===================  ======  =======================================================================
code                 status  meaning
===================  ======  =======================================================================
body_too_large       413     the body is over ``max_body_bytes`` (read and discarded first, see below)
not_utf8             400     the body is not UTF-8
malformed_json       400     the body is not JSON
invalid_request      422     wrong field names or types (the message names the field)
empty_texts          422     ``texts`` is an empty list
empty_text           422     a text is empty or only whitespace
too_many_texts       413     more than ``max_texts`` texts
text_too_long        413     a text over ``max_text_chars`` characters
invalid_option       422     an option out of range (beam, length, temperature, history, ...)
wrong_task           404     an endpoint of another task (the message names the run's)
not_found            404     no such route; method_not_allowed 405
client_disconnected  400     the client left before sending its whole body (nobody reads this answer)
overloaded           503     the request queue is full; retry later
internal             500     a bug (never from the input)
===================  ======  =======================================================================

An over-limit body is read and thrown away (at most ``max_drain_bytes``, for at most ``max_drain_ms``,
one chunk in memory at a time) before its 413 is sent with ``Connection: close``: a client that writes
its whole body before reading (Python's urllib) would otherwise find the connection reset and never see
the answer. A client that asked ``Expect: 100-continue`` (curl, for big bodies) gets the 413 at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import time
import uuid
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from rnnlab.serve.backends import Backend, load_backend
from rnnlab.serve.batching import MicroBatcher, Overloaded
from rnnlab.serve.limits import ServeLimits
from rnnlab.serve.schemas import ForecastRequest, GenerateRequest, PredictRequest

__all__ = ["ApiError", "create_app"]

_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_STATIC = resources.files("rnnlab.serve") / "static"


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


class _Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("rnnlab_requests", "HTTP requests", ["path", "status"], registry=r)
        self.errors = Counter("rnnlab_errors", "error responses by code", ["code"], registry=r)
        self.latency = Histogram(
            "rnnlab_request_seconds",
            "request latency",
            ["path"],
            registry=r,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.batch = Histogram(
            "rnnlab_batch_size",
            "items per forward pass",
            registry=r,
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
        )
        self.batch_jobs = Histogram(
            "rnnlab_batch_requests", "requests per forward pass", registry=r, buckets=(1, 2, 4, 8, 16, 32, 64)
        )

    def exposition(self) -> bytes:
        """The Prometheus text; with several worker processes (prometheus_client's multiprocess mode, see
        :mod:`rnnlab.serve.workers`) the sums over all of them, read from their files."""
        folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if not folder:
            return generate_latest(self.registry)
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=folder)
        return generate_latest(registry)

    def on_batch(self, n_items: int, n_jobs: int) -> None:
        self.batch.observe(n_items)
        self.batch_jobs.observe(n_jobs)


class _RequestIds:
    """Pure ASGI middleware (it passes streamed bodies through untouched): the request id header on every
    response, and the request counter and latency histogram."""

    def __init__(self, app, metrics: _Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        given = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        rid = given if _ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        start, status = time.perf_counter(), [500]
        route = scope["path"] if scope["path"] in _ROUTES else "other"

        async def send_with_id(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self.metrics.requests.labels(route, str(status[0])).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - start)


_ROUTES = {"/", "/health", "/info", "/metrics", "/v1/predict", "/v1/generate", "/v1/forecast"}


def _too_large(message: str) -> ApiError:
    # Connection: close: the rest of an undrained body must not be read as the next request.
    return ApiError(413, "body_too_large", message, headers={"Connection": "close"})


async def _drain(request: Request, limits: ServeLimits, received: int) -> None:
    """Read and discard the rest of an over-limit body, up to ``max_drain_bytes`` in all and for at most
    ``max_drain_ms``, one chunk in memory at a time (the server stops reading from the socket while a chunk
    waits, so memory stays bounded).

    Why: a client that writes its whole body before it reads (Python's ``urllib.request``, which also
    asks for ``Connection: close``) would otherwise see the server close with unread data in its socket,
    which the kernel answers with a reset that destroys the 413 before the client reads it. A client that
    sent ``Expect: 100-continue`` (curl, for big bodies) waits for our answer before sending: nothing to
    drain, and reading would invite the body in. Past either bound the answer is sent anyway (a client
    that writes before it reads may then miss it: that is the price of bounding the drain).
    """
    if request.headers.get("expect", "").lower() == "100-continue" and received == 0:
        return
    size = received
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(limits.max_drain_ms / 1000):
            while size <= limits.max_drain_bytes:
                message = await request.receive()
                if message["type"] != "http.request":  # http.disconnect: the client has gone
                    return
                size += len(message.get("body", b""))
                if not message.get("more_body", False):
                    return


async def _body(request: Request, limits: ServeLimits, model):
    """The body parsed into ``model``; ApiError for a body too large, not UTF-8, not JSON, wrong types."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limits.max_body_bytes:
        await _drain(request, limits, 0)
        raise _too_large(f"body: {declared} bytes; the limit is {limits.max_body_bytes}")
    chunks, size, more = [], 0, True
    try:
        while more:  # the ASGI messages themselves: whether more follows decides if there is a rest to drain
            message = await request.receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnect()
            chunk, more = message.get("body", b""), message.get("more_body", False)
            size += len(chunk)
            if size > limits.max_body_bytes:
                if more:
                    await _drain(request, limits, size)
                raise _too_large(f"body: over {limits.max_body_bytes} bytes (the limit)")
            chunks.append(chunk)
    except ClientDisconnect:  # nobody will read the answer; counted as an error, no traceback
        raise ApiError(400, "client_disconnected", f"body: the client left after {size} bytes") from None
    try:
        text = b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError as e:
        raise ApiError(400, "not_utf8", f"body: expected UTF-8, invalid byte at offset {e.start}") from None
    try:
        data = json.loads(text)
    except ValueError as e:
        raise ApiError(400, "malformed_json", f"body: expected JSON, {e}") from None
    if not isinstance(data, dict):
        raise ApiError(
            422, "invalid_request", f"body: expected a JSON object, received {type(data).__name__}"
        )
    try:
        return model.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        got = repr(first.get("input"))[:80]
        raise ApiError(422, "invalid_request", f"{where}: {first['msg']}, received {got}") from None


def _check_texts(texts: list[str], limits: ServeLimits) -> None:
    if not texts:
        raise ApiError(422, "empty_texts", "texts: expected a non-empty list of strings, received []")
    if len(texts) > limits.max_texts:
        raise ApiError(413, "too_many_texts", f"texts: {len(texts)} texts; the limit is {limits.max_texts}")
    for i, text in enumerate(texts):
        if len(text) > limits.max_text_chars:
            raise ApiError(
                413,
                "text_too_long",
                f"texts[{i}]: {len(text)} characters; the limit is {limits.max_text_chars}",
            )
        if not text.strip():
            raise ApiError(422, "empty_text", f"texts[{i}]: empty or whitespace-only text; nothing to read")


def create_app(run_dir: str | Path | Backend, limits: ServeLimits | None = None, workers: int = 1) -> FastAPI:
    """The app serving ``run_dir`` (loaded now, once), or an already loaded backend; ``workers``: how many
    processes serve it (see :mod:`rnnlab.serve.workers`), reported by ``/info``."""
    limits = limits or ServeLimits()
    backend = run_dir if isinstance(run_dir, Backend) else load_backend(run_dir)
    metrics = _Metrics()
    state: dict = {}

    @asynccontextmanager
    async def lifespan(app):
        state["batcher"] = MicroBatcher(
            backend.run_batch, limits.max_batch_size, limits.max_wait_ms, limits.max_queue, metrics.on_batch
        )
        state["streams"] = app.state.streams = backend.scheduler(limits, lambda n: metrics.on_batch(n, n))
        yield
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, state["batcher"].stop)
        if state["streams"] is not None:
            await loop.run_in_executor(None, state["streams"].stop)

    app = FastAPI(title="rnnlab serve", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.backend, app.state.limits, app.state.metrics = backend, limits, metrics

    @app.exception_handler(ApiError)
    async def api_error(request, exc: ApiError):
        metrics.errors.labels(exc.code).inc()
        return _error(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(HTTPException)
    async def http_error(request, exc: HTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        metrics.errors.labels(code).inc()
        return _error(exc.status_code, code, f"{request.method} {request.url.path}: {exc.detail}")

    @app.exception_handler(RequestValidationError)
    async def validation_error(request, exc):
        metrics.errors.labels("invalid_request").inc()
        return _error(422, "invalid_request", str(exc.errors()[:1]))

    @app.exception_handler(Exception)
    async def internal_error(request, exc):
        metrics.errors.labels("internal").inc()
        return _error(500, "internal", f"{type(exc).__name__}: {exc}")

    def need(task_endpoint: str) -> None:
        if backend.endpoint != task_endpoint:
            raise ApiError(
                404,
                "wrong_task",
                f"{task_endpoint}: this server runs a {backend.task} model; use {backend.endpoint}",
            )

    async def batched(body) -> list:
        """The backend's answers to one request: its items through the micro-batcher."""
        from rnnlab.data import DataError
        from rnnlab.tasks.config import ConfigError

        try:
            key, items = backend.prepare(body)
            return await state["batcher"].submit(key, items)
        except Overloaded as e:
            raise ApiError(503, "overloaded", str(e)) from None
        except (DataError, ConfigError, ValueError) as e:
            raise ApiError(422, "invalid_option", str(e)) from None

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(str(_STATIC / "index.html"), media_type="text/html")

    @app.get("/static/{name}", include_in_schema=False)
    async def static(name: str):
        kinds = {".js": "text/javascript", ".css": "text/css"}
        path = _STATIC / name
        if Path(name).suffix not in kinds or "/" in name or not path.is_file():
            raise ApiError(404, "not_found", f"/static/{name}: no such file")
        return FileResponse(str(path), media_type=kinds[Path(name).suffix])

    @app.get("/health")
    async def health():
        return {"status": "ok"}

    @app.get("/info")
    async def info():
        return {**backend.info(), "limits": vars(limits), "pid": os.getpid(), "workers": workers}

    @app.get("/metrics")
    async def prometheus():
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    @app.post("/v1/predict")
    async def predict(request: Request):
        need("/v1/predict")
        body = await _body(request, limits, PredictRequest)
        _check_texts(body.texts, limits)
        return {"predictions": await batched(body)}

    @app.post("/v1/generate")
    async def generate(request: Request):
        need("/v1/generate")
        body = await _body(request, limits, GenerateRequest)
        if not 1 <= body.length <= limits.max_generate_length:
            raise ApiError(
                422,
                "invalid_option",
                f"length: expected 1 to {limits.max_generate_length}, received {body.length}",
            )
        if len(body.prime) > limits.max_text_chars:
            raise ApiError(
                413,
                "text_too_long",
                f"prime: {len(body.prime)} characters; the limit is {limits.max_text_chars}",
            )
        streams = state["streams"]
        if streams is None:  # a backend without a continuous batcher: whole texts through the micro-batcher
            if body.stream:
                raise ApiError(422, "invalid_option", "stream: this run's backend does not stream")
            return (await batched(body))[0]
        try:
            _, (options,) = backend.prepare(body)
            stream = streams.submit(options)
        except Overloaded as e:
            raise ApiError(503, "overloaded", str(e)) from None
        except ValueError as e:  # DataError included
            raise ApiError(422, "invalid_option", str(e)) from None
        if body.stream:
            return StreamingResponse(
                _events(streams, stream),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache"},
            )
        try:
            text = await stream.text()
        except ValueError as e:
            raise ApiError(422, "invalid_option", str(e)) from None
        finally:  # the client went away (this task cancelled): the row leaves the batch
            streams.cancel(stream)
        return backend.answer(body.prime, text)

    @app.post("/v1/forecast")
    async def forecast(request: Request):
        need("/v1/forecast")
        body = await _body(request, limits, ForecastRequest)
        if body.history is not None and len(body.history) > limits.max_history:
            raise ApiError(
                413,
                "too_many_values",
                f"history: {len(body.history)} values; the limit is {limits.max_history}",
            )
        return (await batched(body))[0]

    wrapped = _RequestIds(app, metrics)
    wrapped.fastapi = app
    return wrapped


async def _events(streams, stream):
    """Server-sent events: ``data: {"text": CH}`` per character as the batch draws it, then ``event: done``
    (or ``event: error`` with the error's JSON, should the model fail after the answer began); a client that
    goes away takes its row out of the batch."""
    try:
        async for ch in stream.chars():
            yield f"data: {json.dumps({'text': ch})}\n\n"
        yield "event: done\ndata: {}\n\n"
    except Exception as e:  # the status line is sent: the error can only be an event
        error = {"code": "internal", "message": f"{type(e).__name__}: {e}"}
        yield f"event: error\ndata: {json.dumps(error)}\n\n"
    finally:
        streams.cancel(stream)
