"""The command line of a collection run (``rnnlab train forecast --data m3-monthly``): what ``train`` and
``evaluate`` print, and ``predict`` for the run's own series or for a file of series it has never seen.

:mod:`rnnlab.tasks.forecast`'s hooks call these when the run folder's ``run.json`` says ``"kind":
"collection"``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from rnnlab.data.collections import is_collection, load_collection
from rnnlab.data.series import load_series
from rnnlab.data.sources import DataError
from rnnlab.tasks import forecast_global, runs

__all__ = [
    "is_collection_run",
    "format_collection",
    "predict_collection",
    "run_predict_collection",
    "plot_collection_series",
]

_METRICS = ("smape", "mase", "owa", "coverage80", "msis80", "coverage95", "msis95")


def is_collection_run(run_dir: str | Path) -> bool:
    """Whether ``run_dir`` holds a run trained across a collection."""
    path = Path(run_dir) / "run.json"
    if not path.is_file():
        return False
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("kind") == "collection"
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        return False


def _row(name: str, r: dict) -> str:
    def fmt(key: str) -> str:
        v = r.get(key)
        return f"{'n/a':>8}" if v is None else f"{v:8.3f}"

    return f"{name:<30}" + "".join(fmt(k) for k in _METRICS)


def format_collection(result: dict) -> str:
    """The kept combination's, the network's and each baseline's M4 scores, one row each."""
    lines = [
        f"data:      {result['data']}",
        f"{'':<30}" + "".join(f"{k:>8}" for k in _METRICS),
        _row(f"model ({result['combination']})", result),
        _row("rnn alone", result["rnn"]),
    ]
    for name, b in result["baselines"].items():
        lines.append(_row(name, b))
    return "\n".join(lines)


def predict_collection(run_dir: str | Path, data: str | None = None) -> dict:
    """Quantiles after the end of each series: the run's own (training and test parts: the future of the
    whole series), or those of ``data`` (a long-format file, a collection's name, or a one-series CSV or
    bundled series), which the model may never have seen; with the combination the run kept, as
    ``evaluate`` scored it. Returns ``{"ids", "levels", "quantiles": one (H, Q) list per series,
    "combination"}``."""
    model, scaler, meta = forecast_global.load_model(run_dir)
    if data is None:
        cfg = meta["config"]["data"]
        c = load_collection(cfg["dataset"], cfg["horizon"], cfg["freq"])
        ids, histories = c.ids, [np.concatenate([a, b]) for a, b in zip(c.train, c.test, strict=True)]
    elif is_collection(data):
        c = load_collection(data)
        ids, histories = c.ids, [np.concatenate([a, b]) for a, b in zip(c.train, c.test, strict=True)]
    else:
        s = load_series(data)
        ids, histories = [s.name], [s.values]
    if scaler.log and any(float(np.min(h)) <= 0 for h in histories):
        bad = next(i for i, h in enumerate(histories) if float(np.min(h)) <= 0)
        raise DataError(
            f"series {ids[bad]!r}: holds values <= 0, but the run learnt log values (its collection is "
            "positive)"
        )
    q = forecast_global.forecast_combined(model, meta, histories, scaler.log)
    return {
        "ids": ids,
        "levels": list(model.levels),
        "quantiles": [a.tolist() for a in q],
        "combination": meta["selection"]["combination"],
    }


def run_predict_collection(args) -> int:
    r = predict_collection(args.run_dir, getattr(args, "predict_data", None))
    if args.json:
        print(runs.to_json(r, args.run_dir))
        return 0
    print("id\tstep\t" + "\t".join(f"q{level}" for level in r["levels"]))
    for sid, q in zip(r["ids"], r["quantiles"], strict=True):
        for step, row in enumerate(q, start=1):
            print(f"{sid}\t{step}\t" + "\t".join(f"{v:.6g}" for v in row))
    return 0


def check_no_data(data: str | None, run_dir) -> None:
    if data is not None:
        raise DataError(
            f"--data {data}: a collection run is scored on its own test parts; forecast other series with "
            f"rnnlab predict {run_dir} --data FILE"
        )


def plot_collection_series(run_dir: str | Path, series_id: str | None, output: str | Path) -> Path:
    """One series of a collection run: its training part, its test part, the run's forecast (the kept
    combination's point and the network's interval moved onto it) and Theta's, drawn over time steps."""
    from rnnlab.models.stat_forecasters import forecast_collection
    from rnnlab.viz.forecast import plot_dated_forecast

    if series_id is None:
        raise DataError(f"--series: a collection run ({run_dir}) draws one series; name its id")
    model, scaler, meta = forecast_global.load_model(run_dir)
    cfg = meta["config"]["data"]
    c = load_collection(cfg["dataset"], cfg["horizon"], cfg["freq"])
    i = c.index(series_id)
    x, y = c.train[i], c.test[i]
    q = forecast_global.forecast_series(model, [x], scaler.log)[0]  # (H, Q)
    levels = tuple(model.levels)
    combination = meta["selection"]["combination"]
    names = sorted({*forecast_global.COMBINATIONS[combination], "Theta"})
    stats = forecast_collection([x], c.horizon, c.period, models=tuple(names))
    point = forecast_global._combine(combination, [q[:, levels.index(0.5)]], stats)[0]
    q = q + (point - q[:, levels.index(0.5)])[:, None]  # the interval moves with the point
    values = np.concatenate([x, y])
    return plot_dated_forecast(
        np.arange(len(values)), values, len(x), q[: len(y)], levels, output,
        baseline=("Theta", stats["Theta"]["mean"][0][: len(y)]),
        title=f"{c.name}: {series_id} ({combination})",
    )  # fmt: skip
