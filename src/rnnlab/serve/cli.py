"""``rnnlab serve RUN``: added to the command line through :data:`rnnlab.cli.EXTENSIONS` (argparse only
at import time; fastapi, uvicorn and torch when it runs)."""

from __future__ import annotations

import argparse
import signal
from dataclasses import fields
from pathlib import Path

__all__ = ["add_subcommands", "run_serve"]

EXAMPLES = [
    "rnnlab serve runs/zh                     # http://127.0.0.1:8000/",
    "rnnlab serve runs/dates --port 8080 --max-batch-size 64 --max-wait-ms 2",
    'curl -s localhost:8000/v1/predict -d \'{"texts": ["很好用"]}\'',
]
_LIMIT_HELP = {
    "max_body_bytes": "largest request body in bytes",
    "max_texts": "most texts in one /v1/predict request",
    "max_text_chars": "most characters in one text",
    "max_generate_length": "most characters one /v1/generate request may ask for",
    "max_history": "most values in one /v1/forecast history",
    "max_batch_size": "most texts in one forward pass (1: no micro-batching)",
    "max_wait_ms": "how long a batch waits to fill, in milliseconds",
    "max_queue": "most requests waiting for the model (beyond: 503 overloaded)",
    "max_drain_bytes": "most bytes of an over-limit body read and discarded before its 413",
    "max_drain_ms": "most milliseconds spent discarding an over-limit body before its 413",
}


def add_subcommands(commands) -> None:
    from rnnlab.serve.limits import ServeLimits

    serve = commands.add_parser(
        "serve",
        help="serve a run: a JSON API and a web page (needs the serve extra)",
        description="Load a run once and answer HTTP: GET / (the page), /health, /info, /metrics; POST "
        "/v1/predict (classifier, translator), /v1/generate (character LM), /v1/forecast. Binds the loopback "
        "unless --host says otherwise. SIGTERM or Ctrl-C: requests in flight finish, then it exits.",
        epilog="examples:\n" + "\n".join(f"  {e}" for e in EXAMPLES),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a run folder written by train")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes, each loading the run, sharing the port (default 1); /metrics sums them all",
    )
    for f in fields(ServeLimits):
        serve.add_argument(
            f"--{f.name.replace('_', '-')}",
            type=type(f.default),
            default=f.default,
            help=f"{_LIMIT_HELP[f.name]} (default {f.default})",
        )
    serve.set_defaults(func=run_serve)


def run_serve(args) -> int:
    from rnnlab.cli.commands import UserError

    try:
        import uvicorn

        from rnnlab.serve.app import create_app
    except ImportError as e:
        raise UserError(f"rnnlab serve needs the serve extra (pip install 'rnnlab[serve]'): {e}") from None
    from rnnlab.serve.limits import ServeLimits

    if not 0 <= args.port <= 65535:
        raise UserError(f"--port: expected 0 to 65535, received {args.port}")
    if args.workers < 1:
        raise UserError(f"--workers: expected a number >= 1, received {args.workers}")
    try:
        limits = ServeLimits(**{f.name: getattr(args, f.name) for f in fields(ServeLimits)})
    except ValueError as e:
        raise UserError(f"--{str(e).replace('_', '-', 2)}") from None
    options = {"log_level": "info", "access_log": False, "timeout_graceful_shutdown": 30}
    if args.workers > 1:
        from rnnlab.serve.backends import check_run
        from rnnlab.serve.workers import run_workers

        check_run(args.run_dir)  # here, once, before any worker starts (each worker loads the model)
        run_workers(args.run_dir, limits, args.host, args.port, args.workers, **options)
        return 0
    app = create_app(args.run_dir, limits)
    # uvicorn shuts down gracefully on SIGTERM / SIGINT (requests in flight finish), then raises the signal
    # again under the handler it found: a no-op one here, so that the exit is a clean status 0.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    uvicorn.run(app, host=args.host, port=args.port, **options)
    return 0
