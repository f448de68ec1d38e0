"""Ready tasks: config -> data -> model -> trainer -> run folder, one module per task.

:data:`TASKS` is a plain dict from a task's name to its module's import path, resolved in one place
(:func:`get_task`) so that importing :mod:`rnnlab.tasks` loads no task. A task module offers library functions
(``train(config, run_dir)``, ``evaluate(run_dir)``, ...) and, for the command line, any of these hooks:

* ``add_train_arguments(parser)``: options of ``rnnlab train <task>`` beside ``--out``, ``--resume``,
  ``--overwrite`` and the ``key=value`` overrides;
* ``run_train(args) -> int``, ``run_evaluate(args) -> int``, ``run_predict(args) -> int``,
  ``run_plot_attention(args) -> int``: do the subcommand (``args`` as parsed by :mod:`rnnlab.cli`).

A subcommand whose hook a task lacks is reported as unsupported for that task. To add a task, write its module
and add one line here.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from types import ModuleType

__all__ = ["TASKS", "get_task", "task_of_run"]

# name -> module implementing it (forecast and charlm join here once they offer the hooks above).
TASKS: dict[str, str] = {
    "sentiment": "rnnlab.tasks.sentiment",
    "translate": "rnnlab.tasks.translate",
}


def get_task(name: str) -> ModuleType:
    """Import and return the module of task ``name``."""
    if name not in TASKS:
        raise KeyError(f"task: expected one of {', '.join(sorted(TASKS))}, received {name!r}")
    return importlib.import_module(TASKS[name])


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
