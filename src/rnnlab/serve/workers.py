"""``rnnlab serve RUN --workers N``: N worker processes (uvicorn's), each loading the run, on one socket.

The parent process binds the port, checks the run folder (it loads no model) and supervises: a worker that
dies is replaced; SIGTERM or Ctrl-C stops every worker gracefully (requests in flight finish). The kernel
hands each new connection to one worker; a keep-alive connection stays with its worker.

How a worker learns what to serve: uvicorn starts workers as fresh interpreters from an import string, so
the run folder and the limits travel in environment variables (:data:`ENV_RUN`, :data:`ENV_LIMITS`) and
:func:`app_from_env` is uvicorn's app factory.

``/metrics`` stays meaningful: prometheus_client's multiprocess mode. Each worker writes its counters and
histograms to files in ``PROMETHEUS_MULTIPROC_DIR`` (a fresh temporary folder, removed at exit, unless the
caller set one), and whichever worker answers ``/metrics`` reports the sum over all workers, live and
exited. ``GET /info`` names the answering worker's ``pid`` and the number of ``workers``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path

from rnnlab.serve.limits import ServeLimits

__all__ = ["ENV_LIMITS", "ENV_RUN", "ENV_WORKERS", "app_from_env", "run_workers"]

ENV_RUN = "RNNLAB_SERVE_RUN"  # the run folder each worker loads
ENV_LIMITS = "RNNLAB_SERVE_LIMITS"  # the ServeLimits, as JSON
ENV_WORKERS = "RNNLAB_SERVE_WORKERS"  # how many workers share the machine
MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client reads it when it is first imported


def app_from_env():
    """The app of one worker process (uvicorn calls it once per worker, ``factory=True``)."""
    from rnnlab.serve.app import create_app

    workers = int(os.environ.get(ENV_WORKERS, "1"))
    if workers > 1 and "OMP_NUM_THREADS" not in os.environ:
        import torch

        # N workers each using every core would fight over them: share the cores out.
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))
    limits = ServeLimits(**json.loads(os.environ[ENV_LIMITS]))
    return create_app(os.environ[ENV_RUN], limits, workers=workers)


def run_workers(
    run_dir: Path, limits: ServeLimits, host: str, port: int, workers: int, **uvicorn_options
) -> None:
    """Serve ``run_dir`` with ``workers`` processes on ``host:port`` until SIGTERM / SIGINT."""
    import uvicorn

    own_dir = None
    if not os.environ.get(MULTIPROC_DIR):
        own_dir = tempfile.mkdtemp(prefix="rnnlab-metrics-")
        os.environ[MULTIPROC_DIR] = own_dir
    os.environ[ENV_RUN] = str(Path(run_dir).resolve())
    os.environ[ENV_LIMITS] = json.dumps(asdict(limits))
    os.environ[ENV_WORKERS] = str(workers)
    try:
        uvicorn.run(
            "rnnlab.serve.workers:app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            **uvicorn_options,
        )
    finally:
        if own_dir is not None:
            shutil.rmtree(own_dir, ignore_errors=True)
            os.environ.pop(MULTIPROC_DIR, None)
