"""Forecast quality: the default recurrent model against the classical baselines, on the same holdouts.

For each series (AirPassengers, co2, sunspots by default) and each seed, trains the task's default config
(only ``train.seed`` changes) with the series' default horizon held out, and prints one table: the model's
MAPE / MASE (mean and spread over seeds), the coverage of its 80 % interval, the baselines' MAPE / MASE
fitted in the same run on the same training part, and the training time (wall and CPU of this process).

    python benchmarks/quality_forecast.py                     # 3 seeds, the three series
    python benchmarks/quality_forecast.py --series airpassengers --seeds 1 --out -

The baselines are deterministic, so each series' are fitted once and reused for its other seeds. Torch runs
on one intra-op thread: the models are tiny, and more threads only add contention on a shared machine.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from rnnlab.tasks import forecast
from rnnlab.tasks.config import apply_overrides

RESULTS = Path(__file__).parent / "results" / "quality_forecast.md"


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_series(name: str, seeds: int, overrides: list[str]) -> dict:
    rows = []
    for seed in range(seeds):
        config = apply_overrides(
            forecast.Config(), [f"data.dataset={name}", f"train.seed={seed}", *overrides]
        )
        config.train.progress = False
        with tempfile.TemporaryDirectory() as tmp:
            t0, c0 = time.perf_counter(), _cpu()
            result = forecast.train(config, Path(tmp) / "run")
            wall, cpu = time.perf_counter() - t0, _cpu() - c0
        rows.append({**result.test_metrics, "wall": wall, "cpu": cpu, "epochs": len(result.history)})
        r = rows[-1]
        print(f"  {name} seed {config.train.seed}: MAPE {r['mape']:.2f} MASE {r['mase']:.3f} "
              f"coverage {r['coverage']:.2f} ({wall:.0f} s wall, {cpu:.0f} s CPU)", flush=True)  # fmt: skip
    return {"name": name, "rows": rows}


def table(results: list[dict], seeds: int) -> str:
    lines = [
        f"| series | H | model MAPE % (mean ± sd, {seeds} seeds) | model MASE | 80 % coverage | "
        "seasonal naive MAPE / MASE | drift | Holt-Winters | SARIMA | best baseline | "
        "beats all on MAPE / MASE | train wall / CPU s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        rows = r["rows"]
        mape = np.array([x["mape"] for x in rows])
        mase = np.array([x["mase"] for x in rows])
        cov = np.array([x["coverage"] for x in rows])
        b = rows[0]["baselines"]

        def cell(name, b=b):
            v = b[name]
            return "n/a" if v["mape"] is None else f"{v['mape']:.2f} / {v['mase']:.3f}"

        fitted = [v for v in b.values() if v["mape"] is not None]
        best_mape = min(v["mape"] for v in fitted)
        best_mase = min(v["mase"] for v in fitted)
        beats = f"{'yes' if mape.mean() < best_mape else 'no'} / {'yes' if mase.mean() < best_mase else 'no'}"
        lines.append(
            f"| {r['name']} | {rows[0]['n']} | {mape.mean():.2f} ± {mape.std():.2f} | {mase.mean():.3f} ± "
            f"{mase.std():.3f} | {cov.mean():.2f} | {cell('seasonal_naive')} | {cell('drift')} | "
            f"{cell('holt_winters')} | {cell('sarima')} | {rows[0]['best_baseline']} | {beats} | "
            f"{np.mean([x['wall'] for x in rows]):.0f} / {np.mean([x['cpu'] for x in rows]):.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", nargs="+", default=["airpassengers", "co2", "sunspots"])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", default=str(RESULTS), help="markdown file to write, or - for none")
    parser.add_argument("overrides", nargs="*", help="config overrides applied to every run (KEY=VALUE)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    # Baselines once per series: they depend on the training part only, which every seed shares.
    original = forecast.forecast_all
    memo: dict = {}

    def forecast_all(train, horizon, period):
        key = (train.tobytes(), horizon, period)
        if key not in memo:
            memo[key] = original(train, horizon, period)
        return memo[key]

    forecast.forecast_all = forecast_all
    results = []
    for name in args.series:
        results.append(run_series(name, args.seeds, args.overrides))
    text = table(results, args.seeds)
    print(text)
    if args.out != "-":
        header = (
            "# Forecast quality (benchmarks/quality_forecast.py)\n\n"
            f"Default config{' with ' + ' '.join(args.overrides) if args.overrides else ''}; holdout = the "
            "last H values of each series; baselines fitted on the same training part in the same run. "
            "Times are of this process on a machine shared with other jobs (wall time inflated by the load; "
            "CPU time is the process's own, one intra-op thread).\n\n"
        )
        Path(args.out).write_text(header + text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
