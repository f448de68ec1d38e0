"""Forecasting a collection of series with one model: select -> calibrate -> combine -> refit -> evaluate.

``rnnlab train forecast --data m3-monthly`` (or a long-format file ``id,time,value``) comes here from
:func:`rnnlab.tasks.forecast.train`. Each series' training part splits in time as ``fit | valid``, the
validation part being its last H values; the test part (the competition's ``xx``, or a file's last H values)
is read by :func:`evaluate` only::

    1. select:    a GlobalForecaster fitted on every series' `fit` part; the epoch is chosen by the
                  validation sMAPE (early stopping)                      -> run/select/
    2. calibrate: its quantiles on the validation parts -> the spread (split conformal, forecast_fit)
    3. combine:   its medians beside the statistical forecasts (statsforecast, fitted on `fit` only) on the
                  validation parts; the combination with the lowest validation sMAPE is kept ("rnn" alone
                  when none is lower)
    4. refit:     a fresh model on the whole training parts for the chosen epoch count -> run/best, run/last
    5. evaluate:  forecasts of the test parts, scored with M4's sMAPE, MASE and OWA beside every baseline

Every choice is made on the validation parts; changing a test value changes no weight and no choice (tested).
The combination is a plain mean of the network's median and the chosen statistical forecasts (most of M4's
leading entries were combinations; Makridakis et al. 2020), reported beside the network alone.
"""

from __future__ import annotations

import contextlib
import copy
import os
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from rnnlab.data.collections import Collection, load_collection
from rnnlab.data.sources import DataError
from rnnlab.models.forecaster import ForecasterConfig, pinball_loss
from rnnlab.models.global_forecaster import GlobalForecaster
from rnnlab.tasks import runs
from rnnlab.tasks.config import config_to_dict, validate
from rnnlab.tasks.forecast_fit import MIN_SPREAD, _conformal_quantile, refit_config
from rnnlab.tasks.forecast_windows import CollectionScaler, SeriesWindows, windows_at
from rnnlab.training import load_checkpoint, save_checkpoint
from rnnlab.training.competition_metrics import score_collection, smape

__all__ = [
    "COMBINATIONS",
    "GlobalResult",
    "apply_collection_defaults",
    "train",
    "train_collection",
    "evaluate",
    "load_model",
    "forecast_series",
    "lookback_windows",
]

TASK = "forecast"
STAT_MODELS = ("SeasonalNaive", "Naive2", "AutoETS", "Theta", "AutoARIMA")
# the candidate combinations: the network's median alone, or its plain mean with statistical forecasts
COMBINATIONS: dict[str, tuple[str, ...]] = {
    "rnn": (),
    "rnn+Theta": ("Theta",),
    "rnn+Theta+AutoETS": ("Theta", "AutoETS"),
    "rnn+Theta+AutoETS+AutoARIMA": ("Theta", "AutoETS", "AutoARIMA"),
}

# What a collection changes of the one-series defaults where the user left them (apply_collection_defaults)
COLLECTION_DEFAULTS = {
    "model.hidden_size": (32, 64),
    "model.ensemble": (5, 2),
    "model.quantiles": ("0.1,0.5,0.9", "0.025,0.1,0.5,0.9,0.975"),  # the 80 % and 95 % intervals (MSIS)
    "data.batch_size": (32, 256),
    "data.steps_per_epoch": (40, 100),
    "train.epochs": (30, 12),  # M3 monthly's validation sMAPE is best near epoch 6 (benchmarks/results)
    "train.patience": (10, 3),
}


@dataclass
class GlobalResult:
    """What :func:`train` returns for a collection."""

    run_dir: Path
    best_epoch: int
    valid_metrics: dict
    test_metrics: dict
    history: list[dict]
    stopped_early: bool
    refit_history: list[dict] = field(default_factory=list)
    spread: tuple[float, float] = (1.0, 1.0)
    combination: str = "rnn"
    adapted: dict = field(default_factory=dict)


def _get(config, key: str):
    section, name = key.split(".")
    return getattr(getattr(config, section), name)


def apply_collection_defaults(config) -> dict:
    """Set the collection's defaults (:data:`COLLECTION_DEFAULTS`) where ``config`` holds the one-series
    default; a value the user changed wins. Returns ``{key: (old, new)}`` of what was adapted."""
    adapted = {}
    for key, (single, many) in COLLECTION_DEFAULTS.items():
        if _get(config, key) == single:
            section, name = key.split(".")
            setattr(getattr(config, section), name, many)
            adapted[key] = (single, many)
    return adapted


def lookback_windows(spec: str, horizon: int) -> list[int]:
    """``data.lookbacks`` ("1.5,2": multiples of H) -> the groups' windows in steps (at least 2 each)."""
    try:
        multiples = [float(p) for p in spec.split(",")]
    except ValueError:
        raise DataError(
            f"data.lookbacks: expected multiples of the horizon such as 1.5,2, received {spec!r}"
        ) from None
    if not multiples or any(m <= 0 for m in multiples):
        raise DataError(f"data.lookbacks: expected positive multiples of the horizon, received {spec!r}")
    return sorted({max(2, round(m * horizon)) for m in multiples})


# -- fitting ---------------------------------------------------------------------------------------------


def _step(model: GlobalForecaster, batch) -> torch.Tensor:
    """Pinball loss of every member's uncalibrated quantiles (masked beyond each series' stop)."""
    x, observed, y, mask = batch
    levels = model.module.levels if hasattr(model, "module") else model.levels  # DDP wraps the model
    return pinball_loss(model(x, observed, members=True), y, levels, mask)


def _medians(model: GlobalForecaster, z, origins, scaler: CollectionScaler) -> list[np.ndarray]:
    """The network's calibrated quantiles (H, Q) in each series' units, after ``origins[i]`` values."""
    model.eval()
    x, observed = windows_at(z, np.arange(len(z)), np.asarray(origins), model.config.window)
    with torch.no_grad():
        q = model(torch.from_numpy(x), torch.from_numpy(observed)).double().numpy()  # (N, H, Q)
    return [np.sort(scaler.inverse(i, q[i]), axis=-1) for i in range(len(z))]


def _validation(c: Collection, scaler, z, stops):
    """``eval_fn`` of the trainer: the validation sMAPE of the median (what picks the epoch) and the
    pinball loss in the scaled space."""
    H = c.horizon
    targets = [t[-H:] for t in c.train]

    def eval_fn(model, batches) -> dict:
        q = _medians(model, z, stops, scaler)
        i = model.median_index
        s = float(np.mean([smape(y, f[: len(y), i]).mean() for y, f in zip(targets, q, strict=True)]))
        loss, n = 0.0, 0
        for x, observed, y, mask in batches:
            loss += pinball_loss(model(x, observed), y, model.levels, mask).item() * int(mask.sum())
            n += int(mask.sum())
        return {"loss": loss / max(n, 1), "smape": s}

    return eval_fn


def _spread(model: GlobalForecaster, c: Collection, z, stops, scaler) -> tuple[float, float]:
    """Split-conformal scale of the outer interval on the validation parts (see forecast_fit)."""
    levels, i = model.levels, model.median_index
    model.set_spread(1.0, 1.0)
    if i == 0 or i == len(levels) - 1:
        return 1.0, 1.0
    model.eval()
    x, observed = windows_at(z, np.arange(len(z)), stops, model.config.window)
    with torch.no_grad():
        q = model(torch.from_numpy(x), torch.from_numpy(observed)).double().numpy()  # (N, H, Q)
    scores = []
    for n, t in enumerate(c.train):
        y = scaler.transform(n, t[stops[n] :])  # (h,)
        m, lo, hi = q[n, : len(y), i], q[n, : len(y), 0], q[n, : len(y), -1]
        scores.append(np.maximum((y - m) / (hi - m), (m - y) / (m - lo)))
    s = max(_conformal_quantile(np.concatenate(scores), levels[-1] - levels[0]), MIN_SPREAD)
    return s, s


def _stat_forecasts(parts: list[np.ndarray], c: Collection, names, n_jobs: int) -> dict:
    from rnnlab.models.stat_forecasters import forecast_collection

    return forecast_collection(
        parts, c.horizon, c.period, models=tuple(names), levels=(80, 95), n_jobs=n_jobs
    )


def _combine(name: str, rnn: list[np.ndarray], stats: dict) -> list[np.ndarray]:
    """The combination's point forecasts: the plain mean of the network's median and the chosen models'."""
    parts = [rnn] + [stats[m]["mean"] for m in COMBINATIONS[name]]
    return [np.mean([p[i][: len(rnn[i])] for p in parts], axis=0) for i in range(len(rnn))]


def _choose(rnn_valid, stats_valid, targets, allowed) -> tuple[str, dict]:
    """The combination with the lowest validation sMAPE, and every candidate's figure."""
    figures = {}
    for name, members in COMBINATIONS.items():
        if not all(m in stats_valid for m in members) or (name != "rnn" and not allowed):
            continue
        f = _combine(name, rnn_valid, stats_valid)
        figures[name] = float(
            np.mean([smape(y, p[: len(y)]).mean() for y, p in zip(targets, f, strict=True)])
        )
    return min(figures, key=figures.get), figures


def _scaled(c: Collection, parts, scaling: str):
    scaler = CollectionScaler.fit(parts, scaling)
    return scaler, [scaler.transform(i, p).astype(np.float32) for i, p in enumerate(parts)]


def _fit(run, config, c: Collection, windows, scaler, z, meta, resume, subdir, valid):
    """One fitting step: a fresh GlobalForecaster (seeded) trained on the scaled series ``z``; with
    ``valid`` (where each series' validation part starts) only on the values before it, early-stopped on
    the validation sMAPE."""
    cfg, H = config.data, c.horizon
    torch.manual_seed(config.train.seed)
    model = GlobalForecaster(config.model, windows)
    stops = valid if valid is not None else np.array([len(t) for t in z])
    batches = SeriesWindows(
        z, stops, model.config.window, H, cfg.batch_size, cfg.steps_per_epoch, cfg.origins * H,
        seed=config.train.seed,
    )  # fmt: skip
    if valid is not None:  # the validation targets follow each fitting part
        valid_batches = SeriesWindows(z, [len(t) for t in z], model.config.window, H, 512, origins=stops)
        eval_fn = _validation(c, scaler, z, stops)
        tcfg = replace(config.train, monitor="smape", monitor_mode="min")
    else:
        valid_batches, eval_fn = None, None
        tcfg = config.train
    # resume the step where it has a checkpoint (a run stopped during selection has no refit yet)
    again = resume and (run.dir / (subdir or ".") / "last").is_dir()
    fit = run.trainer(tcfg, TASK, subdir).fit(
        model, batches, valid_batches, _step, eval_fn or (lambda m, b: {}), meta=meta, resume=again,
        restore_best=True,
    )  # fmt: skip
    return model, fit


def train_collection(config, run_dir=None, resume: bool = False, overwrite: bool = False):
    """:func:`train` after the collection's defaults where the user left the one-series ones (said on
    stderr, recorded in run.json); what :func:`rnnlab.tasks.forecast.train` calls for a collection."""
    adapted = apply_collection_defaults(config)
    if adapted and config.train.progress:
        shown = ", ".join(f"{k}={new}" for k, (_, new) in adapted.items())
        print(f"forecast: a collection: {shown} (defaults for many series; set a key to keep yours)",
              file=sys.stderr)  # fmt: skip
    return train(validate(config), run_dir, resume, overwrite, adapted)


@contextlib.contextmanager
def _process_group(device: str):
    """Under torchrun, one process group for every step of the run (the trainer joins it), so that the
    ranks can wait for rank 0's files between the steps."""
    create = int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized()
    if create:
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
    try:
        yield
    finally:
        if create:
            dist.destroy_process_group()


def _barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def train(config, run_dir=None, resume: bool = False, overwrite: bool = False, adapted: dict | None = None):
    """Train one model across the collection ``config.data.dataset`` (see the module docstring)."""
    with _process_group(config.train.device):
        return _train(config, run_dir, resume, overwrite, adapted)


def _train(config, run_dir, resume: bool, overwrite: bool, adapted: dict | None):
    config = copy.deepcopy(config)
    run = runs.RunFolder(run_dir or runs.default_run_dir(TASK), resume, overwrite)
    cfg = config.data
    c = load_collection(cfg.dataset, cfg.horizon, cfg.freq)
    H = c.horizon
    short = [i for i, t in enumerate(c.train) if len(t) < H + 2]
    if short:
        raise DataError(
            f"{c.name}: {len(short)} series have fewer than horizon + 2 = {H + 2} training values "
            f"(e.g. {c.ids[short[0]]!r}): no validation part can be carved from them"
        )
    windows = lookback_windows(cfg.lookbacks, H)
    m = config.model
    m.horizon, m.period, m.window, m.num_features = H, c.period, max(windows), 1
    if resume:  # the saved config, read as the task's own config class
        saved = runs.load_config_file(type(config), run.path / "config.json")
        runs.check_unchanged(config, saved, ("data", "model"), run.path)
    stops = np.array([len(t) - H for t in c.train])  # the fitting parts end where the validation parts start
    fit_scaler = CollectionScaler.fit([t[:-H] for t in c.train], cfg.scaling)  # fitted before valid
    z_sel = [fit_scaler.transform(i, t).astype(np.float32) for i, t in enumerate(c.train)]
    scaler, z = _scaled(c, c.train, cfg.scaling)
    record = {
        "task": TASK,
        "config": config_to_dict(config),
        "collection": {"name": c.name, "series": len(c), "fingerprint": c.fingerprint(), "horizon": H,
                       "period": c.period, "freq": c.freq},
        "windows": windows,
    }  # fmt: skip
    progress = config.train.progress
    with run:
        run.write_json("config.json", record["config"])
        run.write_json("run.json", {"task": TASK, "kind": "collection", "data": record["collection"],
                                    "adapted": {k: list(v) for k, v in (adapted or {}).items()}})  # fmt: skip
        # 1. select
        sel_meta = {**record, "scaler": fit_scaler.to_dict(), "step": "select"}
        model, selection = _fit(run, config, c, windows, fit_scaler, z_sel, sel_meta, resume, "select", stops)
        # 2. calibrate
        spread = _spread(model, c, z_sel, stops, fit_scaler) if cfg.calibrate else (1.0, 1.0)
        model.set_spread(*spread)
        # 3. combine, on the validation parts only
        rnn_valid = [q[:, model.median_index] for q in _medians(model, z_sel, stops, fit_scaler)]
        names = [n for n in STAT_MODELS if n in cfg.baselines.split(",")] if cfg.baselines else []
        stats_valid = _stat_forecasts([t[:-H] for t in c.train], c, names, cfg.jobs) if names else {}
        combination, figures = _choose(
            rnn_valid, stats_valid, [t[-H:] for t in c.train], cfg.combine == "auto"
        )
        if progress:
            shown = ", ".join(f"{k} {v:.3f}" for k, v in figures.items())
            print(f"forecast: validation sMAPE: {shown}; kept {combination}", file=sys.stderr)
        choice = {
            "best_epoch": selection.best_epoch,
            "best_metrics": selection.best_metrics,
            "spread": list(spread),
            "combination": combination,
            "validation_smape": figures,
        }
        # 4. refit on the whole training parts for the chosen epoch count
        meta = {**record, "scaler": scaler.to_dict(), "selection": choice, "step": "refit"}
        refit = refit_config_for(config, selection.best_epoch)
        model, fit = _fit(run, refit, c, windows, scaler, z, meta, resume, None, None)
        model.set_spread(*spread)
        if run.writer:
            save_checkpoint(run.dir / "best", model, {**load_checkpoint(run.dir / "best").meta, **meta})
        run.write_json("selection.json", choice)
        _barrier()  # every rank reads rank 0's best/ below
        # 5. evaluate (the test parts are read here, after every choice)
        test_metrics = evaluate(run.dir, collection=c)
        run.write_json("test_metrics.json", test_metrics)
    return GlobalResult(
        run.path, selection.best_epoch, selection.best_metrics, test_metrics, selection.history,
        selection.stopped_early, fit.history, spread, combination, adapted or {},
    )  # fmt: skip


def refit_config_for(config, epochs: int):
    """The config of the refit: the selected epoch count, monitored on the training loss."""
    out = copy.deepcopy(config)
    out.train = refit_config(config.train, epochs)
    return out


# -- using a run -----------------------------------------------------------------------------------------


def load_model(run_dir: str | Path) -> tuple[GlobalForecaster, CollectionScaler, dict]:
    """The refitted model of a collection run (its ``best/``), its scaler and its meta."""
    ckpt = load_checkpoint(Path(run_dir) / "best")
    meta = ckpt.meta
    model = GlobalForecaster(ForecasterConfig.from_dict(meta["config"]["model"]), meta["windows"])
    model.load_state_dict(ckpt.state_dict, strict=True)
    model.eval()
    return model, CollectionScaler.from_dict(meta["scaler"]), meta


def forecast_series(model: GlobalForecaster, histories: list[np.ndarray], log: bool) -> list[np.ndarray]:
    """Quantiles (H, Q) after each history, for series the run may never have seen: each is scaled on its
    own (log, or over its mean absolute value, as the run was trained)."""
    scaler = CollectionScaler.fit(
        [np.asarray(h, dtype=np.float64) for h in histories], "log" if log else "none"
    )
    z = [scaler.transform(i, h).astype(np.float32) for i, h in enumerate(histories)]
    return _medians(model, z, [len(h) for h in z], scaler)


def forecast_combined(
    model: GlobalForecaster, meta: dict, histories: list[np.ndarray], log: bool, cache: bool = True
) -> list[np.ndarray]:
    """What the run forecasts after each history (H, Q): the network's quantiles, moved with its median onto
    the point forecast of the combination the run kept (``meta["selection"]["combination"]``: the mean of
    the network's median and Theta's / AutoETS' forecasts of the same history), as :func:`evaluate` scores
    it. ``cache``: keep the statistical forecasts in the disk cache (not for a server's requests)."""
    q = forecast_series(model, histories, log)
    members = COMBINATIONS[meta["selection"]["combination"]]
    if not members:
        return q
    from rnnlab.models.stat_forecasters import forecast_collection

    median = list(model.levels).index(0.5)
    rnn = [a[:, median] for a in q]
    period = int(meta["collection"]["period"])
    stats = forecast_collection(histories, q[0].shape[0], period, models=members, levels=(80,), cache=cache)
    point = _combine(meta["selection"]["combination"], rnn, stats)
    return [a + (p - r)[:, None] for a, p, r in zip(q, point, rnn, strict=True)]


def evaluate(run_dir: str | Path, per_series: bool = False, collection: Collection | None = None) -> dict:
    """Score a collection run on the test parts beside the statistical forecasters (M4's sMAPE, MASE and
    OWA, Naive2-relative; coverage and MSIS of the 80 % and 95 % intervals). Top-level figures are the kept
    combination's; ``rnn`` holds the network alone, ``baselines`` each statistical model."""
    run_dir = Path(run_dir)
    model, scaler, meta = load_model(run_dir)
    cfg = meta["config"]["data"]
    c = collection or load_collection(cfg["dataset"], cfg["horizon"], cfg["freq"])
    if c.fingerprint() != meta["collection"]["fingerprint"]:
        raise DataError(f"{c.name}: its series changed since the run was trained (fingerprints differ)")
    z = [scaler.transform(i, t).astype(np.float32) for i, t in enumerate(c.train)]
    q = _medians(model, z, [len(t) for t in z], scaler)  # (H, Q) per series
    levels = list(model.levels)
    i = levels.index(0.5)
    rnn = [a[:, i] for a in q]
    names = [n for n in STAT_MODELS if n in cfg["baselines"].split(",")] if cfg["baselines"] else []
    stats = _stat_forecasts(c.train, c, names, cfg.get("jobs", 1)) if names else {}
    combination = meta["selection"]["combination"]
    point = _combine(combination, rnn, stats)
    naive2 = stats["Naive2"]["mean"] if "Naive2" in stats else None

    def intervals(shift):
        out = {}
        for lo_level, hi_level, key in ((0.1, 0.9, 80), (0.025, 0.975, 95)):
            if lo_level in levels and hi_level in levels:
                a, b = levels.index(lo_level), levels.index(hi_level)
                out[key] = ([x[:, a] + s for x, s in zip(q, shift, strict=True)],
                            [x[:, b] + s for x, s in zip(q, shift, strict=True)])  # fmt: skip
        return out

    def scored(forecasts, bands, with_series=False) -> dict:
        lo, hi = {k: b[0] for k, b in bands.items()}, {k: b[1] for k, b in bands.items()}
        r = score_collection(c.test, forecasts, c.train, c.period, lo=lo, hi=hi, naive2=naive2)
        if not with_series:
            r.pop("per_series", None)
        return r

    # the combination's interval: the network's, moved with its median onto the combined point
    shift = [p - r for p, r in zip(point, rnn, strict=True)]
    result = scored(point, intervals(shift), per_series)
    result["rnn"] = scored(rnn, intervals([np.zeros_like(r) for r in rnn]))
    result["baselines"] = {}
    for name, s in stats.items():
        bands = {k: (s[f"lo{k}"], s[f"hi{k}"]) for k in (80, 95) if f"lo{k}" in s}
        result["baselines"][name] = {**scored(s["mean"], bands), "seconds": s.get("seconds")}
    result["combination"] = combination
    result["data"] = f"{c.name} ({len(c)} series, horizon {c.horizon}, test parts)"
    if per_series:
        result["ids"] = c.ids
    return _plain(result)


def _plain(value):
    """Arrays and numpy numbers as lists and floats (the result is JSON)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
