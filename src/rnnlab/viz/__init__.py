"""Plots written as image files: attention heatmaps (CJK labels included), training curves, forecasts.

``from rnnlab.viz import plot_attention, plot_curves, plot_forecast``
"""

from rnnlab.viz.plots import (
    CJK_FONT_NAMES,
    CJKFont,
    find_cjk_font,
    plot_attention,
    plot_curves,
    plot_forecast,
)

__all__ = ["CJK_FONT_NAMES", "CJKFont", "find_cjk_font", "plot_attention", "plot_curves", "plot_forecast"]
