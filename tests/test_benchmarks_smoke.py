"""Smoke test for benchmarks/attention_cost.py: ``--quick`` runs end to end on the smallest sizes and writes
a table with a row per method and size. Timings are not asserted: they belong to the machine."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
POOLINGS = [
    "last",
    "mean",
    "attention_pooling",
    "additive",
    "dot",
    "general",
    "concat",
    "scaled_dot",
    "multi_head",
]
PASSES, MODES = ["forward", "forward+backward"], ["sequential", "parallel"]
QUICK_LSTM_LENGTHS, QUICK_SCAN_LENGTHS = ["8"], ["8", "32"]


def _tables(markdown: str) -> dict[str, list[list[str]]]:
    """Each ``## section``'s table body, as rows of stripped cells (header and rule rows dropped)."""
    tables: dict[str, list[list[str]]] = {}
    section = None
    for line in markdown.splitlines():
        if line.startswith("## "):
            section = line[3:]
            tables[section] = []
        elif line.startswith("|") and section is not None:
            row = [cell.strip() for cell in line.strip("|").split("|")]
            if row[0] not in ("T", "---"):
                tables[section].append(row)
    return tables


def test_attention_cost_quick_writes_a_row_per_method(tmp_path):
    out = tmp_path / "attention_cost.md"
    script = ROOT / "benchmarks" / "attention_cost.py"
    result = subprocess.run(
        [sys.executable, str(script), "--quick", "--threads", "1", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,  # a guard for a loaded machine; it takes a few seconds
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert [p.name for p in tmp_path.iterdir()] == ["attention_cost.md"]  # the temporary file was renamed
    text = out.read_text(encoding="utf-8")
    assert f"torch {torch.__version__}" in text and "torch threads 1" in text and "CPUs" in text

    tables = _tables(text)
    assert _tables(result.stdout) == tables  # what is printed is what is written
    classifier = tables["BiLSTM classifier, forward + backward per batch"]
    assert [row[:2] for row in classifier] == [[T, p] for T in QUICK_LSTM_LENGTHS for p in POOLINGS]
    scan = tables["minGRU, parallel scan vs sequential loop"]
    expected = [[T, p, m] for T in QUICK_SCAN_LENGTHS for p in PASSES for m in MODES]
    assert [row[:3] for row in scan] == expected
    # ratios are to a baseline measured in the same run: 1 for the baseline itself
    assert all(row[4] == "1.00" for row in classifier if row[1] == "last")
    assert all(row[5] == "1.00" for row in scan if row[2] == "sequential")


def _speed(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "speed.py"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,  # a guard for a loaded machine; it takes well under a minute
        check=False,
    )


def test_speed_quick_writes_a_row_per_cell_and_shape(tmp_path):
    out = tmp_path / "speed.md"
    result = _speed("--quick", "--no-memory", "--out", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    assert [p.name for p in tmp_path.iterdir()] == ["speed.md"]
    text = out.read_text(encoding="utf-8")
    assert "these numbers mean nothing" in text and f"torch {torch.__version__}" in text
    rows = [
        line.split("|")[1:-1] for line in text.splitlines() if line.startswith("| ") and "---" not in line
    ]
    layers = [[c.strip() for c in row[:2]] for row in rows if row[0].strip() in ("LSTM", "GRU", "RNN")]
    assert [cell for cell, _ in layers] == ["LSTM"] * 3 + ["GRU"] * 3 + ["RNN"] * 3
    for row in rows:
        if row[0].strip() in ("LSTM", "GRU", "RNN"):  # fast and readable times carry their ratio to torch.nn
            assert all("x**)" in row[i] for i in (3, 4, 6, 7)), row
    assert "- fwd+bwd, fast / torch.nn: median" in text
    assert "forward at batch >= 32" not in text  # the toy shapes have no such batch: no such line
    assert "samples/s" in text  # the sentiment task's throughput, rnnlab against torch.nn


def test_speed_cpu_time_refuses_two_threads():
    result = _speed("--cpu-time", "--threads", "1", "2")
    assert result.returncode == 2
    assert "--cpu-time measures one thread's work: use it with --threads 1" in result.stderr


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux's /proc high-water mark")
@pytest.mark.parametrize("impl", ["torch.nn", "fast", "readable"])
def test_speed_memory_child_reports_peak_and_saved_memory(impl):
    """One memory measurement (what the full run does per shape): the peak, and what autograd keeps for
    the backward, which for one LSTM layer is at least its output (B x T x H floats)."""
    shape = {
        "name": "t",
        "B": 4,
        "T": 50,
        "I": 8,
        "H": 64,
        "layers": 1,
        "bidirectional": False,
        "packed": False,
    }
    spec = json.dumps({"cell": "LSTM", "shape": shape, "impl": impl})
    result = _speed("--memory-child", spec)
    assert result.returncode == 0, result.stderr[-2000:]
    got = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(got) == {"peak", "saved"}
    assert got["peak"] >= 0
    assert got["saved"] >= 4 * 50 * 64 * 4 / 2**20, got
