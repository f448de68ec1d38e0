"""Attention heatmaps and training curves, written as PNG (or SVG, PDF) files (the forecast plot, drawn the
same way, is in :mod:`rnnlab.viz.forecast`).

Figures are drawn with matplotlib's object API on an Agg canvas (``Figure`` + ``FigureCanvasAgg``): no
pyplot, no global backend switch, no window, nothing shown. Every file is written atomically (a temporary
sibling file, then ``os.replace``), the format following the path's suffix: ``.png``, ``.svg`` or ``.pdf``
(:data:`rnnlab.viz.paths.SUPPORTED_FORMATS`). The output path is checked before anything is drawn: another
suffix, or an existing directory, raises :class:`~rnnlab.viz.paths.PlotError` naming it; missing parent
folders are created.

Chinese (and other CJK) labels need a font with those glyphs; matplotlib's default DejaVu Sans has none and
draws boxes. :func:`find_cjk_font` looks for a known CJK family among the fonts matplotlib knows; when its
cached font list predates the font's installation, it scans the system font directories once and registers
the new files.
Without any CJK font, the plot is still written and one warning says that the glyphs may show as boxes
(on Debian / Ubuntu: ``apt-get install fonts-wqy-zenhei``).
"""

from __future__ import annotations

import csv
import io
import logging
import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

try:
    from matplotlib import font_manager, rc_context
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ft2font import FT2Font
    from matplotlib.ticker import MaxNLocator
except ImportError as e:  # pragma: no cover - depends on the installation
    raise ImportError("rnnlab.viz needs matplotlib: pip install 'rnnlab[tasks]'") from e

from rnnlab.training.files import atomic_write_bytes
from rnnlab.viz.paths import SUPPORTED_FORMATS, PlotError, check_output_path

__all__ = [
    "CJK_FONT_NAMES",
    "CJKFont",
    "PlotError",
    "find_cjk_font",
    "plot_attention",
    "plot_curves",
]

# Families with CJK glyphs, in order of preference (prefix match, so "AR PL UMing" finds "AR PL UMing CN").
CJK_FONT_NAMES = (
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "Noto Sans CJK SC",
    "Noto Sans CJK JP",
    "Noto Sans CJK",
    "Source Han Sans",
    "Droid Sans Fallback",
    "AR PL UMing",
    "AR PL UKai",
    "SimHei",
    "Microsoft YaHei",
    "PingFang SC",
    "Arial Unicode MS",
)


class CJKFont(NamedTuple):
    name: str  # family name, as used in rcParams["font.sans-serif"]
    path: str  # font file


_PROBE = "好"  # a common Han character every usable font must cover
_found: dict[str, CJKFont | None] = {}  # memo of find_cjk_font: "font" -> result, once searched
_warned_no_cjk = False


def _is_cjk(ch: str) -> bool:
    o = ord(ch)
    return (
        0x2E80 <= o <= 0x9FFF  # radicals, CJK punctuation, kana, bopomofo, unified ideographs (+ ext. A)
        or 0xAC00 <= o <= 0xD7AF  # hangul syllables
        or 0xF900 <= o <= 0xFAFF  # compatibility ideographs
        or 0xFF00 <= o <= 0xFFEF  # full-width forms (，！：)
        or 0x20000 <= o <= 0x2FFFF  # ideographs ext. B and later
    )


def _search_cjk() -> CJKFont | None:
    entries = font_manager.fontManager.ttflist
    for wanted in CJK_FONT_NAMES:
        for entry in entries:
            if not entry.name.startswith(wanted):
                continue
            try:
                if ord(_PROBE) in FT2Font(entry.fname).get_charmap():
                    return CJKFont(entry.name, entry.fname)
            except (OSError, RuntimeError, ValueError):  # unreadable file: try the next one
                continue
    return None


def find_cjk_font(rescan: bool = True) -> CJKFont | None:
    """An installed font that covers Chinese characters, or None; the result is remembered per process.

    If none is among matplotlib's (cached) font list and ``rescan`` is true, the system font directories are
    scanned once and font files matplotlib did not know yet are registered with ``fontManager.addfont``.
    (This uses public API; rebuilding the whole cache would need matplotlib's private ``_load_fontmanager``.)
    """
    if "font" in _found:
        return _found["font"]
    font = _search_cjk()
    if font is None and rescan:
        known = {entry.fname for entry in font_manager.fontManager.ttflist}
        for file in font_manager.findSystemFonts():
            if file not in known:
                try:
                    font_manager.fontManager.addfont(file)
                except (OSError, RuntimeError, ValueError):
                    continue
        font = _search_cjk()
    _found["font"] = font
    return font


def _weight_fallback(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith("findfont: Failed to find font weight")


def _quiet_weight_fallback() -> None:
    """Drop matplotlib's "Failed to find font weight normal ..., now using 500" lines: CJK fonts often come in
    one weight only (WenQuanYi Zen Hei is "medium"), and that one weight is the right choice."""
    logger = logging.getLogger("matplotlib.font_manager")
    if _weight_fallback not in logger.filters:
        logger.addFilter(_weight_fallback)


def _text_rc(texts: Sequence[str]) -> dict[str, Any]:
    """rcParams that let these texts render: a CJK font first in the sans-serif list when any text needs it.

    Without a CJK font, warns once and returns ``{}``; the per-glyph warnings matplotlib would add are then
    silenced in :func:`_save`.
    """
    global _warned_no_cjk
    if not any(_is_cjk(ch) for text in texts for ch in text):
        return {}
    font = find_cjk_font()
    if font is None:
        if not _warned_no_cjk:
            _warned_no_cjk = True
            warnings.warn(
                "no CJK font found (looked for "
                + ", ".join(CJK_FONT_NAMES[:4])
                + ", ...); Chinese characters "
                "may show as boxes. On Debian/Ubuntu: apt-get install fonts-wqy-zenhei",
                RuntimeWarning,
                stacklevel=3,
            )
        return {}
    _quiet_weight_fallback()
    return {
        "font.family": "sans-serif",
        "font.sans-serif": [font.name, "DejaVu Sans"],
        "axes.unicode_minus": False,  # CJK fonts often lack U+2212; use the ASCII hyphen for negative ticks
    }


def _save(fig: Figure, path: str | Path, rc: dict[str, Any]) -> Path:
    """Render under ``rc`` (fonts are resolved at draw time) and write the file atomically."""
    path = check_output_path(path)  # again: the folder may have changed while drawing
    fmt = SUPPORTED_FORMATS[path.suffix.lower()]
    buf = io.BytesIO()
    with rc_context(rc), warnings.catch_warnings():
        if _warned_no_cjk:  # said once that there is no CJK font; skip matplotlib's warning for every glyph
            warnings.filterwarnings("ignore", message="Glyph .* missing from", category=UserWarning)
        FigureCanvasAgg(fig)
        fig.savefig(buf, format=fmt, dpi=120)
    return atomic_write_bytes(path, buf.getvalue())


def _as_array(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor, without importing torch here
        x = x.detach().cpu().float().numpy()
    return np.asarray(x, dtype=np.float64)


def plot_attention(
    weights: Any,
    x_labels: Sequence[str],
    y_labels: Sequence[str] | None = None,
    path: str | Path | None = None,
    title: str | None = None,
    annotate: bool | None = None,
) -> Path:
    """Heatmap of attention weights with a token on every column (and row); returns the path written.

    Args:
        weights: (T_out, T_in) weights of each target step over the source tokens, or (T_in,) for attention
            pooling; a tensor, array or nested list.
        x_labels: the T_in source tokens (columns). y_labels: the T_out target tokens (rows); default indices.
        path: the file to write (required): ``.png``, ``.svg`` or ``.pdf``; missing folders are created.
        title: optional figure title. annotate: print each weight in its cell; default when at most 20x20.
    """
    if path is None:
        raise TypeError("plot_attention: path is required")
    check_output_path(path)
    w = _as_array(weights)
    pooled = w.ndim == 1
    if pooled:
        w = w[None, :]  # (1, T_in)
        y_labels = [""] if y_labels is None else y_labels
    if w.ndim != 2:
        raise ValueError(f"weights must have shape (T_out, T_in) or (T_in,), got {w.shape}")
    t_out, t_in = w.shape
    x_labels = [str(t) for t in x_labels]
    y_labels = [str(i) for i in range(t_out)] if y_labels is None else [str(t) for t in y_labels]
    if len(x_labels) != t_in:
        raise ValueError(f"x_labels must have T_in={t_in} entries (weights {w.shape}), got {len(x_labels)}")
    if len(y_labels) != t_out:
        raise ValueError(f"y_labels must have T_out={t_out} entries (weights {w.shape}), got {len(y_labels)}")
    rc = _text_rc([*x_labels, *y_labels, title or ""])
    if annotate is None:
        annotate = t_in <= 20 and t_out <= 20

    fig = Figure(figsize=(min(max(0.5 * t_in + 2.5, 4.0), 30.0), min(max(0.5 * t_out + 1.5, 2.2), 30.0)))
    fig.set_layout_engine("constrained")
    with rc_context(rc):  # FontProperties pick up their family when the text is created
        ax = fig.add_subplot()
        vmax = float(np.nanmax(w)) if np.isfinite(w).any() else 1.0
        vmin = min(0.0, float(np.nanmin(w))) if np.isfinite(w).any() else 0.0
        image = ax.imshow(w, cmap="viridis", vmin=vmin, vmax=max(vmax, vmin + 1e-12), aspect="auto")
        rotate = max((len(t) for t in x_labels), default=0) > 4  # a column is ~0.5 inch: about 4 characters
        ax.set_xticks(range(t_in), labels=x_labels, rotation=90 if rotate else 0)
        if pooled and not y_labels[0]:
            ax.set_yticks([])  # a single unlabeled row: no tick
        else:
            ax.set_yticks(range(t_out), labels=y_labels)
        if annotate:
            mid = (vmin + vmax) / 2
            for i in range(t_out):
                for j in range(t_in):
                    color = "black" if w[i, j] > mid else "white"  # viridis is light at the top
                    ax.text(j, i, f"{w[i, j]:.2f}", ha="center", va="center", fontsize=7, color=color)
        fig.colorbar(image, ax=ax, fraction=0.05)
        if title:
            ax.set_title(title)
    return _save(fig, path, rc)


def plot_curves(metrics_csv_path: str | Path, path: str | Path, title: str | None = None) -> Path:
    """Training curves from a trainer's ``metrics.csv``: one panel for every ``*loss`` column together, then
    one panel per other numeric column (``lr`` included, ``time`` left out), each against ``epoch``.

    ``path``: ``.png``, ``.svg`` or ``.pdf``; missing folders are created."""
    check_output_path(path)
    try:
        with open(metrics_csv_path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except FileNotFoundError:
        raise PlotError(f"metrics_csv_path {str(metrics_csv_path)!r} does not exist") from None
    if not rows:
        raise PlotError(f"metrics_csv_path {str(metrics_csv_path)!r} has no rows")

    def column(name: str) -> np.ndarray:
        values = []
        for row in rows:
            try:
                values.append(float(row.get(name) or "nan"))
            except ValueError:
                values.append(math.nan)
        return np.array(values)

    epochs = column("epoch") if "epoch" in rows[0] else np.arange(1, len(rows) + 1, dtype=float)
    names = [k for k in rows[0] if k not in ("epoch", "time") and not np.isnan(column(k)).all()]
    losses = [k for k in names if k.endswith("loss")]
    panels = ([("loss", losses)] if losses else []) + [(k, [k]) for k in names if k not in losses]
    if not panels:
        raise PlotError(
            f"metrics_csv_path {str(metrics_csv_path)!r} has no numeric columns besides epoch/time"
        )
    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    rc = _text_rc([*names, title or ""])

    fig = Figure(figsize=(4.5 * ncols, 3.2 * nrows))
    fig.set_layout_engine("constrained")
    with rc_context(rc):
        for i, (panel, cols) in enumerate(panels):
            ax = fig.add_subplot(nrows, ncols, i + 1)
            for col in cols:
                ax.plot(epochs, column(col), marker="o", markersize=3, label=col)
            ax.set_title(panel)
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.grid(alpha=0.3)
            if panel == "lr":
                ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
            if len(cols) > 1:
                ax.legend()
        if title:
            fig.suptitle(title)
    return _save(fig, path, rc)
