"""The subcommands that need no task module: ``info``, ``tasks``, ``datasets``, ``plot curves``, and the
check of an image path given with ``-o``. They read JSON and CSV files only, so they start without torch
(``datasets`` imports each task to ask what is available)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path


class UserError(Exception):
    """A mistake in what the user asked for; printed as ``rnnlab: error: <message>``, exit status 2."""


def check_image_path(path: Path, option: str = "-o") -> Path:
    """The image path given with ``-o``, checked before any model is loaded, by the plots' own rule
    (:func:`rnnlab.viz.check_output_path`: .png, .svg or .pdf; not a folder), then by
    :func:`check_writable`. Missing parent folders are created by the plot functions (as ``mkdir -p``
    would), so ``-o plots/run1/a.png`` just works."""
    from rnnlab.viz import PlotError, check_output_path  # cheap: matplotlib loads with the first plot

    try:
        check_output_path(path)
    except PlotError as err:
        raise UserError(f"{option}: {err}") from None
    return check_writable(path, option)


def check_writable(path: Path, option: str = "-o") -> Path:
    """``path`` if a file can be created there, else a :class:`UserError` naming ``option`` and the path.

    Checked before any model is loaded, so that a command that cannot write its output fails at once, on one
    line, having written nothing. The nearest existing folder above ``path`` is probed by creating (and
    removing) a temporary file in it: ``os.access`` says yes to root in ``/proc``, where nothing can be
    created. Missing folders below it are left for the writer to create.
    """
    import tempfile

    path = Path(path)
    if path.is_dir():
        raise UserError(f"{option} {str(path)!r}: is a folder; expected a file name")
    folder = next(p for p in path.parents if p.exists())  # the root or '.' at the latest
    if not folder.is_dir():
        raise UserError(f"{option} {str(path)!r}: {str(folder)!r} is a file, not a folder")
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".rnnlab-probe-"):
            pass
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise UserError(
            f"{option} {str(path)!r}: cannot create a file in {str(folder)!r} ({reason})"
        ) from None
    return path


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _metrics_rows(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.csv"
    if not path.is_file():
        return []
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))


def describe(run_dir: Path, task: str) -> dict:
    """What ``rnnlab info RUN`` shows: task, config, data, metrics and checkpoint sizes, from the files."""
    rows = _metrics_rows(run_dir)
    checkpoints = {}
    for name in ("best", "last"):
        folder = run_dir / name
        if folder.is_dir():
            files = {p.name: p.stat().st_size for p in sorted(folder.iterdir()) if p.is_file()}
            meta = _read_json(folder / "meta.json") or {}
            checkpoints[name] = {"epoch": meta.get("epoch"), "bytes": sum(files.values()), "files": files}
    best = _read_json(run_dir / "best" / "meta.json") or {}
    run_info = _read_json(run_dir / "run.json") or {}
    return {
        "run_dir": str(run_dir.resolve()),
        "task": task,
        "data": run_info.get("data"),
        "epochs_done": len(rows),
        "best_epoch": best.get("epoch"),
        "best_metrics": best.get("metrics"),
        "test_metrics": _read_json(run_dir / "test_metrics.json"),
        "checkpoints": checkpoints,
        "config": _read_json(run_dir / "config.json"),
    }


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover


def _scalars(metrics: dict | None) -> str:
    """``key=value`` pairs of a metrics dict; confusion-matrix counts (``cm_*``) are left to ``--json``."""
    if not metrics:
        return "-"
    shown = [
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
        for k, v in metrics.items()
        if not k.startswith("cm_") and isinstance(v, int | float | str)
    ]
    return " ".join(shown)


def _flat(config: dict, prefix: str = "") -> list[str]:
    lines = []
    for key, value in config.items():
        if isinstance(value, dict):
            lines += _flat(value, f"{prefix}{key}.")
        else:
            lines.append(f"{prefix}{key}={value}")
    return lines


def format_info(info: dict) -> str:
    data = info["data"] or {}
    splits = [f"{k} {v['size']}" for k, v in data.items() if isinstance(v, dict) and "size" in v]
    source = data.get("source") or data.get("name") or "?"
    lines = [
        f"run:          {info['run_dir']}",
        f"task:         {info['task']}",
        f"data:         {source}" + (f" ({', '.join(splits)})" if splits else ""),
        f"epochs done:  {info['epochs_done']}",
        f"best epoch:   {info['best_epoch']}  {_scalars(info['best_metrics'])}",
        f"test:         {_scalars(info['test_metrics'])}",
    ]
    for name, ckpt in info["checkpoints"].items():
        lines.append(f"{name + '/':<13} {_size(ckpt['bytes'])} (epoch {ckpt['epoch']})")
    lines.append("config:")
    lines += [f"  {line}" for line in _flat(info["config"] or {})]
    return "\n".join(lines)


def run_info(args, task: str) -> int:
    info = describe(args.run_dir, task)
    print(json.dumps(info, ensure_ascii=False, indent=2) if args.json else format_info(info))
    return 0


def run_tasks(args) -> int:
    from rnnlab.tasks import TASKS

    width = max(map(len, TASKS))
    for name, entry in TASKS.items():
        print(f"{name:<{width}}  {entry.summary}")
    return 0


def run_datasets(args) -> int:
    from rnnlab.tasks import TASKS, get_task

    names = [args.task] if args.task else list(TASKS)
    if args.task and args.task not in TASKS:
        raise UserError(f"datasets: expected one of {', '.join(TASKS)}, received {args.task!r}")
    rows = []
    for task in names:
        module = get_task(task)
        for entry in getattr(module, "datasets", list)():
            rows.append({"task": task, **entry})
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    task_width = max((len(r["task"]) for r in rows), default=0)
    name_width = max((len(r["name"]) for r in rows), default=0)
    for r in rows:
        state = "available" if r["available"] else "missing  "
        hint = "" if r["available"] else f"  ({r['how']})"
        print(f"{r['task']:<{task_width}}  {r['name']:<{name_width}}  {state}  {r['description']}{hint}")
    print("any task also takes your own file: rnnlab train TASK --data PATH (see rnnlab train TASK --help)")
    return 0


def run_plot_curves(args) -> int:
    """Curves of every per-epoch scalar in ``metrics.csv`` except confusion-matrix counts (``cm_*``)."""
    import tempfile

    from rnnlab.viz.plots import plot_curves

    rows = _metrics_rows(args.run_dir)
    if not (args.run_dir / "metrics.csv").is_file():
        raise UserError(f"{args.run_dir}: no metrics.csv (not a run folder, or no epoch finished yet)")
    if not rows:
        raise UserError(f"{args.run_dir / 'metrics.csv'}: no epoch recorded yet")
    columns = [c for c in rows[0] if not c.startswith("cm_")]
    with tempfile.TemporaryDirectory() as tmp:
        kept = Path(tmp) / "metrics.csv"
        with kept.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
        print(plot_curves(kept, args.output, title=str(args.run_dir)))
    return 0


def version() -> str:
    """The installed distribution's version, or the package's own when run from a source tree."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("rnnlab")
    except PackageNotFoundError:
        import rnnlab

        return rnnlab.__version__
