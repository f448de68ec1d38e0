"""Plots written as image files: attention heatmaps (CJK labels included), training curves, forecasts.

``from rnnlab.viz import plot_attention, plot_curves, plot_dated_forecast``

The plot functions live in :mod:`rnnlab.viz.plots` and :mod:`rnnlab.viz.forecast` (the dated forecast plot of
``rnnlab plot forecast``), which import matplotlib; they are loaded on first use,
so ``from rnnlab.viz import PlotError, check_output_path`` stays cheap (a command line checks its ``-o``
argument and catches the error without importing matplotlib).
"""

from rnnlab.viz.paths import SUPPORTED_FORMATS, PlotError, check_output_path

_PLOTS = ("CJK_FONT_NAMES", "CJKFont", "find_cjk_font", "plot_attention", "plot_curves")
_FORECAST = ("plot_dated_forecast", "plot_run_forecast")

__all__ = ["PlotError", "SUPPORTED_FORMATS", "check_output_path", *_PLOTS, *_FORECAST]


def __getattr__(name: str):
    if name in _PLOTS:
        from rnnlab.viz import plots

        return getattr(plots, name)
    if name in _FORECAST:
        from rnnlab.viz import forecast

        return getattr(forecast, name)
    raise AttributeError(f"module 'rnnlab.viz' has no attribute {name!r}")
