"""Every script in examples/ runs, prints its comparisons with torch.nn, and fails loudly on a mismatch."""

from __future__ import annotations

import math
import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SEED_SCRIPTS = sorted(p.name for p in EXAMPLES.glob("seed*.py"))


def test_there_is_one_example_per_seed_note():
    assert len(SEED_SCRIPTS) == 5, SEED_SCRIPTS


@pytest.mark.parametrize("script", SEED_SCRIPTS)
def test_example_runs_as_a_script(script, capsys):
    """``python examples/<script>``, in-process: it exits 0 and prints its comparisons, each a small diff."""
    try:
        runpy.run_path(str(EXAMPLES / script), run_name="__main__")
    except SystemExit as exit_:  # pragma: no cover - only if a script starts calling sys.exit
        assert exit_.code in (0, None), f"{script} exited with {exit_.code}"
    out = capsys.readouterr().out
    diffs = [float(m) for m in re.findall(r"max \|diff\| = (\S+)", out)]
    assert len(diffs) >= 5, out
    assert all(math.isfinite(d) and 0 <= d < 1e-4 for d in diffs), out


def test_example_main_returns_its_comparisons(capsys):
    """``main()`` returns one (label, max |diff|) row per printed comparison: what run_seeds.py tabulates."""
    rows = runpy.run_path(str(EXAMPLES / "seed5_lstmcell_loop.py"), run_name="example")["main"]()
    out = capsys.readouterr().out
    assert rows and len(rows) == out.count("max |diff| =")
    assert all(isinstance(label, str) and isinstance(diff, float) for label, diff in rows)


def test_the_tour_lists_every_seed_example():
    tour = runpy.run_path(str(EXAMPLES / "run_seeds.py"), run_name="run_seeds")
    assert [script for script, *_ in tour["SEEDS"]] == SEED_SCRIPTS


def test_the_tour_fails_when_an_example_fails(tmp_path, capsys):
    """A failing example is reported in the table and turns the tour's exit status to 1."""
    (tmp_path / "good.py").write_text("def main():\n    return [('x', 0.0)]\n")
    (tmp_path / "bad.py").write_text("def main():\n    assert False, 'mismatch'\n")
    tour = runpy.run_path(str(EXAMPLES / "run_seeds.py"), run_name="run_seeds")
    main = tour["main"]
    main.__globals__["HERE"] = tmp_path
    main.__globals__["SEEDS"] = [("good.py", "900", "passes"), ("bad.py", "901", "fails")]
    assert main() == 1
    out = capsys.readouterr().out
    assert "FAILED: AssertionError" in out and "1/2 examples passed" in out


@pytest.mark.slow
def test_the_tour_exits_0_and_prints_the_summary():
    """``python examples/run_seeds.py`` with the venv's python, warnings as errors, as the README runs it."""
    result = subprocess.run(
        [sys.executable, "-W", "error", str(EXAMPLES / "run_seeds.py")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    table = result.stdout.split("what it shows", 1)[1]
    for script in SEED_SCRIPTS:
        line = next(line for line in table.splitlines() if script in line)
        assert line.rstrip().endswith("ok"), line
    assert "5/5 examples passed" in result.stdout
