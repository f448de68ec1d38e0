"""The dated forecast plot (rnnlab.viz.forecast): what it draws, where, and its input checks."""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab.viz import forecast as viz_forecast
from rnnlab.viz import plot_dated_forecast

LEVELS = (0.1, 0.5, 0.9)


def _monthly(n: int) -> np.ndarray:
    return np.arange("2000-01", "2100-01", dtype="datetime64[M]")[:n].astype("datetime64[D]")


def _quantiles(median: np.ndarray) -> np.ndarray:
    return np.stack([median - 1.0, median, median + 2.0], axis=1)  # (H, Q)


def _drawn(monkeypatch, *args, **kwargs):
    """Run plot_dated_forecast with its file writer replaced, returning the figure's axes."""
    figures = []
    monkeypatch.setattr(viz_forecast, "_save", lambda fig, path, rc: figures.append(fig) or path)
    plot_dated_forecast(*args, **kwargs)
    return figures[0].axes[0]


def test_holdout_forecast_draws_history_holdout_median_and_baseline(monkeypatch, tmp_path):
    times, values = _monthly(60), np.sin(np.arange(60) / 5) + 3
    median = values[48:] + 0.1
    baseline = ("seasonal_naive", values[36:48])
    ax = _drawn(monkeypatch, times, values, 48, _quantiles(median), LEVELS, tmp_path / "fc.png", baseline)
    lines = {line.get_label(): line for line in ax.get_lines()}
    np.testing.assert_array_equal(lines["history"].get_ydata(), values[:48])
    np.testing.assert_array_equal(lines["holdout"].get_ydata(), values[48:])
    np.testing.assert_array_equal(lines["forecast (median)"].get_ydata(), median)
    np.testing.assert_array_equal(lines["seasonal_naive"].get_ydata(), values[36:48])
    np.testing.assert_array_equal(lines["forecast (median)"].get_xdata(), times[48:])
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "80% interval (0.1-0.9)" in labels


def test_forecast_after_the_end_continues_the_dates_and_writes_a_png(monkeypatch, tmp_path):
    times, values = _monthly(24), np.arange(24.0)
    out = plot_dated_forecast(times, values, 24, _quantiles(np.full(6, 30.0)), LEVELS, tmp_path / "f.png")
    assert out.read_bytes().startswith(b"\x89PNG")
    ax = _drawn(monkeypatch, times, values, 24, _quantiles(np.full(6, 30.0)), LEVELS, tmp_path / "g.png")
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert "holdout" not in lines
    step = times[-1] - times[-2]
    np.testing.assert_array_equal(lines["forecast (median)"].get_xdata(), times[-1] + step * np.arange(1, 7))


def test_long_series_show_the_last_horizons_only(monkeypatch, tmp_path):
    times, values = _monthly(500), np.arange(500.0)
    ax = _drawn(monkeypatch, times, values, 490, _quantiles(values[490:]), LEVELS, tmp_path / "l.png")
    history = next(line for line in ax.get_lines() if line.get_label() == "history")
    np.testing.assert_array_equal(history.get_ydata(), values[490 - 8 * 10 : 490])  # 8 horizons of 10


@pytest.mark.parametrize(
    "times, values, origin, quantiles, levels, match",
    [
        (_monthly(3), np.ones(4), 2, np.ones((1, 3)), LEVELS, r"times, values: expected two 1-D arrays"),
        (_monthly(6), np.ones(6), 3, np.ones((2, 2)), LEVELS, r"quantiles: expected \(H, 3\)"),
        (_monthly(6), np.ones(6), 3, np.ones((2, 2)), (0.1, 0.9), r"levels: expected .* including 0.5"),
        (_monthly(6), np.ones(6), 5, np.ones((2, 3)), LEVELS, r"origin: expected 1 <= origin <= 6"),
        (_monthly(6), np.ones(6), 0, np.ones((2, 3)), LEVELS, r"received 0"),
    ],
    ids=["lengths", "quantile-shape", "no-median", "past-the-end", "origin-0"],
)
def test_bad_input_is_a_one_line_value_error(tmp_path, times, values, origin, quantiles, levels, match):
    with pytest.raises(ValueError, match=match):
        plot_dated_forecast(times, values, origin, quantiles, levels, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()
