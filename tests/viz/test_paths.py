"""Plot output paths: the format from the suffix, a clear PlotError for anything else, folders created."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from rnnlab.training import write_metrics_csv
from rnnlab.viz import PlotError, check_output_path, plot_attention, plot_curves, plot_dated_forecast


def _draw(kind, path, tmp_path):
    if kind == "attention":
        return plot_attention([0.2, 0.8], ["a", "b"], path=path)
    if kind == "forecast":
        times = np.arange("2000-01", "2000-04", dtype="datetime64[M]").astype("datetime64[D]")
        return plot_dated_forecast(times, [1.0, 2.0, 3.0], 3, [[3.5, 4.0, 4.5]], (0.1, 0.5, 0.9), path)
    write_metrics_csv(
        tmp_path / "metrics.csv", [{"epoch": 1, "train_loss": 1.0}, {"epoch": 2, "train_loss": 0.5}]
    )
    return plot_curves(tmp_path / "metrics.csv", path)


@pytest.mark.parametrize("kind", ["attention", "curves", "forecast"])
def test_unsupported_suffix_is_a_plot_error_naming_path_and_formats(tmp_path, kind):
    for name, what in (("x.txt", "unknown image format '.txt'"), ("plot", "no file extension")):
        with pytest.raises(PlotError, match="supported: .png, .svg, .pdf") as info:
            _draw(kind, tmp_path / name, tmp_path)
        assert str(tmp_path / name) in str(info.value) and what in str(info.value)
        assert isinstance(info.value, ValueError)
    assert not (tmp_path / "x.txt").exists() and not (tmp_path / "plot").exists()


@pytest.mark.parametrize(
    "name, magic", [("a.png", b"\x89PNG"), ("b.SVG", b"<?xml"), ("c.pdf", b"%PDF")], ids=["png", "svg", "pdf"]
)
def test_each_supported_format_is_written_as_that_format(tmp_path, name, magic):
    out = _draw("forecast", tmp_path / name, tmp_path)
    assert out.read_bytes().startswith(magic)


def test_missing_folders_are_created_and_a_directory_is_refused(tmp_path):
    out = _draw("attention", tmp_path / "new" / "deeper" / "attn.png", tmp_path)
    assert out.is_file() and out.parent.is_dir()
    (tmp_path / "taken.png").mkdir()
    for target in (tmp_path, tmp_path / "taken.png"):
        with pytest.raises(PlotError, match="is a directory; give a file name") as info:
            _draw("attention", target, tmp_path)
        assert str(target) in str(info.value)
    (tmp_path / "file").write_text("x")
    with pytest.raises(PlotError, match="is a file, not a folder"):
        check_output_path(tmp_path / "file" / "attn.png")
    with pytest.raises(PlotError, match="does not exist"):
        plot_curves(tmp_path / "no-such.csv", tmp_path / "c.png")
    with pytest.raises(TypeError, match="non-empty"):
        check_output_path("")


def test_plot_error_imports_without_matplotlib():
    code = "import sys, rnnlab.viz as v; v.check_output_path('a.png'); print('matplotlib' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
