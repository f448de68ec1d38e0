"""Ready tasks: config -> data -> model -> trainer -> run folder, one module per task.

:data:`TASKS` is a plain dict from a task's name to its module's import path and a one-line summary, resolved
in one place (:func:`get_task`), so that importing :mod:`rnnlab.tasks` loads no task (and ``rnnlab --help``
no torch). The run lifecycle every task shares (new / resume / overwrite, config and run files, split
fingerprints, texts from stdin) is :mod:`rnnlab.tasks.runs`. A task module offers:

* for Python: ``Config`` (its config root dataclass), ``train(config, run_dir, resume, overwrite)``,
  ``evaluate(run_dir, ...)``, ``load_run_config(run_dir)`` and ``datasets()`` (its bundled data sets, each
  ``{"name", "description", "available", "how"}``);
* for ``rnnlab train TASK``: ``add_train_arguments(parser)``, ``TRAIN_SHORTCUTS`` (option dest -> config key,
  e.g. ``{"data": "data.dataset"}``), ``DERIVED`` (config keys ``train()`` sets from the data, refused as
  overrides), ``RENAMED`` (old config key -> new, so older ``config.json`` files load) and
  ``summary(result) -> str`` (its metrics, printed when training ends; ``result`` has ``run_dir``,
  ``best_epoch`` and ``history``, which the command line prints first);
* for the other subcommands, any of ``run_evaluate(args)``, ``run_predict(args)``,
  ``run_plot_attention(args)`` (``args`` as parsed by :mod:`rnnlab.cli`), and ``CLI_OPTIONS``: which
  task-specific options of those subcommands (``"beam"``, ``"text_column"``, ...) it takes; the command
  line refuses the others.

A subcommand whose hook a task lacks is reported as unsupported for that task. The command line knows no
task's metric names: each hook prints its own results. To add a task, write its module and add one line here.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from types import ModuleType
from typing import NamedTuple

__all__ = ["TASKS", "TaskEntry", "get_task", "task_of_run"]


class TaskEntry(NamedTuple):
    """One line of the registry: where the task lives and what it does (shown without importing it)."""

    module: str  # import path of the task's module
    summary: str  # one line for `rnnlab tasks` and `rnnlab train --help`


TASKS: dict[str, TaskEntry] = {
    "sentiment": TaskEntry(
        "rnnlab.tasks.sentiment", "text classification: sentiment of reviews (reviews-zh, movies-en, a CSV)"
    ),
    "translate": TaskEntry(
        "rnnlab.tasks.translate", "seq2seq with attention: dates -> ISO 8601, German -> English, a TSV"
    ),
    "forecast": TaskEntry("rnnlab.tasks.forecast", "time series: quantile forecasts beside classical models"),
    "charlm": TaskEntry(
        "rnnlab.tasks.charlm", "character language models: train, sample, bits per character"
    ),
}


def get_task(name: str) -> ModuleType:
    """Import and return the module of task ``name``."""
    if name not in TASKS:
        raise KeyError(f"task: expected one of {', '.join(sorted(TASKS))}, received {name!r}")
    entry = TASKS[name]
    return importlib.import_module(entry if isinstance(entry, str) else entry.module)


def task_of_run(run_dir: str | Path) -> str | None:
    """The task recorded in a run folder (``run.json`` or ``meta.json``) or checkpoint, or None if none is."""
    run_dir = Path(run_dir)
    for candidate in ("run.json", "meta.json", "best/meta.json", "last/meta.json"):
        path = run_dir / candidate
        if path.is_file():
            try:
                task = json.loads(path.read_text(encoding="utf-8")).get("task")
            except (ValueError, UnicodeDecodeError, AttributeError):
                continue
            if isinstance(task, str):
                return task
    return None
