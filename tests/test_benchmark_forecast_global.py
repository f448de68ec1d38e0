"""Smoke test of benchmarks/quality_forecast_global.py on a tiny long-format collection: it trains what the
task trains, prints one row per collection with the baselines beside the run, and a met / not met line for the
OWA target. The figures themselves belong to the real benchmark."""

from __future__ import annotations

from pathlib import Path

from benchmark_loading import load_benchmark
from tiny_series import write_collection

ROOT = Path(__file__).resolve().parents[1]


def _benchmark():
    return load_benchmark("quality_forecast_global")


def test_the_benchmark_prints_the_run_beside_the_baselines(tmp_path, capsys, monkeypatch):
    import rnnlab.data.sources

    monkeypatch.setattr(rnnlab.data.sources, "cache_dir", lambda: tmp_path / "cache")  # not the user's cache
    data = write_collection(tmp_path / "long.csv", n=5)
    out = tmp_path / "result.md"
    tiny = ["data.horizon=6", "data.baselines=Naive2,SeasonalNaive,Theta", "data.jobs=1"]
    tiny += ["data.batch_size=16", "data.steps_per_epoch=2", "model.hidden_size=4", "model.ensemble=1"]
    args = [
        "--collections",
        str(data),
        "--seeds",
        "2",
        "--threads",
        "1",
        "--out",
        str(out),
        "--references",
        "",
    ]
    args += ["train.epochs=1"]
    assert _benchmark().main(args + tiny) == 0
    text = out.read_text()
    rows = [line for line in text.splitlines() if line.startswith(f"| {data}")]
    assert len(rows) == 1
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    assert "±" in cells[1]  # mean ± sd over the two seeds
    assert cells[8] != "-" and cells[12] != "-"  # Theta and Naive2 fitted beside it
    assert f"- {data} OWA below Theta's" in text and ("(met" in text or "(not met" in text)
    assert out.with_suffix(".json").is_file()
