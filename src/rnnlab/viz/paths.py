"""Where a plot may be written, checked before any drawing, without importing matplotlib.

A command line can call :func:`check_output_path` on its ``-o`` argument before loading a model, and catch
:class:`PlotError` as a user error.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["PlotError", "SUPPORTED_FORMATS", "check_output_path"]

# File suffix -> matplotlib format. All three render on the Agg canvas with matplotlib alone.
SUPPORTED_FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}


class PlotError(ValueError):
    """A plot cannot be written where or how it was asked (format, a directory as the output...): a user
    error, not a bug."""


def check_output_path(path: str | Path) -> Path:
    """``path`` as a Path if a plot can be written there, else :class:`PlotError` naming it.

    The suffix chooses the format (:data:`SUPPORTED_FORMATS`, any case). Missing parent folders are fine:
    the plot functions create them. An existing directory, or a file where a parent folder should be, is
    an error.

    >>> check_output_path("runs/main/attention.PNG").name
    'attention.PNG'
    >>> check_output_path("attention.txt")
    Traceback (most recent call last):
    ...
    rnnlab.viz.paths.PlotError: output 'attention.txt': unknown image format '.txt'; supported: .png, ...
    """
    if not isinstance(path, (str, Path)) or not str(path):
        raise TypeError(f"path must be a non-empty str or Path, got {path!r}")
    path = Path(path)
    supported = ", ".join(SUPPORTED_FORMATS)
    if path.is_dir():
        raise PlotError(
            f"output {str(path)!r} is a directory; give a file name such as {str(path / 'plot.png')!r}"
        )
    if path.suffix.lower() not in SUPPORTED_FORMATS:
        what = f"unknown image format {path.suffix!r}" if path.suffix else "no file extension"
        raise PlotError(f"output {str(path)!r}: {what}; supported: {supported}")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise PlotError(f"output {str(path)!r}: {str(parent)!r} is a file, not a folder")
            break
    return path
