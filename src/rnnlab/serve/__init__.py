"""``rnnlab serve RUN``: a trained run behind a JSON API and a web page (FastAPI on uvicorn).

* :mod:`rnnlab.serve.cli` adds the subcommand (argparse only at import time);
* :mod:`rnnlab.serve.limits` holds the request limits and the micro-batching settings;
* :mod:`rnnlab.serve.backends` wraps each task's model (classifier, translator, character LM, forecaster;
  a task module may name its own with ``SERVE_BACKEND``);
* :mod:`rnnlab.serve.batching` gathers requests that arrive together into one forward pass, on a worker
  thread (the event loop never runs a model);
* :mod:`rnnlab.serve.workers` runs ``--workers N`` processes on one port, ``/metrics`` summed over them;
* :mod:`rnnlab.serve.app` is the ASGI app: ``/health``, ``/info``, ``/metrics``, ``/v1/*`` and the page at
  ``/`` (files in ``static/``, no build step, no CDN).

The package needs the ``serve`` extra (``pip install rnnlab[serve]``); importing this ``__init__`` needs
nothing.
"""
