"""One backend per task: the loaded model, how a request becomes batch items, and one forward pass.

A backend says which POST ``endpoint`` serves it, turns a parsed request into ``(key, items)`` with
``prepare(body)`` (on the event loop: cheap checks only; a ValueError / DataError / ConfigError there is the
client's 422 ``invalid_option``), answers ``run_batch(key, items)`` on the worker thread (items of one key
share a forward pass: the beam width of a translator, ``"forecast"`` for every forecast) and ``info()`` for
``GET /info``. Each prediction is exactly what ``rnnlab predict --json`` prints for that input.

**Where a task's backend comes from.** A task module names its own with ``SERVE_BACKEND =
"package.module:Class"`` (an import string, resolved when a run is served, so the task module imports nothing
of ``serve/`` and ``rnnlab --help`` stays light); :data:`BUNDLED` names the bundled tasks' backends for
modules that do not. Adding a task adds no line here.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Hashable
from pathlib import Path

import numpy as np

from rnnlab.data import DataError
from rnnlab.tasks import TASKS, get_task, task_of_run

__all__ = ["BUNDLED", "Backend", "backend_class", "check_run", "load_backend"]

# The bundled tasks' backends (a task module's own SERVE_BACKEND wins over its line here).
BUNDLED = {
    "sentiment": "rnnlab.serve.backends:ClassifierBackend",
    "translate": "rnnlab.serve.backends:TranslatorBackend",
    "charlm": "rnnlab.serve.backends:GeneratorBackend",
    "forecast": "rnnlab.serve.backends:forecast_backend",  # a function: one series or a collection
}

_PREDICT_KEYS = ["text", "label", "probabilities", "tokens", "num_tokens", "truncated"]


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    except (OSError, ValueError):
        return None


class Backend:
    """The common part: the run folder, its task and its info."""

    task = ""
    endpoint = ""  # the POST route that serves this task: /v1/predict, /v1/generate or /v1/forecast
    labels: list[str] | None = None

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir

    def prepare(self, body) -> tuple[Hashable, list]:
        """The batch key and the items of a parsed request (its schema belongs to :attr:`endpoint`)."""
        raise NotImplementedError

    def info(self) -> dict:
        return {
            "task": self.task,
            "run": self.run_dir.name,
            "endpoint": self.endpoint,
            "labels": self.labels,
            "config": _read_json(self.run_dir / "config.json"),
            "metrics": _read_json(self.run_dir / "test_metrics.json"),
        }

    def run_batch(self, key, items: list) -> list:
        raise NotImplementedError

    def scheduler(self, limits, on_step):
        """A backend that generates step by step returns its continuous batcher here (a
        :class:`~rnnlab.serve.streams.StreamScheduler`), which then serves its endpoint whole and streamed;
        the others return None and are served by the micro-batcher."""
        return None

    def answer(self, prime: str, text: str) -> dict:
        """A scheduler's request answered whole: the text drawn after ``prime``."""
        return {"prime": prime, "text": text}


class ClassifierBackend(Backend):
    task, endpoint = "sentiment", "/v1/predict"

    def prepare(self, body) -> tuple[Hashable, list]:
        if body.beam is not None:
            raise ValueError("beam: applies to translator runs only")
        return None, body.texts

    def __init__(self, run_dir: Path) -> None:
        from rnnlab.inference import Predictor

        super().__init__(run_dir)
        self.predictor = Predictor.from_checkpoint(run_dir)
        self.labels = list(self.predictor.label_names)

    def run_batch(self, key, items: list[str]) -> list[dict]:
        out = []
        for r in self.predictor.predict(items, batch_size=max(len(items), 1)):
            keys = _PREDICT_KEYS + (["attention"] if r["attention"] is not None else [])
            out.append({k: r[k] for k in keys})
        return out


class TranslatorBackend(Backend):
    task, endpoint = "translate", "/v1/predict"

    def prepare(self, body) -> tuple[Hashable, list]:
        self._translate.check_beam(body.beam)
        return body.beam, body.texts

    def __init__(self, run_dir: Path) -> None:
        from rnnlab.tasks import translate

        super().__init__(run_dir)
        self._translate = translate
        self.translator = translate.load_translator(run_dir)

    def run_batch(self, key, items: list[str]) -> list[dict]:
        return self._translate.predict(self.translator, items, beam=key)


class GeneratorBackend(Backend):
    """A character LM. Requests are rows of one batch that advances a character per forward pass, each row
    with its own options and seeded generator (:meth:`scheduler`: continuous batching, whole texts and
    streams alike); ``run_batch`` samples a set of requests together to the end. A backward LM
    (``model.reverse``) writes what precedes the prime: its streamed characters come in the order drawn,
    last character first, and its whole answer is in reading order."""

    task, endpoint = "charlm", "/v1/generate"

    def prepare(self, body) -> tuple[Hashable, list]:
        from rnnlab.inference.sampler import check_sampling

        options = {k: getattr(body, k) for k in ("prime", "length", "temperature", "top_k", "top_p", "seed")}
        try:
            check_sampling(options["length"], options["temperature"], options["top_k"], options["top_p"])
            self.sampler.encode_prime(options["prime"])
        except DataError as e:  # the command line's words (--top-k) become the API's (top_k)
            raise DataError(str(e).replace("--", "").replace("-", "_", 1)) from None
        if self.reverse:  # a backward LM reads the prime last character first
            options["prime"] = options["prime"][::-1]
        return "generate", [options]

    def answer(self, prime: str, text: str) -> dict:
        """The answer to a request for ``prime`` whose characters were drawn as ``text``: a backward LM's
        come last character first, so its answer's ``text`` (what precedes the prime) is reversed."""
        return {"prime": prime, "text": text[::-1] if self.reverse else text}

    def info(self) -> dict:
        return {**super().info(), "reverse": self.reverse}

    def __init__(self, run_dir: Path) -> None:
        from rnnlab.inference.sampler import Sampler

        super().__init__(run_dir)
        self.sampler = Sampler.from_checkpoint(run_dir)
        self.reverse = bool(self.sampler.model.config.reverse)

    def scheduler(self, limits, on_step):
        from rnnlab.serve.streams import StreamScheduler

        return StreamScheduler(self.sampler, limits.max_batch_size, limits.max_queue, on_step)

    def run_batch(self, key, items: list[dict]) -> list[dict]:
        from rnnlab.inference.batch_sampler import BatchSampler

        texts = BatchSampler(self.sampler).run(items)
        primes = [r["prime"][::-1] if self.reverse else r["prime"] for r in items]
        return [self.answer(p, text) for p, text in zip(primes, texts, strict=True)]


class ForecastBackend(Backend):
    """Forecasts share a forward pass: ``prepare`` checks each request's history and cuts its window, so
    that one bad history fails only its own request; ``run_batch`` forecasts every window at once."""

    task, endpoint = "forecast", "/v1/forecast"

    def prepare(self, body) -> tuple[Hashable, list]:
        f, window = self.forecaster, self.forecaster.config.window
        if body.history is None:
            return "forecast", [(f.tail[-window:], f.end)]
        values = np.asarray(body.history, dtype=np.float64)
        # the checks and words of Forecaster.predict, which the CLI's forecasts go through
        if len(values) < window:
            raise DataError(
                f"history: expected at least window={window} values (1-D), received shape {values.shape}"
            )
        if not np.isfinite(values).all():
            raise DataError("history: expected finite numbers, received NaN or infinity")
        end = f.end if body.last_time is None else np.datetime64(body.last_time)
        return "forecast", [(values[-window:], end)]

    def __init__(self, run_dir: Path) -> None:
        from rnnlab.inference.forecaster import Forecaster

        super().__init__(run_dir)
        self.forecaster = Forecaster.from_checkpoint(run_dir)

    def info(self) -> dict:
        f = self.forecaster
        return {
            **super().info(),
            "window": f.config.window,
            "horizon": f.config.horizon,
            "freq": f.freq,
            "tail": f.tail.tolist(),
            "end": str(f.end),
        }

    def run_batch(self, key, items: list[tuple]) -> list[dict]:
        """One forward pass over the N windows (N, W); each answer as ``Forecaster.predict`` gives it."""
        from rnnlab.data.series import future_times

        f = self.forecaster
        q = f.forecast_windows(np.stack([w for w, _ in items]), [end for _, end in items])  # (N, H, Q)
        median = f.levels.index(0.5)
        return [
            {
                "times": [str(t) for t in future_times(end, f.freq, f.config.horizon)],
                "forecast": q[n, :, median].tolist(),
                "quantiles": {f"{level:g}": q[n, :, i].tolist() for i, level in enumerate(f.levels)},
                "horizon": f.config.horizon,
            }
            for n, (_, end) in enumerate(items)
        ]


class CollectionForecastBackend(Backend):
    """A run trained across a collection of series: it forecasts the history each request sends (any series,
    on its own scale, as ``rnnlab predict RUN --data FILE`` does), with the combination the run kept; the
    requests of a batch share the network's forward pass (the statistical members fit each history)."""

    task, endpoint = "forecast", "/v1/forecast"

    def __init__(self, run_dir: Path) -> None:
        from rnnlab.tasks import forecast_global

        super().__init__(run_dir)
        self._global = forecast_global
        self.model, self.scaler, self.meta = forecast_global.load_model(run_dir)
        self.horizon = int(self.meta["collection"]["horizon"])
        self.freq = self.meta["collection"].get("freq")

    def prepare(self, body) -> tuple[Hashable, list]:
        if body.history is None:
            name = self.meta["collection"]["name"]
            raise DataError(
                f"history: a run trained across a collection ({name}) forecasts the series you send; "
                "expected a list of at least 3 numbers, received none"
            )
        values = np.asarray(body.history, dtype=np.float64)
        if len(values) < 3:
            raise DataError(f"history: expected at least 3 values (1-D), received shape {values.shape}")
        if not np.isfinite(values).all():
            raise DataError("history: expected finite numbers, received NaN or infinity")
        if self.scaler.log and float(values.min()) <= 0:
            raise DataError(
                "history: expected values > 0 (the run learnt log values of a positive collection), "
                f"received a minimum of {float(values.min()):g}"
            )
        end = None
        if body.last_time is not None:
            if self.freq is None:
                raise DataError(
                    f"last_time: the run's collection has no dates ({self.meta['collection']['name']})"
                )
            end = np.datetime64(body.last_time)
        return "forecast", [(values, end)]

    def info(self) -> dict:
        c = self.meta["collection"]
        return {
            **super().info(),
            "collection": {"name": c["name"], "series": c["series"], "period": c["period"]},
            "horizon": self.horizon,
            "freq": self.freq,
            "combination": self.meta["selection"]["combination"],
        }

    def run_batch(self, key, items: list[tuple]) -> list[dict]:
        from rnnlab.data.series import future_times

        histories = [values for values, _ in items]
        q = self._global.forecast_combined(self.model, self.meta, histories, self.scaler.log, cache=False)
        levels = list(self.model.levels)
        median = levels.index(0.5)
        return [
            {
                "times": None
                if end is None
                else [str(t) for t in future_times(end, self.freq, self.horizon)],
                "forecast": a[:, median].tolist(),
                "quantiles": {f"{level:g}": a[:, i].tolist() for i, level in enumerate(levels)},
                "horizon": self.horizon,
                "combination": self.meta["selection"]["combination"],
            }
            for a, (_, end) in zip(q, items, strict=True)
        ]


def forecast_backend(run_dir: Path) -> Backend:
    """A forecast run's backend: one series (:class:`ForecastBackend`) or a collection
    (:class:`CollectionForecastBackend`), as its ``run.json`` says."""
    from rnnlab.tasks.forecast_collection_cli import is_collection_run

    return (CollectionForecastBackend if is_collection_run(run_dir) else ForecastBackend)(Path(run_dir))


def backend_class(task: str) -> Callable[[Path], Backend]:
    """What makes the backend of a ``task`` run from its folder (a Backend class, or a function choosing
    one): its module's ``SERVE_BACKEND``, else its line in :data:`BUNDLED`."""
    spec = getattr(get_task(task), "SERVE_BACKEND", None) if task in TASKS else None
    spec = spec or BUNDLED.get(task)
    if spec is None:
        raise DataError(f"task {task!r} names no serving backend (SERVE_BACKEND = 'package.module:Class')")
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def check_run(run_dir: str | Path) -> str:
    """The task of a run folder that can be served (no model is loaded); a DataError names a folder that is
    no run or a task not served."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DataError(f"RUN_DIR: expected a run folder written by train, received {str(run_dir)!r}")
    task = task_of_run(run_dir)
    if task not in TASKS and task not in BUNDLED:
        served = ", ".join(sorted(set(TASKS) | set(BUNDLED)))
        raise DataError(f"RUN_DIR {str(run_dir)!r}: task {task!r}; rnnlab serve serves {served}")
    return task


def load_backend(run_dir: str | Path) -> Backend:
    """The backend of the run's task; a DataError names a folder that is no run or a task not served."""
    return backend_class(check_run(run_dir))(Path(run_dir))
