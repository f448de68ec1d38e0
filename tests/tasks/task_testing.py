"""Helpers for the task tests: a tiny labelled CSV, tiny configs, the CLI captured, a folder's snapshot."""

from __future__ import annotations

import hashlib
from pathlib import Path

from rnnlab.cli import main
from tiny_runs import TINY_SENTIMENT, TINY_TRANSLATE, write_reviews  # noqa: F401  (re-exported for the task tests)


def cli(capsys, *args) -> tuple[int, str, str]:
    """Run ``rnnlab ARGS``; returns (exit status, stdout, stderr)."""
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def snapshot(folder: Path) -> dict[str, str]:
    """Every file below ``folder`` and the SHA-256 of its bytes."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in folder.rglob("*")
        if p.is_file()
    }


def staging_left(run_dir: Path) -> list[str]:
    """Hidden staging folders of ``run_dir`` still beside it."""
    return sorted(p.name for p in run_dir.parent.iterdir() if p.name.startswith(f".{run_dir.name}.rnnlab-"))


def assert_user_error(code: int, err: str, match: str) -> None:
    """Exit status 2 and one line on stderr, ``rnnlab...: error: ...`` holding ``match``, no traceback."""
    assert code == 2, err
    lines = err.strip().splitlines()
    assert lines and "error: " in lines[-1] and match in lines[-1], err
    assert "Traceback" not in err
    assert len([line for line in lines if "error:" in line]) == 1, err
