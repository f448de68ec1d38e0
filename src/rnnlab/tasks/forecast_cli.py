"""The forecast task's command-line hooks (see :mod:`rnnlab.tasks`): they call :mod:`rnnlab.tasks.forecast`
and print what it returns."""

from __future__ import annotations

from pathlib import Path

from rnnlab.data.sources import DataError
from rnnlab.tasks import runs

__all__ = [
    "CLI_OPTIONS",
    "TRAIN_EXAMPLES",
    "add_train_arguments",
    "summary",
    "format_evaluation",
    "run_evaluate",
    "run_predict",
    "run_plot_forecast",
]

CLI_OPTIONS = ("backtest",)  # task options of evaluate / predict / plot this task takes
TRAIN_EXAMPLES = [
    "rnnlab train forecast --out runs/air",
    "rnnlab train forecast --data co2 --horizon 52 --out runs/co2 model.cell=gru",
    "rnnlab train forecast --data sales.csv --out runs/sales data.value_column=units data.interpolate=true",
]


def add_train_arguments(parser) -> None:
    """Options of ``rnnlab train forecast``; each is a shortcut for a ``data.*`` override."""
    parser.add_argument(
        "--data", help="airpassengers (default), co2, sunspots, elnino, or a CSV file (time, value columns)"
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
    from rnnlab.tasks.forecast import evaluate

    result = evaluate(args.run_dir, args.data, args.backtest or 0)
    print(
        runs.to_json(result, args.run_dir)
        if args.json
        else format_evaluation(runs.check_finite(result, args.run_dir))
    )
    return 0


def run_predict(args) -> int:
    from rnnlab.inference.forecaster import Forecaster

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
    from rnnlab.inference.forecaster import Forecaster
    from rnnlab.tasks.forecast import load_run_config, load_run_series, make_split, score_origin
    from rnnlab.viz.forecast import plot_run_forecast

    run_dir = Path(args.run_dir)
    forecaster = Forecaster.from_checkpoint(run_dir)
    config = load_run_config(run_dir)
    series = load_run_series(config.data)
    split = make_split(series, config.data, config.model.window)
    scores = score_origin(forecaster, series, split.test_start, split.horizon, details=True)
    print(plot_run_forecast(forecaster, series, split.test_start, scores, args.output, title=str(run_dir)))
    return 0
