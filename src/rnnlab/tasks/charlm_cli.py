"""``rnnlab sample RUN``: the subcommand of character language models, added through
:data:`rnnlab.cli.EXTENSIONS` (argparse only at import time; torch when it runs).

It sets ``hook="run_sample"``, so the command line reads the task from the run folder and calls that task's
``run_sample`` (:func:`rnnlab.tasks.charlm.run_sample`); a task without one is reported as unsupported.
"""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_subcommand"]

EXAMPLES = [
    "rnnlab sample runs/shakespeare --prime 'ROMEO.' --length 300",
    "rnnlab sample runs/shakespeare --temperature 0.8 --top-p 0.9 --seed 7 --num-samples 3",
    "rnnlab sample runs/shakespeare --temperature 0   # greedy: the most likely character each step",
]


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
