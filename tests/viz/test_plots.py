"""Plots: real PNGs written atomically, CJK labels drawn with a font that has the glyphs, input checks."""

from __future__ import annotations

import struct

import pytest
import torch
from matplotlib import font_manager
from matplotlib.ft2font import FT2Font

from rnnlab.training import write_metrics_csv
from rnnlab.viz import plots
from rnnlab.viz.plots import find_cjk_font, plot_attention, plot_curves

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path):
    """(width, height) from the PNG header; also checks that the file really is a PNG."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert len(data) > 5_000  # a blank or broken figure is far smaller
    return struct.unpack(">II", data[16:24])


@pytest.fixture
def fresh_font_search(monkeypatch):
    """Forget the memoized font and the once-only warning, for tests that change what is installed."""
    monkeypatch.setattr(plots, "_found", {})
    monkeypatch.setattr(plots, "_warned_no_cjk", False)


def test_attention_heatmap_with_chinese_labels(tmp_path, caplog):
    torch.manual_seed(0)
    src, tgt = list("这部电影真好看"), ["this", "movie", "is", "great"]
    weights = torch.softmax(torch.randn(len(tgt), len(src)), dim=-1)  # (T_out, T_in)
    out = plot_attention(weights, src, tgt, tmp_path / "attn.png", title="注意力 attention")
    assert out == tmp_path / "attn.png"
    width, height = png_size(out)
    assert width > 400 and height > 200
    assert [p.name for p in tmp_path.iterdir()] == ["attn.png"]  # no temporary file left
    font = find_cjk_font()
    if font is None:
        pytest.skip("no CJK font installed on this machine; the glyph check needs one")
    charmap = FT2Font(font.path).get_charmap()
    assert all(ord(ch) in charmap for ch in "这部电影真好看注意力")
    # a one-weight CJK font is used without matplotlib's "Failed to find font weight" line for every text
    assert not [r for r in caplog.records if "Failed to find font weight" in r.getMessage()]
    # The warnings-as-errors setting of the test suite would also have failed the plot on a missing glyph.


def test_attention_pooling_weights_and_wide_inputs(tmp_path):
    pooled = plot_attention([0.1, 0.6, 0.3], ["not", "bad", "!"], path=tmp_path / "pool.png")
    w, h = png_size(pooled)
    assert w > h
    long = plot_attention(
        torch.full((24, 30), 1 / 30), [f"tok{i}" for i in range(30)], path=tmp_path / "l.png"
    )
    assert png_size(long)[0] > png_size(pooled)[0]  # the figure grows with the number of tokens


def test_attention_argument_errors(tmp_path):
    with pytest.raises(ValueError, match=r"x_labels must have T_in=3 entries .* got 2"):
        plot_attention(torch.ones(2, 3), ["a", "b"], path=tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"y_labels must have T_out=2 entries"):
        plot_attention(torch.ones(2, 3), ["a", "b", "c"], ["y"], tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"shape \(T_out, T_in\) or \(T_in,\)"):
        plot_attention(torch.ones(1, 2, 3), ["a", "b", "c"], path=tmp_path / "x.png")
    with pytest.raises(TypeError, match="path is required"):
        plot_attention(torch.ones(3), ["a", "b", "c"])
    assert not list(tmp_path.iterdir())


def test_missing_cjk_font_warns_once_and_still_plots(tmp_path, monkeypatch, fresh_font_search):
    monkeypatch.setattr(plots, "_search_cjk", lambda: None)
    monkeypatch.setattr(font_manager, "findSystemFonts", lambda: [])
    with pytest.warns(RuntimeWarning, match="may show as boxes"):
        plot_attention([0.5, 0.5], ["好", "坏"], path=tmp_path / "a.png")
    plot_attention([0.5, 0.5], ["好", "坏"], path=tmp_path / "b.png")  # no second warning (it would error)
    plot_attention([0.5, 0.5], ["good", "bad"], path=tmp_path / "c.png")  # ASCII needs no CJK font at all
    for name in "abc":
        png_size(tmp_path / f"{name}.png")


def test_stale_font_cache_is_rescanned_once(monkeypatch, fresh_font_search):
    installed = find_cjk_font(rescan=False)
    if installed is None:
        pytest.skip("no CJK font installed on this machine")
    plots._found.clear()
    # Simulate a font list cached before the font was installed: drop every entry of that file.
    manager = font_manager.fontManager
    monkeypatch.setattr(manager, "ttflist", [e for e in manager.ttflist if e.fname != installed.path])
    assert find_cjk_font(rescan=False) is None
    plots._found.clear()
    found = find_cjk_font()
    assert found is not None and found.path == installed.path
    assert any(e.fname == installed.path for e in manager.ttflist)  # registered again by the rescan


def test_curves_from_trainer_csv(tmp_path):
    history = [
        {
            "epoch": e,
            "train_loss": 1.0 / e,
            "lr": 1e-3 * (4 - e),
            "time": 0.1,
            "accuracy": 0.5 + e / 10,
            "loss": 1.2 / e,
        }
        for e in (1, 2, 3)
    ]
    write_metrics_csv(tmp_path / "metrics.csv", history)
    out = plot_curves(tmp_path / "metrics.csv", tmp_path / "curves.png", title="训练曲线")
    width, height = png_size(out)
    assert width > 3 * 400  # three panels side by side: loss (train + valid), lr, accuracy
    (tmp_path / "empty.csv").write_text("epoch,train_loss\n")
    with pytest.raises(ValueError, match="has no rows"):
        plot_curves(tmp_path / "empty.csv", tmp_path / "x.png")
