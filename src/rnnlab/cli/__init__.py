"""The ``rnnlab`` command line: parse, then call the library (every step can be done from Python too).

::

    rnnlab train sentiment [--data reviews-zh|movies-en|PATH] [--valid PATH] --out RUN_DIR [key=value ...]
    rnnlab train translate [--data dates|de-en|PATH] --out RUN_DIR [key=value ...]
    rnnlab evaluate RUN_DIR [--data NAME|PATH] [--json]
    rnnlab predict RUN_DIR [TEXT ...] [--beam N] [--json]  # texts from stdin, one per line, when none given
    rnnlab plot attention RUN_DIR TEXT -o FILE.png
    rnnlab plot curves RUN_DIR -o FILE.png

``train`` has one sub-command per task in :data:`rnnlab.tasks.TASKS`; ``evaluate``, ``predict`` and
``plot attention`` read the task from the run folder and call that task's hook (see :mod:`rnnlab.tasks`).
User errors (bad data, bad overrides, a missing or corrupted checkpoint) print ``rnnlab: error: ...`` and exit
with status 2, without a traceback; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

__all__ = ["UserError", "build_parser", "main"]


class UserError(Exception):
    """A mistake in what the user asked for; printed as ``rnnlab: error: <message>``, exit status 2."""


def _user_errors() -> tuple[type[BaseException], ...]:
    from rnnlab.data import DataError
    from rnnlab.tasks.config import ConfigError
    from rnnlab.training.checkpoint import CheckpointError

    # PermissionError / IsADirectoryError: an output path the user chose cannot be written.
    return (UserError, DataError, ConfigError, CheckpointError, PermissionError, IsADirectoryError)


class _RowFormatter(logging.Formatter):
    """Renders dict arguments (the trainer's per-epoch rows) as ``key=value`` pairs, 4 significant digits."""

    def format(self, record: logging.LogRecord) -> str:
        if isinstance(record.args, tuple) and any(isinstance(a, dict) for a in record.args):
            record = logging.makeLogRecord(record.__dict__)
            record.args = tuple(
                " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in a.items())
                if isinstance(a, dict)
                else a
                for a in record.args
            )
        return super().format(record)


def build_parser() -> argparse.ArgumentParser:
    """The full parser, with one ``train`` sub-command per registered task."""
    from rnnlab.tasks import TASKS, get_task

    parser = argparse.ArgumentParser(prog="rnnlab", description="Train, evaluate and use recurrent models.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser("train", help="train a task's model into a run folder")
    tasks = train.add_subparsers(dest="task", required=True, metavar="TASK")
    for name in TASKS:
        module = get_task(name)
        sub = tasks.add_parser(name, help=(module.__doc__ or "").strip().splitlines()[0])
        sub.add_argument("--out", required=True, type=Path, help="run folder to write")
        sub.add_argument("--resume", action="store_true", help="continue the interrupted run in --out")
        sub.add_argument("--overwrite", action="store_true", help="replace an earlier run in --out")
        sub.add_argument(
            "overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. train.epochs=3"
        )
        if hasattr(module, "add_train_arguments"):
            module.add_train_arguments(sub)
        sub.set_defaults(hook="run_train")

    evaluate = commands.add_parser("evaluate", help="score a run on its test split or on other data")
    evaluate.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    evaluate.add_argument("--data", help="a bundled data set or a file (default: the run's own test split)")
    evaluate.add_argument("--text-column", help="text column of --data (default: the run's)")
    evaluate.add_argument("--label-column", help="label column of --data (default: the run's)")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate.add_argument("--beam", type=int, help="beam width for sequence outputs (translate)")
    evaluate.set_defaults(hook="run_evaluate")

    predict = commands.add_parser("predict", help="label texts with a trained run")
    predict.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    predict.add_argument(
        "texts", nargs="*", metavar="TEXT", help="texts to label (default: stdin, one per line)"
    )
    predict.add_argument("--json", action="store_true", help="print one JSON object per text, with attention")
    predict.add_argument(
        "--beam", type=int, help="beam width for sequence outputs (translate; default greedy)"
    )
    predict.set_defaults(hook="run_predict")

    plot = commands.add_parser("plot", help="draw attention heatmaps and training curves")
    kinds = plot.add_subparsers(dest="kind", required=True, metavar="KIND")
    attention = kinds.add_parser("attention", help="heatmap of the attention over a text's tokens")
    attention.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    attention.add_argument("text", metavar="TEXT")
    attention.add_argument("-o", "--output", required=True, type=Path, help="image file to write (.png)")
    attention.add_argument("--beam", type=int, help="beam width for sequence outputs (translate)")
    attention.set_defaults(hook="run_plot_attention")
    curves = kinds.add_parser("curves", help="training loss and validation metrics per epoch")
    curves.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    curves.add_argument("-o", "--output", required=True, type=Path, help="image file to write (.png)")
    curves.set_defaults(hook=None)
    return parser


def _plot_curves(args: argparse.Namespace) -> int:
    """Curves of every per-epoch scalar in ``metrics.csv`` except confusion-matrix counts (``cm_*``)."""
    import csv
    import io
    import tempfile

    from rnnlab.viz.plots import plot_curves

    metrics = args.run_dir / "metrics.csv"
    if not metrics.is_file():
        raise UserError(f"{args.run_dir}: no metrics.csv (not a run folder, or no epoch finished yet)")
    rows = list(csv.DictReader(io.StringIO(metrics.read_text(encoding="utf-8"))))
    if not rows:
        raise UserError(f"{metrics}: no epoch recorded yet")
    columns = [c for c in rows[0] if not c.startswith("cm_")]
    with tempfile.TemporaryDirectory() as tmp:
        kept = Path(tmp) / "metrics.csv"
        with kept.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
        print(plot_curves(kept, args.output, title=str(args.run_dir)))
    return 0


def _dispatch(args: argparse.Namespace) -> int:
    from rnnlab.tasks import get_task, task_of_run

    if args.command == "plot" and args.kind == "curves":
        return _plot_curves(args)
    if args.command == "train":
        task = args.task
    else:
        if not args.run_dir.exists():
            raise UserError(f"{args.run_dir}: no such run folder")
        task = task_of_run(args.run_dir)
        if task is None:
            raise UserError(
                f"{args.run_dir}: not an rnnlab run folder (no run.json or meta.json naming a task)"
            )
    try:
        module = get_task(task)
    except KeyError as err:
        raise UserError(f"{args.run_dir}: {err.args[0]}") from None
    hook = getattr(module, args.hook, None)
    if hook is None:
        raise UserError(f"task {task!r} does not support '{args.command}'")
    return int(hook(args) or 0)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``rnnlab`` console script; returns the exit status."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # Positionals after an option (`predict RUN --json TEXT`, `train ... --out R key=value`) are left over
    # by argparse; they belong to the command's list of texts or overrides.
    if extra and not any(e.startswith("-") for e in extra):
        if args.command == "train" and all("=" in e for e in extra):
            args.overrides = [*args.overrides, *extra]
            extra = []
        elif args.command == "predict":
            args.texts = [*args.texts, *extra]
            extra = []
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    # Without a terminal there is no progress bar: rnnlab's loggers (the trainer's) print a line per epoch.
    logger, handler = logging.getLogger("rnnlab"), logging.StreamHandler(sys.stderr)
    handler.setFormatter(_RowFormatter("%(message)s"))
    level = logger.level
    if not sys.stderr.isatty():
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    try:
        return _dispatch(args)
    except _user_errors() as err:
        print(f"rnnlab: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rnnlab: interrupted", file=sys.stderr)
        return 130
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
