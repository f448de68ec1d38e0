"""``rnnlab sample RUN`` and ``rnnlab pretrain sentiment``: the subcommands of character language models,
added through :data:`rnnlab.cli.EXTENSIONS` (argparse only at import time; torch when they run).

``pretrain`` calls :func:`rnnlab.tasks.pretrain.run_pretrain`: a forward and a backward LM on general text
plus the task's training split, cached (see :mod:`rnnlab.tasks.pretrain`).

It sets ``hook="run_sample"``, so the command line reads the task from the run folder and calls that task's
``run_sample`` (:func:`rnnlab.tasks.charlm.run_sample`); a task without one is reported as unsupported.
"""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_subcommand", "add_subcommands"]

EXAMPLES = [
    "rnnlab sample runs/shakespeare --prime 'ROMEO.' --length 300",
    "rnnlab sample runs/shakespeare --temperature 0.8 --top-p 0.9 --seed 7 --num-samples 3",
    "rnnlab sample runs/shakespeare --temperature 0   # greedy: the most likely character each step",
]
PRETRAIN_EXAMPLES = [
    "rnnlab pretrain sentiment --data reviews-zh --budget-s 600",
    "rnnlab pretrain sentiment --data reviews.csv --budget-s 300 model.cell=gru",
]


def add_subcommands(commands) -> None:
    """``sample`` and ``pretrain``."""
    add_subcommand(commands)
    pretrain = commands.add_parser(
        "pretrain",
        help="pretrain a forward and a backward character LM for a task (cached; for --init)",
        description="Train a forward and a backward character LM on general text that ships offline plus the "
        "task's training split (never a validation or test text), once: a second call returns the cached "
        "runs. Their folders are printed, for 'rnnlab train sentiment --init RUN'.",
        epilog="examples:\n" + "\n".join(f"  {e}" for e in PRETRAIN_EXAMPLES),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    pretrain.add_argument("task", choices=["sentiment"], help="the task whose data is pretrained on")
    pretrain.add_argument("--data", default="reviews-zh", help="reviews-zh (default), movies-en or a file")
    pretrain.add_argument(
        "--budget-s", type=float, default=600.0, help="seconds of training for both LMs (each gets half)"
    )
    pretrain.add_argument("--split-seed", type=int, help="the sentiment split's seed (default: the task's)")
    pretrain.add_argument(
        "--cache", type=Path, help="cache folder (default: $RNNLAB_CACHE or ~/.cache/rnnlab)"
    )
    pretrain.add_argument(
        "overrides", nargs="*", metavar="KEY=VALUE", help="charlm config, e.g. model.cell=gru"
    )
    pretrain.set_defaults(func=_run_pretrain)


def _run_pretrain(args) -> int:
    from rnnlab.tasks.pretrain import run_pretrain

    return run_pretrain(args)


def add_subcommand(commands) -> None:
    sample = commands.add_parser(
        "sample",
        help="write text with a character language model (streamed to stdout)",
        description="Write text with a trained charlm run, one character at a time, streamed to stdout; "
        "the same --seed gives the same text.",
        epilog="examples:\n" + "\n".join(f"  {e}" for e in EXAMPLES),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sample.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a run folder written by train")
    sample.add_argument("--prime", default="", help="text to start from (default: a newline)")
    sample.add_argument("--length", type=int, default=500, help="characters to write per sample (>= 1)")
    sample.add_argument(
        "--temperature", type=float, default=1.0, help="softmax temperature (> 0; 0 means greedy decoding)"
    )
    sample.add_argument("--top-k", type=int, help="draw only among the K most likely characters")
    sample.add_argument("--top-p", type=float, help="nucleus sampling: the smallest set with mass >= P")
    sample.add_argument("--seed", type=int, default=0, help="seed of the draws (default 0)")
    sample.add_argument("--num-samples", type=int, default=1, help="samples to write, a blank line apart")
    sample.set_defaults(hook="run_sample")
