"""``benchmarks/speed.py --device cuda`` on a machine without CUDA: one clear line, a failing exit status."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.triton
ROOT = Path(__file__).resolve().parents[2]


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
