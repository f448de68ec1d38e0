"""Forecasting a series, end to end: config -> data -> model -> trainer -> scores beside classical baselines.

In Python::

    from rnnlab.tasks import forecast
    result = forecast.train(forecast.Config(), "runs/air")   # AirPassengers, the last 36 months held out
    forecast.evaluate("runs/air", backtest=3)                # MAPE / sMAPE / MASE, baselines, coverage
    Forecaster.from_checkpoint("runs/air").predict()         # the 36 months after the series, with quantiles

The series splits in time: ``train | valid | holdout``. The holdout is the last ``data.horizon`` points; the
validation part (``data.valid_size`` points, default H) comes before it and picks the epoch (early
stopping); the weights learn from targets before the validation part only, unless ``data.refit=true``
retrains them on train + valid for the chosen epoch count. The validation part also calibrates the interval
(``data.calibrate``, split conformal; see :mod:`rnnlab.tasks.forecast_fit`). The scaler is fitted on the
part before the holdout. Nothing of the holdout is seen in training, scaling, model selection or
calibration (tests change the holdout and check that the weights and the spread do not move).

A run folder holds ``config.json``, ``run.json`` (task, series, split with times and fingerprints),
``metrics.csv``, ``best/`` and ``last/``, and ``test_metrics.json`` (the holdout scores with the
baselines'). The ``run_*`` functions at the end are the command line's hooks (see :mod:`rnnlab.tasks`).
"""

from __future__ import annotations

import copy
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from rnnlab.data.collections import COLLECTIONS, collection_datasets, is_collection
from rnnlab.data.series import (
    FREQS,
    SCALINGS,
    SERIES_DATASETS,
    Scaler,
    Series,
    calendar_features,
    load_series,
    series_datasets,
)
from rnnlab.data.sources import DataError
from rnnlab.inference.forecaster import Forecaster
from rnnlab.models.baselines import forecast_all, pinball, point_scores
from rnnlab.models.forecaster import ForecasterConfig, RecurrentForecaster
from rnnlab.tasks import forecast_global, runs
from rnnlab.tasks.config import config_to_dict, validate
from rnnlab.tasks.forecast_collection_cli import (
    check_no_data,
    format_collection,
    is_collection_run,
    plot_collection_series,
    run_predict_collection,
)
from rnnlab.tasks.forecast_fit import WindowBatches, conformal_spread, refit_config, step, valid_metrics
from rnnlab.tasks.runs import RUN_FILES
from rnnlab.training import Trainer, TrainerConfig, load_checkpoint, save_checkpoint

__all__ = [
    "DataConfig",
    "ForecastConfig",
    "Config",
    "TrainResult",
    "train",
    "evaluate",
    "load_run_config",
    "load_run_series",
    "datasets",
    "RUN_FILES",
]

TASK = "forecast"
FORMATS = (".csv", ".parquet")
PATHS = ("data.dataset",)  # config keys that may hold file paths (stored resolved)
DERIVED = ("model.horizon", "model.num_features", "model.period")  # set by train() from the data
RENAMED: dict[str, str] = {}
TRAIN_SHORTCUTS = {"data": "data.dataset", "horizon": "data.horizon"}
MIN_ORIGINS = 8  # training windows needed at the least


@dataclass
class DataConfig:
    """Which series, how it splits in time, and how it becomes batches."""

    dataset: str = "airpassengers"  # a bundled series (airpassengers, co2, sunspots, elnino), a one-series
    # .csv path, a collection (m3-monthly, ..., see `rnnlab datasets`) or a long-format .csv/.parquet file
    # (columns id, time, value): a collection trains one model across its series (tasks.forecast_global)
    horizon: int | None = field(default=None, metadata={"min": 1})  # H: holdout and forecast length; None:
    # the data set's default (airpassengers 36, co2 52, sunspots 11, elnino 24; a CSV: 2 seasons or 12)
    valid_size: int | None = field(default=None, metadata={"min": 1})  # validation points before the
    # holdout; None: H
    time_column: str | None = None  # CSV: the time column (guessed when the file has exactly two columns)
    value_column: str | None = None  # CSV: the value column
    freq: str | None = field(
        default=None, metadata={"choices": tuple(FREQS)}
    )  # None: inferred from the times
    interpolate: bool = False  # CSV: fill missing values and gaps linearly (otherwise they are errors)
    scaling: str = field(default="auto", metadata={"choices": SCALINGS})  # auto: log for a growing positive
    # series, else standardise
    batch_size: int = field(default=32, metadata={"min": 1, "max": 4096})  # windows per optimizer step
    steps_per_epoch: int = field(default=40, metadata={"min": 1})  # optimizer steps per epoch (windows are
    # drawn at random, so an epoch is a number of steps, not a pass)
    refit: bool = False  # after early stopping picks the epoch count on valid, train a fresh model on the
    # targets of train + valid for that many epochs (see rnnlab.tasks.forecast_fit); off by default: measured
    # worse on AirPassengers (13.0 vs 11.8 % MAPE, seed 0), better on sunspots (MASE 0.877 vs 0.915)
    calibrate: bool = True  # scale the intervals so that they cover their level of the validation targets
    # (split conformal, scored by the model before the refit)
    # -- collections only (rnnlab.tasks.forecast_global) --
    lookbacks: str = "1.5,2"  # the look-back windows of the ensemble's groups, as multiples of H
    origins: float = field(default=5.0, metadata={"min": 0.5})  # training origins are drawn among the last
    # `origins` x H points of each series' fitting part (N-BEATS' L_H)
    baselines: str = "SeasonalNaive,Naive2,AutoETS,Theta"  # statsforecast models fitted beside the network
    # (comma-separated; empty: none), on the same split; AutoARIMA too is accepted (M3 monthly: over 10
    # minutes on 2 cores for the two splits, so not by default)
    combine: str = field(default="auto", metadata={"choices": ("auto", "none")})  # auto: keep the mean of
    # the network's median and statistical forecasts where it lowers the validation sMAPE
    jobs: int = field(default=2, metadata={"min": 1})  # processes fitting the statistical models


def _default_train() -> TrainerConfig:
    # Measured on AirPassengers (benchmarks/quality_forecast.py): see the results file there.
    return TrainerConfig(
        epochs=30,
        lr=3e-3,
        weight_decay=1e-3,
        grad_clip=1.0,
        lr_schedule="cosine",
        patience=10,
        monitor="valid_loss",
        monitor_mode="min",
    )


def _default_model() -> ForecasterConfig:
    return ForecasterConfig()


@dataclass
class ForecastConfig:
    """The whole task: data, model and training sections (``data.horizon=24``, ``model.cell=gru``, ...)."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ForecasterConfig = field(default_factory=_default_model)
    train: TrainerConfig = field(default_factory=_default_train)


Config = ForecastConfig  # the task's config root, under the name every task uses


@dataclass
class TrainResult:
    """What :func:`train` returns."""

    run_dir: Path
    best_epoch: int  # the epoch early stopping chose on the validation part (the refit's epoch count)
    valid_metrics: dict  # that epoch's row
    test_metrics: dict  # the holdout scores, with the baselines'
    history: list[dict]  # the selection's rows (train and valid loss per epoch)
    stopped_early: bool
    refit_history: list[dict] = field(default_factory=list)  # the refit's rows (train loss); [] without
    spread: tuple[float, float] = (1.0, 1.0)  # the calibrated (s_below, s_above)


def load_run_config(run_dir: str | Path) -> ForecastConfig:
    """The resolved config saved in a run folder (``config.json``)."""
    if not (Path(run_dir) / "config.json").is_file():
        raise DataError(f"{run_dir}: not a forecast run folder (no config.json)")
    return runs.load_config_file(ForecastConfig, Path(run_dir) / "config.json", RENAMED)


# -- data ----------------------------------------------------------------------------------------------------


@dataclass
class Split:
    """A series cut in time: ``[0, valid_start)`` train, ``[valid_start, test_start)`` valid, then the
    holdout."""

    series: Series
    horizon: int
    window: int
    valid_start: int
    test_start: int

    def info(self) -> dict:
        s, t = self.series, self.series.times

        def part(a: int, b: int) -> dict:
            record = runs.split_record([f"{t[i]}={s.values[i]!r}" for i in range(a, b)])
            return {**record, "start": str(t[a]), "end": str(t[b - 1])}

        return {
            "source": s.name,
            "freq": s.freq,
            "filled": s.filled,
            "train": part(0, self.valid_start),
            "valid": part(self.valid_start, self.test_start),
            "test": part(self.test_start, len(s)),
        }


def default_horizon(cfg: DataConfig, series: Series) -> int:
    if cfg.horizon is not None:
        return cfg.horizon
    if cfg.dataset in SERIES_DATASETS:
        return SERIES_DATASETS[cfg.dataset].horizon
    return 2 * series.period if series.period > 1 else 12


def default_window(series: Series) -> int:
    return 2 * series.period if series.period > 1 else 24


def make_split(series: Series, cfg: DataConfig, window: int | None) -> Split:
    """Cut ``series`` as ``cfg`` says; a user error when it is too short or constant."""
    H = default_horizon(cfg, series)
    V = cfg.valid_size or H
    W = window or default_window(series)
    n = len(series)
    need = W + MIN_ORIGINS + V + H
    if n < need:
        raise DataError(
            f"{series.name}: too short: {n} values, but window {W} + {MIN_ORIGINS} training targets + "
            f"validation {V} + horizon {H} need {need}; lower data.horizon, data.valid_size or model.window"
        )
    test_start = n - H
    valid_start = test_start - V
    before = series.values[:test_start]
    if np.ptp(before) == 0:
        raise DataError(f"{series.name}: constant series (every value before the holdout is {before[0]:g})")
    return Split(series, H, W, valid_start, test_start)


def load_run_series(cfg: DataConfig) -> Series:
    return load_series(cfg.dataset, cfg.time_column, cfg.value_column, cfg.freq, cfg.interpolate)


def train(
    config: ForecastConfig | None = None,
    run_dir: str | Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
) -> TrainResult:
    """Train a forecaster into ``run_dir``; returns the holdout scores beside the baselines'.

    Every check (config, run folder, device, data: too short, constant, irregular) runs before the first
    file is written, so a bad start leaves an earlier run as it was (see
    :class:`~rnnlab.tasks.runs.RunFolder`).
    """
    # config
    config = validate(copy.deepcopy(config or ForecastConfig()))
    cfg = config.data
    if is_collection(cfg.dataset):
        runs.check_device(config.train.device)
        runs.resolve_paths(config, PATHS, {*SERIES_DATASETS, *COLLECTIONS}, FORMATS)
        return forecast_global.train_collection(config, run_dir, resume, overwrite)
    run = runs.RunFolder(run_dir or runs.default_run_dir(TASK), resume, overwrite)
    runs.check_device(config.train.device)
    runs.resolve_paths(config, PATHS, SERIES_DATASETS, FORMATS)

    # data
    series = load_run_series(cfg)
    split = make_split(series, cfg, config.model.window)
    m = config.model
    m.window, m.horizon, m.period = split.window, split.horizon, series.period
    cal = calendar_features(series.times, series.freq)  # (T, F)
    m.num_features = cal.shape[1]
    if resume:
        runs.check_unchanged(config, load_run_config(run.path), ("data", "model"), run.path)
    scaler = Scaler.fit(series.values[: split.test_start], cfg.scaling)
    z = scaler.transform(series.values[: split.test_start])  # the holdout is never transformed here
    seed = config.train.seed
    W, H = split.window, split.horizon
    train_batches = WindowBatches(
        z, cal, np.arange(W, split.valid_start), W, H, split.valid_start, cfg.batch_size, cfg.steps_per_epoch,
        seed,
    )  # fmt: skip
    valid_batches = WindowBatches(
        z, cal, np.arange(split.valid_start, split.test_start), W, H, split.test_start, 256
    )
    meta = {
        "task": TASK,
        "config": config_to_dict(config),
        "scaler": scaler.to_dict(),
        "freq": series.freq,
        "tail": series.values[-W:].tolist(),  # predict() with no history continues the series
        "end": str(series.times[-1]),
    }

    def fresh_model() -> RecurrentForecaster:
        torch.manual_seed(seed)  # the refit starts from the same weights as the selection
        return RecurrentForecaster(m)

    def validation(mod, batches) -> dict:
        return runs.validation_row(valid_metrics(mod, batches))

    if cfg.refit:
        # 1. select the epoch count (a throwaway folder: only the refit's checkpoints make the run; a resumed
        # run selects again, deterministically, in seconds)
        model = fresh_model()
        with tempfile.TemporaryDirectory(prefix="rnnlab-forecast-select-") as tmp:
            selection = Trainer(config.train, tmp).fit(
                model, train_batches, valid_batches, step, validation, meta=meta, restore_best=True
            )
    with run:
        run.write_json("config.json", meta["config"])
        run.write_json("run.json", {"task": TASK, "data": split.info()})
        if not cfg.refit:
            model = fresh_model()
            fit = run.trainer(config.train, TASK).fit(
                model, train_batches, valid_batches, step, validation, meta=meta, resume=resume,
                restore_best=True,
            )  # fmt: skip
            selection = fit
        # 2. calibrate the interval on the validation part, with the model that has not learnt from it
        spread = conformal_spread(model, valid_batches) if cfg.calibrate else (1.0, 1.0)
        meta["selection"] = {
            "best_epoch": selection.best_epoch,
            "best_metrics": selection.best_metrics,
            "spread": list(spread),
            "history": selection.history,
        }
        if cfg.refit:
            # 3. refit on every target before the holdout, for the selected number of epochs
            all_batches = WindowBatches(
                z, cal, np.arange(W, split.test_start), W, H, split.test_start, cfg.batch_size,
                cfg.steps_per_epoch, seed,
            )  # fmt: skip
            model = fresh_model()
            model.set_spread(*spread)  # a buffer: saved with the weights, never trained
            fit = run.trainer(refit_config(config.train, selection.best_epoch), TASK).fit(
                model, all_batches, None, step, validation, meta=meta, resume=resume, restore_best=True
            )
        elif cfg.calibrate:
            model.set_spread(*spread)
            save_checkpoint(run.dir / "best", model, {**load_checkpoint(run.dir / "best").meta, **meta})
        # score
        model.eval()
        forecaster = Forecaster(model, scaler, series.freq, meta["tail"], meta["end"], config.train.device)
        test_metrics = score_origin(forecaster, series, split.test_start, split.horizon)
        run.write_json("test_metrics.json", test_metrics)
    return TrainResult(
        run.path,
        selection.best_epoch,
        selection.best_metrics,
        test_metrics,
        selection.history,
        selection.stopped_early,
        fit.history if cfg.refit else [],
        spread,
    )


# -- evaluation ----------------------------------------------------------------------------------------------


def score_origin(
    forecaster: Forecaster, series: Series, origin: int, horizon: int, details: bool = False
) -> dict:
    """The model's and the baselines' scores of the ``horizon`` values from ``origin``, the baselines fitted
    on ``series[:origin]`` and MASE scaled by the in-sample seasonal naive of that part. ``details``: also
    the model's ``quantiles`` (H, Q) and each baseline's ``forecast`` (H,), as arrays (for the plot)."""
    W = forecaster.config.window
    if origin < W:
        raise DataError(f"origin {origin}: the model reads {W} values before it; the series has {origin}")
    history, target = series.values[:origin], series.values[origin : origin + horizon]
    q = forecaster.forecast_windows(history[None, -W:], [series.times[origin - 1]])[0][
        : len(target)
    ]  # (H, Q)
    levels = forecaster.levels
    median = q[:, levels.index(0.5)]
    lo, hi = q[:, 0], q[:, -1]
    scores = point_scores(median, target, history, series.period)
    baselines = {}
    for name, b in forecast_all(history, len(target), series.period).items():
        if b["forecast"] is None:
            baselines[name] = {
                "mape": None,
                "smape": None,
                "mase": None,
                "model": b["model"],
                "note": b["note"],
            }
            continue
        baselines[name] = {**point_scores(b["forecast"], target, history, series.period), "model": b["model"]}
        if details:
            baselines[name]["forecast"] = b["forecast"]
        if b["note"]:
            baselines[name]["note"] = b["note"]
    fitted = {k: v for k, v in baselines.items() if v["mase"] is not None}
    return {
        **scores,
        **({"quantiles": q} if details else {}),
        "pinball": pinball(q, target, levels),
        "coverage": float(np.mean((target >= lo) & (target <= hi))),
        "interval": round(levels[-1] - levels[0], 6),
        "best_baseline": min(fitted, key=lambda k: fitted[k]["mase"]) if fitted else None,
        "baselines": baselines,
        "origin": str(series.times[origin]),
        "n": int(len(target)),
    }


def backtest_origins(split: Split, period: int, k: int) -> list[int]:
    """The ``k`` rolling origins before the holdout, latest first: the first one's H targets end where the
    holdout starts, each next one a season earlier (H earlier for a series without a season), so that no
    target is in the holdout; a user error when the series holds fewer."""
    step = min(split.horizon, period) if period > 1 else split.horizon
    first = split.test_start - split.horizon
    need = split.window + 2 * period  # the model's window, and two seasons for Holt-Winters and SARIMA
    fit = max(0, (first - need) // step + 1)
    if k > fit:
        raise DataError(
            f"--backtest {k}: at most {fit} origin{'s' * (fit != 1)} fit{'s' * (fit == 1)} before the "
            f"holdout (every {step} steps back from {split.series.times[first]}, each with {need} values "
            "before it)"
        )
    return [first - i * step for i in range(k)]


def evaluate(
    run_dir: str | Path, data: str | None = None, backtest: int = 0, per_series: bool = False
) -> dict:
    """Score a trained run on its holdout beside the baselines; ``backtest`` K also re-scores K rolling
    origins before it (see :func:`backtest_origins`; the model's weights stay those of the run, so the
    earlier origins overlap its training targets: they measure stability, not a clean holdout).

    Returns ``mape`` (percent), ``smape``, ``mase``, ``pinball``, ``coverage`` (of the outer interval),
    ``interval``, ``baselines`` ({name: {mape, smape, mase, model}}), ``best_baseline``, ``data`` and, with
    ``backtest``, ``backtest``: one such dict per origin and their ``backtest_mean``.
    """
    run_dir = Path(run_dir)
    if is_collection_run(run_dir):
        check_no_data(data, run_dir)
        if backtest:
            raise DataError("--backtest: a collection run is scored on its test parts only")
        return forecast_global.evaluate(run_dir, per_series=per_series)
    forecaster = Forecaster.from_checkpoint(run_dir)
    config = load_run_config(run_dir)
    if data is not None and data != config.data.dataset:
        raise DataError(
            f"--data {data}: a forecast run is scored on its own series' holdout ({config.data.dataset}); "
            "train another run for another series"
        )
    if not isinstance(backtest, int) or backtest < 0:
        raise DataError(f"--backtest: expected an integer >= 0, received {backtest!r}")
    runs.check_saved_paths(config, PATHS, run_dir / "config.json", SERIES_DATASETS)
    series = load_run_series(config.data)
    split = make_split(series, config.data, config.model.window)
    runs.check_split(run_dir, "test", [f"{t}={v!r}" for t, v in zip(series.times[split.test_start :],
                     series.values[split.test_start :], strict=True)], series.name)  # fmt: skip
    result = score_origin(forecaster, series, split.test_start, split.horizon)
    result["data"] = f"{series.name} (last {split.horizon} of {len(series)} {series.freq}ly values)"
    if backtest:
        origins = backtest_origins(split, series.period, backtest)
        rows = [score_origin(forecaster, series, o, split.horizon) for o in origins]
        result["backtest"] = rows
        result["backtest_mean"] = {
            "mape": float(np.mean([r["mape"] for r in rows])),
            "smape": float(np.mean([r["smape"] for r in rows])),
            "mase": float(np.mean([r["mase"] for r in rows])),
            "baselines": {
                name: {
                    key: float(np.mean([r["baselines"][name][key] for r in rows]))
                    if all(r["baselines"][name][key] is not None for r in rows)
                    else None
                    for key in ("mape", "smape", "mase")
                }
                for name in rows[0]["baselines"]
            },
        }
    return result


def datasets() -> list[dict]:
    """The bundled series and collections, and whether each can be used here."""
    return series_datasets() + collection_datasets()


# -- command-line hooks (see rnnlab.tasks) --------------------------------------------------------------

__all__ += ["CLI_OPTIONS", "TRAIN_EXAMPLES", "add_train_arguments", "format_evaluation", "run_evaluate",
            "run_plot_forecast", "run_predict", "summary"]  # fmt: skip

CLI_OPTIONS = (
    "backtest",
    "per_series",
    "predict_data",
)  # task options of evaluate / predict / plot this task takes
TRAIN_EXAMPLES = [
    "rnnlab train forecast --out runs/air",
    "rnnlab train forecast --data co2 --horizon 52 --out runs/co2 model.cell=gru",
    "rnnlab train forecast --data sales.csv --out runs/sales data.value_column=units data.interpolate=true",
    "rnnlab train forecast --data m3-monthly --out runs/m3m   # one model across 1,428 series",
]


def add_train_arguments(parser) -> None:
    """Options of ``rnnlab train forecast``; each is a shortcut for a ``data.*`` override."""
    parser.add_argument(
        "--data",
        help="airpassengers (default), co2, sunspots, elnino, a CSV file (time, value columns); or many "
        "series: a collection (m3-monthly, tourism-monthly, ...: rnnlab datasets) or a long-format "
        "CSV/Parquet file (id, time, value columns)",
    )
    parser.add_argument(
        "--horizon", type=int, help="H: the holdout and forecast length (default: the data set's own)"
    )


def _scores(r: dict) -> str:
    def fmt(v):
        return "   n/a" if v is None else f"{v:6.3f}"

    return f"{fmt(r['mape'])}  {fmt(r['smape'])}  {fmt(r['mase'])}"


def summary(result) -> str:
    """The holdout scores ``rnnlab train forecast`` prints after the run folder and best epoch."""
    t = result.test_metrics
    if "owa" in t or "combination" in t:  # a collection run
        return format_collection(t)
    return format_evaluation({**t, "data": f"holdout from {t['origin']} ({t['n']} values)"})


def format_evaluation(result: dict) -> str:
    """The model's and each baseline's MAPE / sMAPE / MASE, and the interval's coverage."""
    lines = [
        f"data:      {result['data']}",
        f"{'':<16}{'MAPE %':>6}  {'sMAPE':>6}  {'MASE':>6}",
        f"{'model':<16}{_scores(result)}   (pinball {result['pinball']:.4g}, "
        f"{result['interval']:.0%} interval covers {result['coverage']:.0%})",
    ]
    for name, b in result["baselines"].items():
        lines.append(f"{name:<16}{_scores(b)}   {b['model']}" + (f" [{b['note']}]" if b.get("note") else ""))
    if "backtest" in result:
        mean = result["backtest_mean"]
        origins = ", ".join(r["origin"] for r in result["backtest"])
        lines.append(f"backtest, mean of {len(result['backtest'])} origins ({origins}):")
        lines.append(f"{'model':<16}{_scores(mean)}")
        for name, b in mean["baselines"].items():
            lines.append(f"{name:<16}{_scores(b)}")
    return "\n".join(lines)


def run_evaluate(args) -> int:

    result = evaluate(args.run_dir, args.data, args.backtest or 0, bool(getattr(args, "per_series", None)))
    text = format_collection if is_collection_run(args.run_dir) else format_evaluation
    print(runs.to_json(result, args.run_dir) if args.json else text(runs.check_finite(result, args.run_dir)))
    return 0


def run_predict(args) -> int:

    if is_collection_run(args.run_dir):
        return run_predict_collection(args)
    if getattr(args, "predict_data", None):
        raise DataError(f"--data {args.predict_data}: a one-series run forecasts its own series only")
    if getattr(args, "texts", None):
        raise DataError(
            f"predict: a forecast run takes no texts (received {len(args.texts)}); it forecasts the "
            "horizon after its series"
        )
    forecaster = Forecaster.from_checkpoint(args.run_dir)
    r = runs.check_finite(forecaster.predict(), args.run_dir)
    if args.json:
        print(runs.to_json(r, args.run_dir))
        return 0
    levels = list(r["quantiles"])
    print("time\t" + "\t".join(f"q{level}" for level in levels))
    for i, time in enumerate(r["times"]):
        print(time + "\t" + "\t".join(f"{r['quantiles'][level][i]:.6g}" for level in levels))
    return 0


def run_plot_forecast(args) -> int:
    from rnnlab.viz.forecast import plot_run_forecast

    run_dir = Path(args.run_dir)
    if is_collection_run(run_dir):
        print(plot_collection_series(run_dir, getattr(args, "series", None), args.output))
        return 0
    if getattr(args, "series", None) is not None:
        raise DataError(f"--series {args.series}: {run_dir} is a one-series run")
    forecaster = Forecaster.from_checkpoint(run_dir)
    config = load_run_config(run_dir)
    series = load_run_series(config.data)
    split = make_split(series, config.data, config.model.window)
    scores = score_origin(forecaster, series, split.test_start, split.horizon, details=True)
    print(plot_run_forecast(forecaster, series, split.test_start, scores, args.output, title=str(run_dir)))
    return 0
