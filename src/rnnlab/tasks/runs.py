"""What every task's run folder holds, and the one rule for reusing a folder (shared by all tasks)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from rnnlab.data import DataError
from rnnlab.tasks.config import apply_overrides

__all__ = ["RUN_FILES", "check_run_dir", "train_from_args"]

# What a run folder holds; --overwrite removes exactly these, nothing else.
RUN_FILES = ("config.json", "run.json", "metrics.csv", "test_metrics.json", "best", "last")


def check_run_dir(run_dir: Path, resume: bool, overwrite: bool) -> None:
    """Refuse to clobber an earlier run unless asked; runs before anything is written or removed."""
    held = [name for name in RUN_FILES if (run_dir / name).exists()]
    if resume and not (run_dir / "last").is_dir():
        raise DataError(f"--resume: {run_dir} holds no interrupted run (no last/ checkpoint)")
    if not resume and held and not overwrite:
        raise DataError(
            f"{run_dir} already holds a run ({', '.join(held)}); pass --resume to continue it, "
            "--overwrite to replace it, or choose another --out"
        )


def train_from_args(
    args, default_config: Any, load_run_config: Callable, train: Callable, shortcuts: dict
) -> Any:
    """``rnnlab train TASK``: the task's defaults, or with ``--resume`` the saved run's config, then the
    shortcut options (``{"data.dataset": args.data, ...}``, None = not given) and the KEY=VALUE overrides."""
    resuming = args.resume and (args.out / "config.json").is_file()
    config = load_run_config(args.out) if resuming else default_config
    overrides = [f"{key}={value}" for key, value in shortcuts.items() if value is not None]
    return train(
        apply_overrides(config, [*overrides, *args.overrides]), args.out, args.resume, args.overwrite
    )
