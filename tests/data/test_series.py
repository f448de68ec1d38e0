"""Time series loading: the bundled series, the user's CSV with every irregularity refused (or filled when
asked), frequency inference, calendar features and the scaler's round trip."""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest

from rnnlab.data.series import (
    Scaler,
    calendar_features,
    future_times,
    infer_freq,
    load_series,
    read_series_csv,
)
from rnnlab.data.sources import DataError

needs_statsmodels = pytest.mark.skipif(importlib.util.find_spec("statsmodels") is None, reason="statsmodels")
needs_pmdarima = pytest.mark.skipif(importlib.util.find_spec("pmdarima") is None, reason="pmdarima")


def write_csv(path, rows, header=("month", "value")):
    path.write_text(",".join(header) + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    return path


def monthly(n=24, start=2000):
    return [(f"{start + i // 12}-{i % 12 + 1:02d}-01", 100 + i) for i in range(n)]


@needs_pmdarima
def test_airpassengers_is_the_box_jenkins_series():
    s = load_series("airpassengers")
    assert len(s) == 144 and s.freq == "month" and s.period == 12
    assert s.values[:3].tolist() == [112, 118, 132] and s.values[-1] == 432
    assert str(s.times[0]) == "1949-01" and str(s.times[-1]) == "1960-12"


@needs_statsmodels
@pytest.mark.parametrize(
    ("name", "n", "freq", "filled", "first", "last"),
    [
        ("co2", 2284, "week", 59, "1958-03-29", "2001-12-29"),
        ("sunspots", 309, "year", 0, "1700", "2008"),
        ("elnino", 732, "month", 0, "1950-01", "2010-12"),
    ],
)
def test_statsmodels_series(name, n, freq, filled, first, last):
    s = load_series(name)
    assert (len(s), s.freq, s.filled) == (n, freq, filled)
    assert (str(s.times[0]), str(s.times[-1])) == (first, last)
    assert np.isfinite(s.values).all()
    step = np.diff(s.times.astype("datetime64[D]").astype(np.int64))
    assert freq != "week" or (step == 7).all()


def test_csv_with_two_columns_is_guessed_and_its_frequency_inferred(tmp_path):
    s = read_series_csv(write_csv(tmp_path / "s.csv", monthly(30)))
    assert s.freq == "month" and len(s) == 30 and s.values[0] == 100 and s.values[-1] == 129
    assert str(s.times[-1]) == "2002-06"


def test_csv_with_more_columns_needs_names(tmp_path):
    path = write_csv(tmp_path / "s.csv", [(t, v, 1) for t, v in monthly()], ("t", "sales", "other"))
    with pytest.raises(DataError, match="3 columns .* data.time_column and data.value_column"):
        read_series_csv(path)
    assert read_series_csv(path, "t", "sales").values[1] == 101
    with pytest.raises(DataError, match="data.value_column: expected one of the columns t, sales, other"):
        read_series_csv(path, "t", "units")


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda r: r.__setitem__(5, (r[5][0], "abc")), r"row 7: 'abc' in column 'value' is not a number"),
        (lambda r: r.__setitem__(5, r[4]), r"duplicate timestamp 2000-05 \(rows 6 and 7\)"),
        (lambda r: r.__setitem__(5, ("1999-01-01", 1)), "not sorted"),
        (
            lambda r: r.pop(5),
            r"a gap in the monthly series after 2000-05 .* 1 missing; .*data.interpolate=true",
        ),
        (lambda r: r.__setitem__(5, (r[5][0], "")), r"missing value at row 7 .*data.interpolate=true"),
        (lambda r: r.__setitem__(5, ("June 2000", 1)), "not a date or time"),
    ],
    ids=["non-numeric", "duplicate", "unsorted", "gap", "missing", "bad-time"],
)
def test_irregular_csvs_are_one_line_errors(tmp_path, edit, match):
    rows = monthly()
    edit(rows)
    with pytest.raises(DataError, match=match) as info:
        read_series_csv(write_csv(tmp_path / "s.csv", rows))
    assert "\n" not in str(info.value)


def test_interpolate_fills_gaps_and_missing_values_linearly(tmp_path):
    rows = monthly()
    rows[3] = (rows[3][0], "NA")
    del rows[7]
    s = read_series_csv(write_csv(tmp_path / "s.csv", rows), interpolate=True)
    assert len(s) == 24 and s.filled == 2
    np.testing.assert_allclose(s.values, 100 + np.arange(24))  # the values were linear: filled exactly


def test_irregular_spacing_within_a_frequency_is_refused(tmp_path):
    rows = [(f"2000-01-{d:02d}", d) for d in (1, 8, 15, 19, 26)]
    with pytest.raises(DataError, match="irregular row 5 .* not a whole week"):
        read_series_csv(write_csv(tmp_path / "s.csv", rows), freq="week")


def test_infer_freq():
    days = np.datetime64("2020-01-06") + np.arange(10)
    assert infer_freq(days.astype("datetime64[s]"), "x") == "day"
    assert infer_freq((days[::7]).astype("datetime64[s]"), "x") == "week"
    years = np.arange(30, 40).astype("datetime64[Y]").astype("datetime64[s]")
    assert infer_freq(years, "x") == "year"
    with pytest.raises(DataError, match="match no supported frequency"):
        infer_freq(np.array(["2020-01-01", "2020-01-03"], dtype="datetime64[s]"), "x")


def test_future_times_and_calendar_features():
    assert [str(t) for t in future_times(np.datetime64("2000-11", "M"), "month", 3)] == [
        "2000-12",
        "2001-01",
        "2001-02",
    ]
    assert str(future_times(np.datetime64("2000-01-01"), "week", 2)[-1]) == "2000-01-15"
    months = np.datetime64("2000-01", "M") + np.arange(24)
    cal = calendar_features(months, "month")  # (24, 2): sin, cos of the month
    assert cal.shape == (24, 2)
    np.testing.assert_allclose(cal[:12], cal[12:])  # one cycle a year
    np.testing.assert_allclose(cal[3], [1.0, 0.0], atol=1e-6)  # April: a quarter of the way round
    days = np.datetime64("2024-01-01") + np.arange(7)  # a Monday first
    np.testing.assert_allclose(calendar_features(days, "day")[0, :2], [0.0, 1.0], atol=1e-6)
    assert calendar_features(np.arange(5).astype("datetime64[Y]"), "year").shape == (5, 0)


@pytest.mark.parametrize("scaling", ["auto", "log", "standard", "none"])
def test_scaler_round_trip(scaling):
    y = np.array([112.0, 118, 132, 129, 121, 135, 148, 300])
    scaler = Scaler.fit(y, scaling)
    z = scaler.transform(y)
    np.testing.assert_allclose(scaler.inverse(z), y, rtol=1e-12)
    assert scaler.log == (scaling in ("auto", "log"))  # auto: positive and growing at least twofold
    if scaling != "none":
        assert abs(z.mean()) < 1e-9 and math.isclose(z.std(), 1.0)


def test_scaler_auto_keeps_a_series_with_zeros_linear_and_log_refuses_it():
    y = np.array([0.0, 5, 11, 16, 23])
    assert not Scaler.fit(y, "auto").log
    with pytest.raises(DataError, match="data.scaling=log: the series has values <= 0"):
        Scaler.fit(y, "log")
