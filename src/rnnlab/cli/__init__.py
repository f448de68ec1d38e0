"""The ``rnnlab`` command line: parse, then call the library (every step can be done from Python too).

::

    rnnlab train TASK --out RUN_DIR [--data NAME|PATH] [--config FILE] [--print-config] [key=value ...]
    rnnlab evaluate RUN_DIR [--data NAME|PATH] [--beam N] [--json]
    rnnlab predict RUN_DIR [TEXT ...] [--beam N] [--json]  # texts from stdin, one per line, when none given
    rnnlab plot attention RUN_DIR TEXT -o FILE.png
    rnnlab plot curves RUN_DIR -o FILE.png
    rnnlab plot forecast RUN_DIR -o FILE.png
    rnnlab info RUN_DIR [--json]
    rnnlab tasks | rnnlab datasets [TASK] | rnnlab --version

``train`` has one sub-command per task in :data:`rnnlab.tasks.TASKS`; ``evaluate``, ``predict`` and
``plot attention`` read the task from the run folder and call that task's hook (see :mod:`rnnlab.tasks`).
Building the parser imports neither torch nor any task module (``rnnlab --help`` is instant): a task's own
train options are added only when that task is named, and the modules of :data:`EXTENSIONS` import torch
only when their command runs. User errors (bad data, bad overrides, a missing or corrupted checkpoint) print
``rnnlab: error: ...`` on one line and exit with status 2, without a traceback; anything else is a bug and
keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from pathlib import Path

from rnnlab.cli import commands
from rnnlab.cli.commands import UserError, check_image_path, version

__all__ = ["EXTENSIONS", "UserError", "build_parser", "main"]

# Subcommands that live in other packages: modules whose ``add_subcommands(commands)`` (or
# ``add_subcommand``) adds their parsers to rnnlab's, each with ``set_defaults(func=handler)``, where
# ``handler(args) -> exit status``. Adding a package's subcommands is one line here. Such a module must
# import only argparse-level things at import time (torch on use), or ``rnnlab --help`` gets slow (a test
# checks that it imports no torch).
EXTENSIONS: tuple[str, ...] = (
    "rnnlab.tasks.charlm_cli",  # rnnlab sample RUN (charlm)
    "rnnlab.serve.cli",  # rnnlab serve RUN (the JSON API and the page)
    "rnnlab.explain",  # rnnlab shapes / rnnlab explain (for learners)
    "rnnlab.export",  # rnnlab export RUN -o FILE.onnx
)

# Options of evaluate / predict / plot that only some tasks take (a task lists its own in CLI_OPTIONS):
# given to a task that does not take them, they are an error, never silently ignored.
_TASK_OPTIONS = {
    "beam": "--beam applies to sequence outputs only (beam search decoding)",
    "text_column": "--text-column applies to labelled data files only",
    "label_column": "--label-column applies to labelled data files only",
    "backtest": "--backtest applies to forecast runs only (rolling origins before the holdout)",
    "per_series": "--per-series applies to forecast runs only (the scores of every series of a collection)",
    "predict_data": "--data applies to forecast runs only (series to forecast)",
    "dynamic_eval": "--dynamic-eval applies to charlm runs only (the model adapts to the text as it scores)",
}
_DASH_HINT = "a text that starts with '-' goes after '--', e.g. rnnlab predict RUN_DIR -- -text"


def _user_errors() -> tuple[type[BaseException], ...]:
    from rnnlab.data.sources import DataError
    from rnnlab.tasks.config import ConfigError
    from rnnlab.training.checkpoint import CheckpointError
    from rnnlab.viz import PlotError

    # PermissionError / IsADirectoryError / NotADirectoryError: an output path the user chose.
    return (UserError, DataError, ConfigError, CheckpointError, PlotError, PermissionError, IsADirectoryError,
            NotADirectoryError)  # fmt: skip


class _RowFormatter(logging.Formatter):
    """Renders a record whose argument is a dict (the trainer's per-epoch row) as the trainer's own per-epoch
    table (:class:`rnnlab.training.report.EpochTable`: a header, then one aligned line per epoch), so that a
    pipe shows what a terminal shows; other records as their message."""

    def __init__(self) -> None:
        super().__init__("%(message)s")
        self._table = None

    def format(self, record: logging.LogRecord) -> str:
        rows = [a for a in record.args if isinstance(a, dict)] if isinstance(record.args, tuple) else []
        if not rows:
            return super().format(record)
        if self._table is None:
            from rnnlab.training.report import EpochTable  # lazy: training imports torch

            self._table = EpochTable()
        return "\n".join(self._table.lines(rows[0]))


class _Parser(argparse.ArgumentParser):
    """argparse with its errors on one line (``rnnlab predict: error: ...``) and exit status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _sub(commands, name: str, help: str, examples: list[str], description: str | None = None):
    epilog = "examples:\n" + "\n".join(f"  {e}" for e in examples)
    return commands.add_parser(
        name,
        help=help,
        description=description or help,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


# Options several subcommands share, spelled once: name -> (flags, add_argument keywords).
_SHARED = {
    "run_dir": (("run_dir",), {"type": Path, "metavar": "RUN_DIR", "help": "a run folder written by train"}),
    "json": (("--json",), {"action": "store_true", "help": "print JSON (one object per line for predict)"}),
    "beam": (("--beam",), {"type": int, "help": "beam width for sequence outputs (default: the run's)"}),
    "output": (
        ("-o", "--output"),
        {"required": True, "type": Path, "help": "image to write: .png, .svg or .pdf (folders are created)"},
    ),
}


def _shared(parser: argparse.ArgumentParser, *names: str) -> None:
    for name in names:
        flags, options = _SHARED[name]
        parser.add_argument(*flags, **options)


def _add_train(commands, task_named: str | None) -> None:
    from rnnlab.tasks import TASKS, get_task

    train = _sub(
        commands,
        "train",
        "train a task's model into a run folder",
        ["rnnlab train sentiment --out runs/zh", "rnnlab train translate --data dates --out runs/dates"],
    )
    tasks = train.add_subparsers(dest="task", required=True, metavar="TASK", parser_class=_Parser)
    for name, entry in TASKS.items():
        sub = tasks.add_parser(name, help=entry.summary, description=entry.summary)
        sub.add_argument("--out", type=Path, help="run folder to write (required unless --print-config)")
        sub.add_argument("--resume", action="store_true", help="continue the interrupted run in --out")
        sub.add_argument(
            "--overwrite",
            action="store_true",
            help="replace an earlier run in --out (only once the new one has written its first checkpoint)",
        )
        sub.add_argument("--config", type=Path, help="start from a saved config.json (overrides still apply)")
        sub.add_argument(
            "--print-config", action="store_true", help="print the resolved config as JSON and exit"
        )
        sub.add_argument(
            "overrides",
            nargs="*",
            default=[],
            metavar="KEY=VALUE",
            help="config overrides, e.g. train.epochs=3",
        )
        sub.set_defaults(hook="run_train")
        if name == task_named:  # the task's own options: its module is imported only when it is named
            _add_task_help(sub, name, get_task(name))


def _add_task_help(parser: argparse.ArgumentParser, name: str, module) -> None:
    """The task's own train options, its examples, and every config key with its default (derived keys,
    which train() sets from the data, left out)."""
    from rnnlab.tasks.config import config_to_dict, field_paths

    if hasattr(module, "add_train_arguments"):
        module.add_train_arguments(parser)
    config = module.Config()
    defaults = config_to_dict(config)
    derived = set(getattr(module, "DERIVED", ()))
    keys = []
    for key in field_paths(config):
        value = defaults
        for part in key.split("."):
            value = value[part]
        if key not in derived:
            keys.append(f"  {key}={value}")
    examples = getattr(module, "TRAIN_EXAMPLES", [f"rnnlab train {name} --out runs/{name}"])
    parser.epilog = (
        "examples:\n" + "\n".join(f"  {e}" for e in examples) + "\n\n"
        "config keys for KEY=VALUE, with their defaults:\n" + "\n".join(keys)
    )
    parser.formatter_class = argparse.RawDescriptionHelpFormatter


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; ``argv`` tells which task's own train options to add (none for ``--help``)."""
    words = [a for a in (argv or []) if not a.startswith("-")]
    command = words[0] if words else None
    parser = _Parser(
        prog="rnnlab",
        description="Train, evaluate and use recurrent models.",
        epilog="examples:\n  rnnlab train sentiment --out runs/zh\n  rnnlab predict runs/zh '物流很快'\n"
        "  rnnlab info runs/zh\n\nrnnlab COMMAND --help tells more about each command.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"rnnlab {version()}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    _add_train(subparsers, words[1] if command == "train" and len(words) > 1 else None)

    evaluate = _sub(
        subparsers,
        "evaluate",
        "score a run on its test split or on other data",
        ["rnnlab evaluate runs/zh --json", "rnnlab evaluate runs/zh --data other.csv"],
    )
    _shared(evaluate, "run_dir")
    evaluate.add_argument("--data", help="a bundled data set or a file (default: the run's own test split)")
    evaluate.add_argument("--text-column", help="text column of --data (default: the run's)")
    evaluate.add_argument("--label-column", help="label column of --data (default: the run's)")
    _shared(evaluate, "json", "beam")
    evaluate.add_argument(
        "--backtest", type=int, metavar="K", help="forecast runs: also score K earlier origins"
    )
    evaluate.add_argument(
        "--per-series",
        action="store_true",
        default=None,
        help="forecast runs of a collection: every series' scores",
    )
    evaluate.add_argument(
        "--dynamic-eval", type=float, nargs="?", const=0.1, metavar="LR",
        help="charlm runs: also score with dynamic evaluation (SGD on each scored chunk; LR default 0.1)",
    )  # fmt: skip
    evaluate.set_defaults(hook="run_evaluate")

    predict = _sub(
        subparsers,
        "predict",
        "label or translate texts with a trained run",
        [
            "rnnlab predict runs/zh '物流很快' --json",
            "rnnlab predict runs/dates --beam 5 < dates.txt",
            "rnnlab predict runs/zh -- '-5 stars, never again'",
        ],  # fmt: skip
        description=f"Label or translate texts with a trained run; {_DASH_HINT}.",
    )
    _shared(predict, "run_dir")
    predict.add_argument(
        "texts",
        nargs="*",
        default=[],  # not listed as required in argparse's "the following arguments are required"
        metavar="TEXT",
        help="texts (default: stdin, one per line; blank lines skipped)",
    )
    _shared(predict, "json", "beam")
    predict.add_argument(
        "--data", dest="predict_data", metavar="FILE",
        help="forecast runs of a collection: forecast these series (a long-format file, a collection, a CSV)",
    )  # fmt: skip
    predict.set_defaults(hook="run_predict")

    plot = _sub(
        subparsers,
        "plot",
        "draw attention heatmaps and training curves (PNG, SVG or PDF)",
        ["rnnlab plot attention runs/zh '物流很快' -o attention.png", "rnnlab plot curves runs/zh -o c.png"],
    )
    kinds = plot.add_subparsers(dest="kind", required=True, metavar="KIND", parser_class=_Parser)
    attention = kinds.add_parser("attention", help="heatmap of the attention over a text's tokens")
    _shared(attention, "run_dir")
    attention.add_argument("text", metavar="TEXT")
    _shared(attention, "output", "beam")
    attention.set_defaults(hook="run_plot_attention")
    curves = kinds.add_parser("curves", help="training loss and validation metrics per epoch")
    _shared(curves, "run_dir", "output")
    curves.set_defaults(func=commands.run_plot_curves)
    forecast = kinds.add_parser(
        "forecast", help="a forecast run's history, holdout, forecast band and baseline"
    )
    _shared(forecast, "run_dir", "output")
    forecast.add_argument("--series", metavar="ID", help="a collection run: the id of the series to draw")
    forecast.set_defaults(hook="run_plot_forecast")
    cells = kinds.add_parser("cells", help="a text coloured by the most interpretable cell units (charlm)")
    _shared(cells, "run_dir")
    cells.add_argument("text", metavar="TEXT")
    _shared(cells, "output")
    cells.set_defaults(hook="run_plot_cells")

    info = _sub(
        subparsers,
        "info",
        "what a run folder holds: task, config, data, metrics, checkpoint sizes",
        ["rnnlab info runs/zh", "rnnlab info runs/zh --json"],
    )
    _shared(info, "run_dir", "json")
    info.set_defaults(hook="run_info")

    tasks = _sub(subparsers, "tasks", "list the tasks rnnlab can train", ["rnnlab tasks"])
    tasks.set_defaults(func=commands.run_tasks)
    datasets = _sub(
        subparsers,
        "datasets",
        "list each task's bundled data sets and whether they are available here",
        ["rnnlab datasets", "rnnlab datasets translate --json"],
    )
    datasets.add_argument("task", nargs="?", metavar="TASK", help="only this task's data sets")
    _shared(datasets, "json")
    datasets.set_defaults(func=commands.run_datasets)

    for name in EXTENSIONS:
        module = importlib.import_module(name)
        (getattr(module, "add_subcommands", None) or module.add_subcommand)(subparsers)
    return parser


def _run_dir_task(run_dir: Path) -> str:
    from rnnlab.tasks import task_of_run

    if not run_dir.exists():
        raise UserError(f"{run_dir}: no such run folder")
    task = task_of_run(run_dir)
    if task is None:
        raise UserError(f"{run_dir}: not an rnnlab run folder (no run.json or meta.json naming a task)")
    return task


def _dispatch(args: argparse.Namespace) -> int:
    from rnnlab.tasks import get_task

    if args.command == "plot":
        check_image_path(args.output)
    if getattr(args, "func", None) is not None:  # commands that need no task (and EXTENSIONS')
        return int(args.func(args) or 0)
    if args.command == "train":
        from rnnlab.tasks import runs

        module = get_task(args.task)
        result = runs.train_from_args(args, module)
        if result is not None:  # every task's result names its folder, best epoch and history
            print(f"run: {result.run_dir}  best epoch: {result.best_epoch} of {len(result.history)}")
            print(module.summary(result))
        return 0
    task = _run_dir_task(args.run_dir)
    if args.command == "info":
        return commands.run_info(args, task)
    try:
        module = get_task(task)
    except KeyError as err:
        raise UserError(f"{args.run_dir}: {err.args[0]}") from None
    hook = getattr(module, args.hook, None)
    if hook is None:
        raise UserError(f"task {task!r} does not support '{args.command}'")
    accepted = getattr(module, "CLI_OPTIONS", ())
    for option, what in _TASK_OPTIONS.items():
        if getattr(args, option, None) is not None and option not in accepted:
            raise UserError(f"{what}; {args.run_dir} is a {task} run, which does not take it")
    return int(hook(args) or 0)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``rnnlab`` console script; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    try:
        args, extra = parser.parse_known_args(argv)
    except SystemExit as stop:  # --help, --version, or argparse's one-line error
        return int(stop.code or 0)
    # Positionals after an option (`predict RUN --json TEXT`, `train ... --out R key=value`) are left over
    # by argparse; they belong to the command's list of texts or overrides.
    if extra and not any(e.startswith("-") for e in extra):
        if args.command in ("train", "pretrain") and all("=" in e for e in extra):
            args.overrides = [*args.overrides, *extra]
            extra = []
        elif args.command == "predict":
            args.texts = [*args.texts, *extra]
            extra = []
        elif args.command == "shapes" and all("=" in e for e in extra):  # KEY=VALUE after --input
            args.options = [*args.options, *extra]
            extra = []
    if extra:
        hint = f"; {_DASH_HINT}" if args.command == "predict" else ""
        print(
            f"rnnlab {args.command}: error: unrecognized arguments: {' '.join(extra)}{hint}", file=sys.stderr
        )
        return 2
    # Without a terminal there is no progress bar: rnnlab's loggers (the trainer's) print their records, the
    # epoch rows as a table. On a terminal the trainer's own report prints the same table beside its bar.
    logger, handler = logging.getLogger("rnnlab"), logging.StreamHandler(sys.stderr)
    handler.setFormatter(_RowFormatter())
    level = logger.level
    if not sys.stderr.isatty():
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    try:
        return _dispatch(args)
    except _user_errors() as err:
        message = " ".join(str(err).split("\n"))
        print(f"rnnlab: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rnnlab: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `rnnlab sample RUN | head`: the reader left; say nothing, as cat does
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush does not raise again
        return 141
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
