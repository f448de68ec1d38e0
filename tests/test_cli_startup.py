"""``rnnlab --help`` and ``rnnlab train --help`` start without importing torch or any task module (the parser
is built from the static task registry; EXTENSIONS' modules are argparse-only), and ``python -m rnnlab`` is
the same command."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# Runs the command line in this interpreter as `python -m rnnlab ARGS` would, then reports what got imported.
PROBE = """
import json, runpy, sys
sys.argv = ["rnnlab", *json.loads(sys.argv[1])]
try:
    runpy.run_module("rnnlab", run_name="__main__", alter_sys=True)
except SystemExit as stop:
    code = stop.code
from rnnlab.tasks import TASKS  # the registry itself is light; the task modules it names are not
heavy = {entry.module for entry in TASKS.values()} | {"torch", "rnnlab.tasks.runs", "rnnlab.nn"}
mods = sorted(m for m in sys.modules if m in heavy or m.startswith("torch."))
print(json.dumps({"code": code, "modules": mods}), file=sys.stderr)
"""


def _probe(*args: str) -> tuple[int, list[str], str]:
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(args)], capture_output=True, text=True)
    report = json.loads(done.stderr.strip().splitlines()[-1])
    return report["code"], report["modules"], done.stdout


@pytest.mark.parametrize(
    "args", [["--help"], ["train", "--help"], ["tasks"], ["--version"], ["evaluate", "-h"]]
)
def test_help_imports_no_torch(args):
    code, modules, out = _probe(*args)
    assert code == 0 and out
    assert modules == [], modules


def test_a_task_help_imports_only_that_task():
    code, modules, out = _probe("train", "sentiment", "--help")
    assert code == 0 and "--data" in out and "data.batch_size=64" in out and "examples:" in out
    assert "model.vocab_size" not in out  # derived: not offered
    assert "rnnlab.tasks.sentiment" in modules and "rnnlab.tasks.translate" not in modules


def test_python_dash_m_rnnlab_is_the_command():
    done = subprocess.run([sys.executable, "-m", "rnnlab", "tasks"], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.split()[0] == "sentiment"
    done = subprocess.run([sys.executable, "-m", "rnnlab", "--version"], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.startswith("rnnlab ")


@pytest.mark.parametrize("command", ["train", "evaluate", "predict", "plot", "info", "datasets"])
def test_every_subcommand_help_has_examples(command, capsys):
    from rnnlab.cli import main

    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert "examples:" in out and f"rnnlab {command}" in out
