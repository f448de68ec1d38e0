"""What the cells of a character model learned: a text coloured by single units' activations.

After Karpathy, Johnson & Fei-Fei (2015), "Visualizing and understanding recurrent networks": each row of
the picture is one unit, the text written out with every character's background coloured by that unit's
activation after reading it (blue -1 ... white 0 ... red +1). The units shown are the *most interpretable*
ones for this text: for each simple feature of the text (:data:`FEATURES`: position in the line, inside
quotes, bracket depth, inside a word, in an all-capitals word) a unit whose activation is strongly correlated
with it (Pearson's r; the strongest feature-unit pair is taken first, each feature and unit once), then the
units of largest variance to fill the rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from rnnlab.viz.paths import PlotError, check_output_path

__all__ = ["FEATURES", "text_features", "interpretable_units", "plot_cells"]


def _position_in_line(chars: Sequence[str]) -> np.ndarray:
    out, pos = [], 0
    for ch in chars:
        out.append(pos)
        pos = 0 if ch == "\n" else pos + 1
    return np.asarray(out, dtype=float)


def _depth(chars: Sequence[str], opening: str, closing: str) -> np.ndarray:
    out, depth = [], 0
    for ch in chars:
        depth += ch in opening
        out.append(depth)
        depth = max(0, depth - (ch in closing))
    return np.asarray(out, dtype=float)


def _inside_quotes(chars: Sequence[str]) -> np.ndarray:
    out, inside = [], False
    for ch in chars:
        if ch in '"“”「」':
            inside = ch not in "”」" and not (ch == '"' and inside)
            out.append(1.0)
            continue
        out.append(float(inside))
    return np.asarray(out)


def _caps_word(chars: Sequence[str]) -> np.ndarray:
    text = "".join(chars)
    out = np.zeros(len(chars))
    i = 0
    while i < len(text):
        j = i
        while j < len(text) and text[j].isalpha():
            j += 1
        if j > i + 1 and text[i:j].isupper():
            out[i:j] = 1
        i = max(j, i + 1)
    return out


FEATURES: dict[str, Callable[[Sequence[str]], np.ndarray]] = {
    "position in line": _position_in_line,
    "inside quotes": _inside_quotes,
    "bracket depth": lambda c: _depth(c, "([{（", ")]}）"),
    "inside a word": lambda c: np.asarray([float(ch.isalnum()) for ch in c]),
    "all-capitals word": _caps_word,
}


def text_features(chars: Sequence[str]) -> dict[str, np.ndarray]:
    """Each feature of :data:`FEATURES` per character (T,)."""
    return {name: f(chars) for name, f in FEATURES.items()}


def interpretable_units(chars: Sequence[str], acts: np.ndarray, n_units: int = 6) -> list[tuple[int, str]]:
    """``n_units`` (unit, why) pairs: the best-correlated unit per feature, then the most variable units."""
    acts = np.asarray(acts, dtype=float)  # (T, H)
    chosen: list[tuple[int, str]] = []
    used: set[int] = set()
    centred = acts - acts.mean(0)
    scale = np.sqrt((centred**2).sum(0))  # (H,)
    names, rs = [], []
    for name, feature in text_features(chars).items():
        f = feature - feature.mean()
        if not np.any(f) or not np.any(scale):
            continue  # constant over this text (no brackets, ...): says nothing
        names.append(name)
        rs.append((centred * f[:, None]).sum(0) / (scale * np.sqrt((f**2).sum()) + 1e-12))  # (H,)
    r = np.abs(np.asarray(rs)) if rs else np.zeros((0, acts.shape[1]))  # (F, H)
    while len(chosen) < n_units and r.size and r.max() > 0:  # the strongest (feature, unit) pair first
        i, unit = np.unravel_index(int(r.argmax()), r.shape)
        chosen.append((int(unit), f"{names[i]}, r = {rs[i][unit]:+.2f}"))
        used.add(int(unit))
        r[i, :], r[:, unit] = -1, -1
    for unit in np.argsort(-acts.var(0)):
        if len(chosen) >= n_units:
            break
        if int(unit) not in used:
            used.add(int(unit))
            chosen.append((int(unit), f"variance {acts[:, unit].var():.2f}"))
    return chosen


def _lines(chars: Sequence[str], width: int) -> list[list[int]]:
    """Character indices laid out in lines: a new line after each newline and every ``width`` characters."""
    lines, line = [], []
    for i, ch in enumerate(chars):
        line.append(i)
        if ch == "\n" or len(line) == width:
            lines.append(line)
            line = []
    if line:
        lines.append(line)
    return lines


def plot_cells(
    chars: Sequence[str],
    acts,
    path: str | Path,
    n_units: int = 6,
    units: Sequence[int] | None = None,
    width: int = 80,
    title: str | None = None,
) -> Path:
    """Draw ``chars`` once per unit, each character's background coloured by the unit's activation.

    Args:
        chars: the characters read (T).
        acts: (T, H) activations in [-1, 1] (``tanh(c)`` of an LSTM, ``h`` of a GRU), a tensor or array.
        path: the image (.png, .svg, .pdf).
        n_units: rows to draw when ``units`` is None (chosen by :func:`interpretable_units`).
        units: these units instead.
        width: characters per line before wrapping.
    """
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    from rnnlab.viz.plots import _as_array, _save, _text_rc

    path = check_output_path(path)
    acts = _as_array(acts)
    if acts.ndim != 2 or acts.shape[0] != len(chars) or len(chars) == 0:
        raise PlotError(f"acts: expected shape (T={len(chars)}, H) with T > 0, received {acts.shape}")
    if units is None:
        rows = interpretable_units(chars, acts, min(n_units, acts.shape[1]))
    else:
        bad = [u for u in units if not 0 <= u < acts.shape[1]]
        if bad:
            raise PlotError(f"units: expected indices in [0, {acts.shape[1]}), received {bad}")
        rows = [(int(u), "chosen") for u in units]
    lines = _lines(chars, width)
    ncols = max(len(line) for line in lines)
    cw, lh = 0.105, 0.2  # inches per character and per line
    panel = len(lines) + 1.6  # lines of one unit's panel, with its title
    fig = Figure(figsize=(max(4.0, ncols * cw + 0.4), panel * lh * len(rows) + 0.5))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(-0.5, ncols + 0.5)
    total = panel * len(rows) + 0.5
    ax.set_ylim(total, 0)
    ax.axis("off")
    from matplotlib import colormaps

    cmap = colormaps["bwr"]
    y = 0.5 + (title is not None) * 0.0
    if title:
        fig.suptitle(title)
    for unit, why in rows:
        ax.text(0, y + 0.6, f"unit {unit} ({why})", fontsize=8, va="center", ha="left", weight="bold")
        y += 1.4
        for line in lines:
            for x, i in enumerate(line):
                value = float(np.clip(acts[i, unit], -1, 1))
                ax.add_patch(Rectangle((x, y - 0.5), 1, 1, facecolor=cmap((value + 1) / 2), edgecolor="none"))
                ch = "\u21b5" if chars[i] == "\n" else chars[i]
                ax.text(x + 0.5, y, ch, fontsize=7, family="monospace", ha="center", va="center")
            y += 1
        y += 0.2
    return _save(fig, path, _text_rc(["".join(chars)]))
