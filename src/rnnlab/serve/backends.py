"""One backend per task: the loaded model and what one forward pass over a batch returns.

A backend answers ``run_batch(key, items)`` on the worker thread (``key`` groups requests with the same
options: the beam width of a translator) and ``info()`` for ``GET /info``. Each prediction is exactly
what ``rnnlab predict --json`` prints for that input.
"""

from __future__ import annotations

import json
from pathlib import Path

from rnnlab.data import DataError
from rnnlab.tasks import task_of_run

__all__ = ["Backend", "check_run", "load_backend", "ENDPOINTS"]

# Which POST endpoint serves which task.
ENDPOINTS = {
    "sentiment": "/v1/predict",
    "translate": "/v1/predict",
    "charlm": "/v1/generate",
    "forecast": "/v1/forecast",
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
    labels: list[str] | None = None

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir

    def info(self) -> dict:
        return {
            "task": self.task,
            "run": self.run_dir.name,
            "endpoint": ENDPOINTS[self.task],
            "labels": self.labels,
            "config": _read_json(self.run_dir / "config.json"),
            "metrics": _read_json(self.run_dir / "test_metrics.json"),
        }

    def run_batch(self, key, items: list) -> list:
        raise NotImplementedError


class ClassifierBackend(Backend):
    task = "sentiment"

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
    task = "translate"

    def __init__(self, run_dir: Path) -> None:
        from rnnlab.tasks import translate

        super().__init__(run_dir)
        self._translate = translate
        self.translator = translate.load_translator(run_dir)

    def run_batch(self, key, items: list[str]) -> list[dict]:
        return self._translate.predict(self.translator, items, beam=key)


class GeneratorBackend(Backend):
    """A character LM; requests are not batched (each samples its own stream), see ``stream``."""

    task = "charlm"

    def __init__(self, run_dir: Path) -> None:
        from rnnlab.inference.sampler import Sampler

        super().__init__(run_dir)
        self.sampler = Sampler.from_checkpoint(run_dir)

    def stream(self, prime: str, length: int, temperature: float, top_k, top_p, seed):
        return self.sampler.stream(prime, length, temperature, top_k, top_p, seed)

    def run_batch(self, key, items: list[dict]) -> list[dict]:
        out = []
        for r in items:
            text = "".join(
                self.stream(r["prime"], r["length"], r["temperature"], r["top_k"], r["top_p"], r["seed"])
            )
            out.append({"prime": r["prime"], "text": text})
        return out


class ForecastBackend(Backend):
    task = "forecast"

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

    def run_batch(self, key, items: list[dict]) -> list[dict]:
        return [self.forecaster.predict(r["history"], r["last_time"]) for r in items]


_BACKENDS = {b.task: b for b in (ClassifierBackend, TranslatorBackend, GeneratorBackend, ForecastBackend)}


def check_run(run_dir: str | Path) -> str:
    """The task of a run folder that can be served (no model is loaded); a DataError names a folder that is
    no run or a task not served."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DataError(f"RUN_DIR: expected a run folder written by train, received {str(run_dir)!r}")
    task = task_of_run(run_dir)
    if task not in _BACKENDS:
        raise DataError(
            f"RUN_DIR {str(run_dir)!r}: task {task!r}; rnnlab serve serves {', '.join(sorted(_BACKENDS))}"
        )
    return task


def load_backend(run_dir: str | Path) -> Backend:
    """The backend of the run's task; a DataError names a folder that is no run or a task not served."""
    return _BACKENDS[check_run(run_dir)](Path(run_dir))
