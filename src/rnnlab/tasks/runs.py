"""What every task's run folder holds, and the one rule for reusing a folder (shared by all tasks)."""

from __future__ import annotations

from pathlib import Path

from rnnlab.data import DataError

__all__ = ["RUN_FILES", "check_run_dir"]

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
