"""``benchmarks/speed.py --device cuda`` without a GPU: the plan, the deadline, the test runner, the report.

The run itself needs a GPU; here its parts run with a fake clock and stub measurements, and ``main`` runs
whole on a stub device (``torch.cuda`` answers as if there were one, the measurements are canned), so that
the table is rewritten after every row, the deadline holds over every phase and each target gets its
line. The rehearsal (CPU tensors, Triton's interpreter) runs the real measuring code end to end.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.triton
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))  # the benchmark's modules, as the script sees them

import _cuda_plan as cp  # noqa: E402


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def full_plan() -> list[cp.Row]:
    import speed_cuda as sc

    return cp.plan(sc.CELLS, tuple(sc.DTYPES), sc.CONFIGS, sc.BATCHES, sc.HIDDEN, sc.LN_SHAPES)


def test_the_plan_is_the_whole_grid_most_informative_first():
    rows = full_plan()
    assert len(rows) == len(set(rows)) == 2 * 2 * 2 * 4 * 3 + 4
    assert rows[0] == cp.Row("rnn", "LSTM", "fp32", 1, False, 64, 512)  # the headline shape
    assert rows[1] == cp.Row("ln", "LayerNormLSTM", "fp32", 1, False, 64, 256)  # its own target, second
    assert rows[2] == cp.Row("rnn", "LSTM", "fp32", 1, False, 1, 512)  # batch 1, its own target, third
    first = rows[:8]  # then one change at a time from the headline: every dimension early
    assert {r.cell for r in first} == {"LSTM", "GRU", "LayerNormLSTM"}
    assert {r.dtype for r in first} == {"fp32", "bf16"} and {r.layers for r in first} == {1, 2}
    assert {r.H for r in first if r.kind == "rnn"} == {512, 256}
    last = rows[-1]  # every dimension at its last preference
    assert (last.cell, last.dtype, last.layers, last.B, last.H) == ("GRU", "bf16", 2, 16, 1024)


def test_execute_stops_at_the_deadline_and_names_what_it_skipped():
    clock = FakeClock()
    deadline = cp.Deadline(100, clock)
    cost = {"rnn": 30.0, "ln": 50.0}
    rows = [cp.Row(k, "c", "fp32", 1, False, b, 8) for k, b in (("rnn", 1), ("ln", 2), ("rnn", 3), ("ln", 4))]
    seen = []

    def measure(row):
        clock.now += cost[row.kind]
        return {"B": row.B}

    skipped = cp.execute(rows, measure, deadline, lambda row, result: seen.append((row.B, result)))
    # 30 s, then the LayerNorm row (its cost unknown: the longest so far, 30 s, fits in 70 s): 80 s in;
    # 20 s left is less than either kind's longest row, so both last rows are skipped
    assert seen == [(1, {"B": 1}), (2, {"B": 2}), (3, None), (4, None)]
    assert [r.B for r in skipped] == [3, 4]
    assert deadline.elapsed() == 80


def test_a_row_that_fails_says_so_and_the_run_goes_on(tmp_path):
    rows = [cp.Row("rnn", "LSTM", "bf16", 1, False, b, 8) for b in (1, 2, 3)]

    def measure(row):
        if row.B == 2:
            raise RuntimeError("CUDA error: an illegal memory access was encountered\nmore")
        return canned(row)

    report = cp.Report(tmp_path / "r.md", ["# t"], rows, deadline_s=60)
    done = []
    assert cp.execute(rows, measure, cp.Deadline(60), lambda row, r: done.append((row, r))) == []
    report.results = done
    assert done[1][1] == {
        "note": "**failed**: RuntimeError: CUDA error: an illegal memory access was encountered"
    }
    text = report.text()
    assert "| LSTM | bf16 | 1 | 2 | 8 | **failed**: RuntimeError: CUDA error: an illegal memory" in text
    assert "median over 2 of 3 shapes" in report.targets()[0]  # the failed row has no figure


def test_pytest_summary_reads_plain_and_xdist_lines():
    text = "\n".join(
        [
            "...F",
            "FAILED tests/nn/test_x.py::test_y - AssertionError",
            "1 failed, 120 passed, 2 skipped in 41.20s",
            "========== 7 passed, 3 deselected in 2.01s ==========",
            "3 passed wasn't a summary line",
        ]
    )
    assert cp.pytest_summary(text) == {"failed": 1, "passed": 127, "skipped": 2, "deselected": 3}


CHILD = """
import pathlib, sys, time
me, other = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
me.touch()
start = time.monotonic()
while not other.exists():  # only returns if the other child runs at the same time
    if time.monotonic() - start > 30:
        sys.exit(3)
    time.sleep(0.01)
print("1 passed in 0.01s")
"""


def test_run_parallel_runs_the_commands_at_once(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    cmds = [[sys.executable, "-c", CHILD, str(a), str(b)], [sys.executable, "-c", CHILD, str(b), str(a)]]
    log = tmp_path / "tests.log"
    ok, line = cp.run_parallel(cmds, 60, tmp_path, {}, log)
    assert ok, line
    assert line.startswith("2 passed in ") and line.endswith(" s, 2 processes")
    assert log.read_text().splitlines().count("1 passed in 0.01s") == 2  # both outputs in the log


def test_run_parallel_kills_what_outlives_its_time(tmp_path):
    cmds = [
        [sys.executable, "-c", "print('4 passed in 0.1s')"],
        [sys.executable, "-c", "import time; time.sleep(60)"],
    ]
    start = time.monotonic()
    ok, line = cp.run_parallel(cmds, 3, tmp_path, {}, None)
    assert time.monotonic() - start < 30
    assert not ok
    assert line.startswith("stopped at the deadline after ") and "(4 passed by then)" in line


def test_the_triton_test_commands_and_their_environment(monkeypatch):
    import speed_cuda as sc

    files = {str(p.relative_to(ROOT)) for p in (ROOT / "tests" / "nn").glob("test_triton_*.py")}
    assert set(sc.TEST_FILES) == files - {"tests/nn/test_triton_speed_cli.py"}  # every kernel test, not this
    (xdist,) = sc.triton_test_commands("cuda", have_xdist=True, workers=8)
    assert xdist[xdist.index("-n") + 1] == "8" and xdist[-len(sc.TEST_FILES) :] == list(sc.TEST_FILES)
    per_file = sc.triton_test_commands("cuda", have_xdist=False, workers=8)
    assert [cmd[-1] for cmd in per_file] == list(sc.TEST_FILES)
    assert all(cmd[cmd.index("-p") + 1] == "no:cacheprovider" and "no:xdist" in cmd for cmd in per_file)
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    monkeypatch.setenv("PYTHONPATH", "elsewhere")
    env = sc.child_env("cuda")
    assert env["PYTHONPATH"].split(":") == [str(ROOT / "src"), "elsewhere"]
    assert env["RNNLAB_TRITON_TEST_DEVICE"] == "cuda" and "TRITON_INTERPRET" not in env


def canned(row: cp.Row) -> dict:
    """Stub timings: rnnlab at 1.2x of cuDNN, 1.5x at batch 1; LayerNormLSTM 12x faster than its loop."""
    if row.kind == "ln":
        return {"fwd": (12.0, 1.0), "f+b": (24.0, 2.0)}
    ratio = 1.5 if row.B == 1 else 1.2
    return {"fwd": (1.0, ratio), "f+b": (2.0, 2 * ratio)}


def test_report_targets_met_and_not_met(tmp_path):
    rows = full_plan()
    report = cp.Report(tmp_path / "r.md", ["# t"], rows, deadline_s=420)
    assert report.targets()[:3] == [
        "- forward + backward vs cuDNN (target median <= 1.25x): not measured",
        "- batch 1 (target no slower than cuDNN): not measured",
        "- LayerNormLSTM vs its Python loop (target >= 10x): not measured",
    ]
    report.tests = (True, "121 passed in 50 s, 1 process")
    report.results = [(r, canned(r)) for r in rows]
    report.finished, report.elapsed_s = True, 300.0
    lines = report.targets()
    assert lines[0].startswith(
        "- forward + backward vs cuDNN, median over 96 of 96 shapes (fp32 1.20x; bf16 1.20x)"
    )
    assert lines[0].endswith("**1.20x** (target <= 1.25x): **met**")
    assert lines[1].endswith("**1.50x** of cuDNN (target <= 1x): **NOT met**")
    assert lines[2].endswith("**12.0x** (target >= 10x): **met**")
    assert lines[3].endswith("**met**") and "100 of 100 rows" in lines[3]
    report.results = report.results[:10]  # a run cut short: its figures are over the rows it measured
    assert "median over 8 of 96 shapes" in report.targets()[0]
    report.tests = (False, "1 failed")  # wrong kernels make no speed: nothing is met
    assert all("**NOT met** (the triton tests failed: suspect)" in line for line in report.targets()[:3])


@pytest.fixture
def keep_tf32():
    """main turns TF32 off for its float32 rows: put the process's settings back afterwards."""
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def test_main_on_a_stub_device_rewrites_the_table_after_every_row(tmp_path, monkeypatch, capsys, keep_tf32):
    import speed_cuda as sc

    clock = FakeClock()
    out = tmp_path / "out" / "speed-cuda.md"
    written_before = []  # the table's measured rows at the start of each measurement

    def measure(row, device, T):
        assert (device, T) == ("cuda", sc.STEPS)
        assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32  # float32
        written_before.append(sum(line.endswith("x** |") for line in out.read_text().splitlines()))
        clock.now += 3.0
        return canned(row)

    def tests(cmds, budget, cwd, env, log):
        assert budget == pytest.approx(0.4 * 300) and env["RNNLAB_TRITON_TEST_DEVICE"] == "cuda"
        clock.now += 100.0
        return True, "121 passed in 100 s, 1 process"

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "Stub GPU")
    monkeypatch.setattr(sc, "Deadline", lambda seconds: cp.Deadline(seconds, clock))
    monkeypatch.setattr(sc, "run_parallel", tests)
    monkeypatch.setattr(sc, "measure", measure)
    monkeypatch.setattr(sc, "measure_ln", measure)
    args = argparse.Namespace(cuda_rehearsal=False, deadline=300.0, out=out, tests=True)
    sc.main(args)

    # 100 s of tests, then 3 s a row while the longest row (3 s) fits in what is left of 300 s
    n = len(written_before)
    assert n == (300 - 100) // 3 == 66
    assert written_before == list(range(n))  # each row was in the file before the next one started
    text = out.read_text()
    assert f"Status: 66 of {len(full_plan())} rows measured, finished in 298 s; **34 rows skipped**" in text
    assert "Skipped at the deadline: " in text and "Stub GPU" in text and "passed (121 passed" in text
    printed = capsys.readouterr().out.splitlines()
    targets = [line for line in printed if line.startswith("- ")]
    assert len(targets) == 4 and all(("**met**" in t) != ("**NOT met**" in t) for t in targets)
    assert targets[-1].endswith("**NOT met**")  # 34 rows missing: not a complete table
    assert sorted(p.name for p in out.parent.iterdir()) == ["speed-cuda.md"]  # no partial file left


def test_the_modules_import_only_what_the_device_image_has():
    """speed.py and speed_cuda.py import torch, numpy, triton (lazily), rnnlab.nn and the standard
    library: nothing of the tasks' or the server's extras, which the device machine lacks."""
    code = (
        "import sys; sys.path.insert(0, 'benchmarks'); import speed, speed_cuda; "
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules} - set(sys.stdlib_module_names))))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    third_party = {m for m in done.stdout.split() if not m.startswith("_")}
    torch_own = {"torch", "torchgen", "numpy", "typing_extensions", "sympy", "mpmath", "filelock", "jinja2",
                 "markupsafe", "fsspec", "networkx", "tqdm", "packaging"}  # fmt: skip
    assert third_party <= torch_own | {"rnnlab", "speed", "speed_cuda", "triton"}, third_party


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the script would run")
def test_speed_cuda_without_cuda_says_so_in_one_line(tmp_path):
    out = tmp_path / "speed-cuda.md"
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "speed.py"), "--device", "cuda", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"speed.py --device cuda: torch sees no CUDA device (torch {torch.__version__}, "
        f"CUDA build {torch.version.cuda})"
    ]
    assert not out.exists()


@pytest.mark.slow
def test_the_rehearsal_measures_every_row_on_the_cpu(tmp_path):
    """The real measuring code, CPU tensors through the interpreted kernels, toy shapes, no tests."""
    out = tmp_path / "speed-cuda.md"
    cmd = [sys.executable, "benchmarks/speed.py", "--cuda-rehearsal", "--no-tests", "--deadline", "300"]
    result = subprocess.run(
        [*cmd, "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    text = out.read_text()
    assert "Status: 5 of 5 rows measured, finished" in text
    assert text.count("| LSTM | fp32 | 1 |") == 2 and text.count("| GRU | fp32 | 1 |") == 2
    assert "| 2 | 8 | " in text  # the LayerNormLSTM row
    assert "The triton tests compiled on the device: not run." in text
    targets = [line for line in result.stdout.splitlines() if line.startswith("- ")]
    assert len(targets) == 4 and targets[-1].endswith("**NOT met**")  # no tests: not a complete run
