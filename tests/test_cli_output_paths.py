"""Every ``-o`` of every command: a place that cannot be written gives ``rnnlab: error: ...`` on one line
naming the path, exit status 2, before any model is loaded, and nothing is left half-written."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from rnnlab.cli import main

# Each command that takes -o, with the arguments before it (the run folder is checked after the path).
COMMANDS = {
    "plot curves": (["plot", "curves", "RUN"], ".png"),
    "plot attention": (["plot", "attention", "RUN", "很好"], ".png"),
    "plot forecast": (["plot", "forecast", "RUN"], ".png"),
    "plot cells": (["plot", "cells", "RUN", "hello"], ".svg"),
    "export": (["export", "RUN"], ".onnx"),
}


def _places(tmp_path: Path, suffix: str) -> dict[str, Path]:
    (tmp_path / "afile").write_text("x")
    (tmp_path / "afolder").mkdir()
    places = {
        "under a file": tmp_path / "afile" / f"out{suffix}",
        "a folder": tmp_path / "afolder",
        "deeper under a file": tmp_path / "afile" / "sub" / f"out{suffix}",
    }
    if sys.platform.startswith("linux"):  # nothing can be created in /proc, not even by root
        places["/proc"] = Path(f"/proc/rnnlab-test{suffix}")
    return places


@pytest.mark.parametrize("command", COMMANDS, ids=COMMANDS)
def test_an_unwritable_output_is_a_one_line_error(command, tmp_path, capsys):
    if command == "export":
        pytest.importorskip("onnx")
        pytest.importorskip("onnxscript")
    words, suffix = COMMANDS[command]
    run = tmp_path / "run"
    run.mkdir()
    for what, place in _places(tmp_path, suffix).items():
        before = sorted(tmp_path.rglob("*"))
        argv = [str(run) if w == "RUN" else w for w in words] + ["-o", str(place)]
        code = main(argv)
        err = capsys.readouterr().err
        assert code == 2, (what, err)
        assert err.startswith("rnnlab: error: ") and err.count("\n") == 1, (what, err)
        assert str(place) in err and "Traceback" not in err, (what, err)
        assert sorted(tmp_path.rglob("*")) == before, what  # nothing written, no folder made
    assert not any(p.name.startswith(".rnnlab-probe-") for p in tmp_path.rglob("*"))


def test_a_writable_output_in_a_new_folder_passes_the_check(tmp_path):
    from rnnlab.cli.commands import check_image_path, check_writable

    path = tmp_path / "new" / "deeper" / "plot.png"
    assert check_image_path(path) == path and check_writable(path) == path
    assert list(tmp_path.iterdir()) == []  # the probe left nothing, and made no folder
