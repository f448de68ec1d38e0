"""Forecasting across many series: the default global run against statsforecast and neuralforecast, on the
competitions' own test parts.

For each collection and seed, trains exactly what ``rnnlab train forecast --data NAME`` trains (only
``train.seed`` changes) and prints one table: the run's sMAPE / MASE / OWA (mean and spread over seeds), the
network alone beside the combination that validation kept, the coverage of the 80 % and 95 % intervals, the
statistical forecasters fitted in the same run on the same training parts (statsforecast; Naive2 for OWA),
neuralforecast's LSTM and NHITS when their forecasts are given (``benchmarks/peers_forecast.py``), and the
time: the run's wall and CPU seconds, and the statistical models' fitting seconds.

    python benchmarks/quality_forecast_global.py                                # 3 seeds, four collections
    python benchmarks/quality_forecast_global.py --collections m3-monthly --seeds 1 --out -
    python benchmarks/quality_forecast_global.py --peers peers-m3-monthly.json  # with neuralforecast's

Every choice of a run is made on the validation parts carved from the training parts; the test parts are
read only by ``evaluate`` (see :mod:`rnnlab.tasks.forecast_global`).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from rnnlab.data.collections import load_collection
from rnnlab.models.stat_forecasters import forecast_collection
from rnnlab.tasks import forecast
from rnnlab.tasks.config import apply_overrides
from rnnlab.training.competition_metrics import score_collection

RESULTS = Path(__file__).parent / "results" / "quality_forecast_global.md"
REFERENCE = "Theta"  # the statistical model to beat (the targets of the issue)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime + children.ru_utime + children.ru_stime


def run_collection(name: str, seeds: int, overrides: list[str], keep: Path | None = None) -> dict:
    rows = []
    for seed in range(seeds):
        config = apply_overrides(
            forecast.Config(), [f"data.dataset={name}", f"train.seed={seed}", *overrides]
        )
        config.train.progress = False
        with tempfile.TemporaryDirectory() as tmp:
            folder = (keep / f"{Path(name).stem}-seed{seed}") if keep else Path(tmp) / "run"
            t0, c0 = time.perf_counter(), _cpu()
            result = forecast.train(config, folder, overwrite=True)
            wall, cpu = time.perf_counter() - t0, _cpu() - c0
        t = result.test_metrics
        rows.append(
            {**t, "wall": wall, "cpu": cpu, "best_epoch": result.best_epoch, "adapted": result.adapted}
        )
        print(
            f"  {name} seed {seed}: sMAPE {t['smape']:.3f} ({t['combination']}; "
            f"rnn alone {t['rnn']['smape']:.3f})"
            f" OWA {t.get('owa', float('nan')):.3f} coverage80 {t.get('coverage80', float('nan')):.3f} "
            f"({wall:.0f} s wall, {cpu:.0f} s CPU)",
            flush=True,
        )
    return {"name": name, "rows": rows}


def add_references(res: dict, models: list[str]) -> None:
    """Score statistical models the run did not fit (AutoARIMA by default) on the same test parts, into
    every seed's ``baselines`` (the fit is cached, so seeds share it)."""
    todo = [m for m in models if m not in res["rows"][0]["baselines"]]
    if not todo:
        return
    c = load_collection(res["name"])
    fitted = forecast_collection(c.train, c.horizon, c.period, models=("Naive2", *todo), levels=(80, 95))
    naive2 = fitted["Naive2"]["mean"]
    for m in todo:
        s = fitted[m]
        lo, hi = {k: s[f"lo{k}"] for k in (80, 95)}, {k: s[f"hi{k}"] for k in (80, 95)}
        r = score_collection(c.test, s["mean"], c.train, c.period, lo=lo, hi=hi, naive2=naive2)
        r.pop("per_series", None)
        for row in res["rows"]:
            row["baselines"][m] = {**r, "seconds": s.get("seconds"), "reference only": True}


def score_peers(path: Path, name: str) -> dict:
    """neuralforecast's forecasts (benchmarks/peers_forecast.py's JSON) scored like the run."""
    data = json.loads(path.read_text())
    if data.get("collection") != name or data.get("split") != "test":
        return {}
    c = load_collection(name)
    naive2 = forecast_collection(c.train, c.horizon, c.period, models=("Naive2",))["Naive2"]["mean"]
    out = {}
    for model, entry in data["models"].items():
        given = entry["forecasts"]  # {series id: (h,)}, or one list per series in the collection's order
        rows = [given[i] for i in c.ids] if isinstance(given, dict) else given
        f = [np.asarray(v, dtype=np.float64) for v in rows]
        r = score_collection(c.test, f, c.train, c.period, naive2=naive2)
        out[model] = {
            "cpu_seconds": entry.get("cpu_seconds"),
            "steps": entry.get("steps"),
            "smape": r["smape"],
            "mase": r["mase"],
            "owa": r["owa"],
            "seconds": entry.get("seconds"),
        }
    return out


def _plain(value):
    """JSON for what json does not know: arrays as lists, numpy numbers as floats."""
    return value.tolist() if isinstance(value, np.ndarray) else float(value)


def _ms(values: list[float]) -> str:
    a = np.asarray(values, dtype=np.float64)
    return f"{a.mean():.3f} ± {a.std(ddof=1):.3f}" if len(a) > 1 else f"{a.mean():.3f}"


def table(results: list[dict], peers: dict[str, dict], seeds: int) -> str:
    lines = [
        f"| collection | run sMAPE ({seeds} seeds) | run MASE | run OWA | kept | rnn alone sMAPE | "
        "rnn alone OWA | "
        "80 % / 95 % coverage | Theta sMAPE / OWA | AutoETS | AutoARIMA | SeasonalNaive | Naive2 | "
        "neuralforecast LSTM / NHITS sMAPE | run wall / CPU s | stat. models s |",
        "|" + "---|" * 17,
    ]
    for res in results:
        rows, name = res["rows"], res["name"]
        b = rows[0]["baselines"]

        def base(model: str, b=b) -> str:
            return f"{b[model]['smape']:.2f} / {b[model]['owa']:.3f}" if model in b else "-"

        p = peers.get(name, {})
        peer = " / ".join(f"{p[m]['smape']:.2f}" if m in p else "-" for m in ("LSTM", "NHITS"))
        kept = ", ".join(sorted({r["combination"] for r in rows}))
        stat_s = sum(v.get("seconds") or 0 for v in b.values() if not v.get("reference only"))
        lines.append(
            f"| {name} | {_ms([r['smape'] for r in rows])} | {_ms([r['mase'] for r in rows])} | "
            f"{_ms([r['owa'] for r in rows])} | {kept} | {_ms([r['rnn']['smape'] for r in rows])} | "
            f"{_ms([r['rnn']['owa'] for r in rows])} | "
            f"{np.mean([r['coverage80'] for r in rows]):.3f} / "
            f"{np.mean([r['coverage95'] for r in rows]):.3f} | "
            f"{base('Theta')} | {base('AutoETS')} | {base('AutoARIMA')} | {base('SeasonalNaive')} | "
            f"{base('Naive2')} | {peer} | {np.mean([r['wall'] for r in rows]):.0f} / "
            f"{np.mean([r['cpu'] for r in rows]):.0f} | {stat_s:.0f} |"
        )
    return "\n".join(lines)


def targets(results: list[dict], peers: dict[str, dict]) -> list[str]:
    """One met / not met line per target of the issue that this run measures."""
    out = []
    for res in results:
        rows, name = res["rows"], res["name"]
        theta = rows[0]["baselines"].get(REFERENCE)
        if theta is None:
            continue
        smape, owa = np.mean([r["smape"] for r in rows]), np.mean([r["owa"] for r in rows])
        pure = np.mean([r["rnn"]["smape"] for r in rows])
        if name == "m3-monthly":
            out.append(
                f"- M3 monthly sMAPE below Theta ({theta['smape']:.2f}): {smape:.2f} "
                f"({'met' if smape < theta['smape'] else 'not met'}; the network alone {pure:.2f})"
            )
            out.append(
                f"- M3 monthly at or below N-BEATS' 13.24 (the aim): {smape:.2f} "
                f"({'met' if smape <= 13.24 else 'not met'})"
            )
            cov = np.mean([r["coverage80"] for r in rows])
            out.append(
                f"- M3 monthly 80 % interval coverage in 75-85 %: {100 * cov:.1f} % "
                f"({'met' if 0.75 <= cov <= 0.85 else 'not met'})"
            )
            wall = max(r["wall"] for r in rows)
            out.append(
                f"- default training on M3 monthly within 10 minutes (longest seed, incl. the "
                f"statistical models): {wall / 60:.1f} min ({'met' if wall <= 600 else 'not met'})"
            )
            p = peers.get(name, {})
            for m in ("LSTM", "NHITS"):
                if m in p:
                    ok = smape < p[m]["smape"]
                    out.append(
                        f"- M3 monthly ahead of neuralforecast {m} ({p[m]['smape']:.2f}): {smape:.2f} "
                        f"({'met' if ok else 'not met'})"
                    )
                else:
                    out.append(f"- M3 monthly ahead of neuralforecast {m}: not measured in this run")
        else:
            out.append(
                f"- {name} OWA below Theta's ({theta['owa']:.3f}): {owa:.3f} "
                f"({'met' if owa < theta['owa'] else 'not met'}; the network alone "
                f"{np.mean([r['rnn']['owa'] for r in rows]):.3f})"
            )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collections", default="m3-monthly,m3-quarterly,m3-yearly,tourism-monthly")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--peers", nargs="*", default=[], help="peers_forecast.py JSON files (test split)")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads (2 cores: 2)")
    parser.add_argument("--out", default=str(RESULTS), help="results file, or - for stdout only")
    parser.add_argument("--keep", type=Path, help="keep the run folders here (default: discarded)")
    parser.add_argument(
        "--references", default="AutoARIMA", help="statistical models scored beside the run's own baselines"
    )
    parser.add_argument("overrides", nargs="*", help="KEY=VALUE applied to every run (none: the defaults)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    names = [n.strip() for n in args.collections.split(",") if n.strip()]
    results = [run_collection(n, args.seeds, args.overrides, args.keep) for n in names]
    for res in results:  # references that the run itself does not fit by default (cached, fitted once)
        add_references(res, [m for m in args.references.split(",") if m])
    peers: dict[str, dict] = {}
    for path in args.peers:
        for n in names:
            scored = score_peers(Path(path), n)
            if scored:
                peers.setdefault(n, {}).update(scored)
    text = "\n".join(
        [
            "# Forecasting across many series: the default global run beside statsforecast and "
            "neuralforecast",
            "",
            f"`python benchmarks/quality_forecast_global.py --seeds {args.seeds} --threads {args.threads}"
            + (f" {' '.join(args.overrides)}" if args.overrides else "")
            + "`, the competitions' test parts (read by evaluate only). sMAPE in percent, M4's definitions; "
            "OWA relative to Naive2. 'kept': the combination the validation parts chose.",
            "",
            table(results, peers, args.seeds),
            "",
            "Targets:",
            "",
            *targets(results, peers),
            "",
        ]
    )
    print(text)
    if args.out != "-":
        Path(args.out).write_text(text)
        json_path = Path(args.out).with_suffix(".json")
        json_path.write_text(json.dumps(results, indent=1, default=_plain))
    return 0


if __name__ == "__main__":
    sys.exit(main())
