"""Time series: the bundled series (read from installed packages, never downloaded) and the user's own CSV.

A :class:`Series` is a regular series: ``values`` (T,) float64 and ``times`` (T,) ``numpy.datetime64``, one
step of ``freq`` apart (``hour``, ``day``, ``week``, ``month``, ``quarter``, ``year``). Everything that is
not regular is refused with a one-line :class:`DataError` naming the row: a non-numeric value, a missing
value, duplicate or unsorted timestamps, a gap. ``interpolate=True`` fills missing values and gaps linearly
(said in the series' ``filled`` count), which is never done silently.

Bundled series (see ../shared/DATA.md; each read from its package's files, so nothing is downloaded):

* ``airpassengers``: pmdarima's Box & Jenkins airline passengers, monthly 1949-1960 (144 values).
* ``co2``: statsmodels' Mauna Loa CO2, weekly 1958-2001 (2,284 values, 59 missing ones interpolated).
* ``sunspots``: statsmodels' yearly sunspot numbers 1700-2008 (309 values).
* ``elnino``: statsmodels' monthly sea surface temperatures 1950-2010 (732 values).
"""

from __future__ import annotations

import ast
import csv
import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnnlab.data.sources import DataError

__all__ = [
    "FREQS",
    "PERIODS",
    "SERIES_DATASETS",
    "Series",
    "load_series",
    "read_series_csv",
    "infer_freq",
    "future_times",
    "calendar_features",
    "series_datasets",
    "Scaler",
    "SCALINGS",
]

# Frequency -> (numpy datetime unit, steps of that unit per period step).
FREQS: dict[str, tuple[str, int]] = {
    "hour": ("h", 1),
    "day": ("D", 1),
    "week": ("D", 7),
    "month": ("M", 1),
    "quarter": ("M", 3),
    "year": ("Y", 1),
}
# The seasonal period m of each frequency (seasonal naive, MASE, Holt-Winters, SARIMA); 1: no season.
PERIODS = {"hour": 24, "day": 7, "week": 52, "month": 12, "quarter": 4, "year": 1}


@dataclass
class Series:
    """One regular series."""

    name: str  # a bundled name or the CSV path
    values: np.ndarray  # (T,) float64
    times: np.ndarray  # (T,) numpy.datetime64, one `freq` step apart
    freq: str  # one of FREQS
    filled: int = 0  # values filled by interpolation (missing values and gaps)

    @property
    def period(self) -> int:
        return PERIODS[self.freq]

    def __len__(self) -> int:
        return len(self.values)

    def slice(self, start: int, stop: int) -> Series:
        return Series(self.name, self.values[start:stop], self.times[start:stop], self.freq, self.filled)


def _as_unit(times: np.ndarray, freq: str) -> np.ndarray:
    return times.astype(f"datetime64[{FREQS[freq][0]}]")


def future_times(last: np.datetime64, freq: str, n: int) -> np.ndarray:
    """The ``n`` timestamps after ``last``, one ``freq`` step apart: (n,) datetime64."""
    unit, step = FREQS[freq]
    start = np.datetime64(last, unit)
    return start + np.arange(1, n + 1) * np.timedelta64(step, unit)


def calendar_features(times: np.ndarray, freq: str) -> np.ndarray:
    """Calendar position as sin / cos pairs, chosen from the frequency: (T, F) float32.

    month and quarter: month of year; week: week of year; day: day of week and month of year; hour: hour of
    day and day of week; year: none (F = 0).
    """
    days = times.astype("datetime64[D]")
    month = (times.astype("datetime64[M]").astype(np.int64) % 12).astype(np.float64)  # 0..11
    day_of_year = (days - days.astype("datetime64[Y]")).astype(np.int64).astype(np.float64)
    weekday = ((days.astype(np.int64) + 3) % 7).astype(np.float64)  # 1970-01-01 was a Thursday: Monday = 0
    hour = (times.astype("datetime64[h]").astype(np.int64) % 24).astype(np.float64)
    parts = {
        "month": [(month, 12)],
        "quarter": [(month, 12)],
        "week": [(day_of_year, 365.25)],
        "day": [(weekday, 7), (month, 12)],
        "hour": [(hour, 24), (weekday, 7)],
        "year": [],
    }[freq]
    columns = []
    for value, cycle in parts:
        angle = 2 * math.pi * value / cycle
        columns += [np.sin(angle), np.cos(angle)]
    if not columns:
        return np.zeros((len(times), 0), dtype=np.float32)
    return np.stack(columns, axis=1).astype(np.float32)  # (T, F)


def infer_freq(times: np.ndarray, source: str) -> str:
    """The frequency whose step is the most common spacing of ``times`` (datetime64[s])."""
    if len(times) < 2:
        raise DataError(f"{source}: at least 2 timestamps are needed to infer the frequency")
    seconds = np.diff(times.astype("datetime64[s]").astype(np.int64))
    values, counts = np.unique(seconds, return_counts=True)
    spacing = int(values[counts.argmax()])
    day = 86400
    for freq, (low, high) in {
        "hour": (3600, 3600),
        "day": (day, day),
        "week": (7 * day, 7 * day),
        "month": (28 * day, 31 * day),
        "quarter": (89 * day, 92 * day),
        "year": (365 * day, 366 * day),
    }.items():
        if low <= spacing <= high:
            return freq
    raise DataError(
        f"{source}: timestamps {spacing} s apart match no supported frequency ({', '.join(FREQS)}); "
        "give data.freq"
    )


def _regularize(name: str, times: np.ndarray, values: np.ndarray, freq: str, interpolate: bool, rows=None):
    """Check that ``times`` are sorted, unique and one ``freq`` step apart; fill gaps and NaNs only when
    ``interpolate``. ``rows`` names the source rows of each value (for the error messages)."""
    rows = np.arange(len(times)) + 2 if rows is None else rows
    unit, step = FREQS[freq]
    snapped = times.astype(f"datetime64[{unit}]")
    index = snapped.astype(np.int64)
    gaps = np.diff(index)
    if (gaps == 0).any():
        i = int(np.flatnonzero(gaps == 0)[0])
        raise DataError(f"{name}: duplicate timestamp {snapped[i + 1]} (rows {rows[i]} and {rows[i + 1]})")
    if (gaps < 0).any():
        i = int(np.flatnonzero(gaps < 0)[0])
        raise DataError(
            f"{name}: timestamps not sorted: row {rows[i + 1]} ({snapped[i + 1]}) comes before row {rows[i]} "
            f"({snapped[i]}); sort the file by time"
        )
    off = gaps % step != 0
    if off.any():
        i = int(np.flatnonzero(off)[0])
        raise DataError(
            f"{name}: irregular row {rows[i + 1]} ({snapped[i + 1]}): not a whole {freq} after "
            f"{snapped[i]}; expected one row per {freq}"
        )
    missing_steps = int((gaps // step - 1).sum())
    nans = int(np.isnan(values).sum())
    if (missing_steps or nans) and not interpolate:
        if missing_steps:
            i = int(np.flatnonzero(gaps > step)[0])
            raise DataError(
                f"{name}: a gap in the {freq}ly series after {snapped[i]} (row {rows[i]}): "
                f"{int(gaps[i] // step - 1)} missing; pass data.interpolate=true to fill gaps linearly"
            )
        i = int(np.flatnonzero(np.isnan(values))[0])
        raise DataError(
            f"{name}: missing value at row {rows[i]} ({snapped[i]}); pass data.interpolate=true to fill "
            "missing values linearly"
        )
    position = (index - index[0]) // step  # (T,) step number of each row
    full = np.full(int(position[-1]) + 1, np.nan)
    full[position] = values
    known = ~np.isnan(full)
    if not known.any():
        raise DataError(f"{name}: no numeric value at all")
    if not known.all():
        steps = np.arange(len(full))
        full = np.interp(steps, steps[known], full[known])
    all_times = snapped[0] + np.arange(len(full)) * np.timedelta64(step, unit)
    return Series(name, full.astype(np.float64), all_times, freq, int((~known).sum()))


def _parse_time(text: str) -> np.datetime64 | None:
    text = text.strip()
    if text.isdigit() and len(text) == 8:  # 19580329
        text = f"{text[:4]}-{text[4:6]}-{text[6:]}"
    elif text.isdigit() and len(text) == 4:  # a year
        text = f"{text}-01-01"
    try:
        return np.datetime64(text.replace(" ", "T").replace("/", "-"), "s")
    except ValueError:
        return None


def read_series_csv(
    path: str | Path,
    time_column: str | None = None,
    value_column: str | None = None,
    freq: str | None = None,
    interpolate: bool = False,
) -> Series:
    """A regular series from a CSV file with a time column and a value column.

    The columns are guessed when the file has exactly two (the first is the time); otherwise name them.
    ``freq`` (one of :data:`FREQS`) is inferred from the most common spacing when None. Empty values
    (``""``, ``NA``, ``nan``) and missing rows are errors unless ``interpolate``.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    if freq is not None and freq not in FREQS:
        raise DataError(f"data.freq: expected one of {', '.join(FREQS)}, received {freq!r}")
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        rows = [(n, row) for n, row in enumerate(reader, start=2) if any(cell.strip() for cell in row)]
    if not header:
        raise DataError(f"{path}: empty file; expected a header row, then one row per time step")
    header = [h.strip() for h in header]
    if time_column is None and value_column is None:
        if len(header) != 2:
            raise DataError(
                f"{path}: {len(header)} columns ({', '.join(header)}); name them with data.time_column and "
                "data.value_column (guessed only for exactly two columns)"
            )
        time_column, value_column = header
    for key, column in (("data.time_column", time_column), ("data.value_column", value_column)):
        if column is None or column not in header:
            raise DataError(f"{key}: expected one of the columns {', '.join(header)}, received {column!r}")
    ti, vi = header.index(time_column), header.index(value_column)
    times, values, line = [], [], []
    for n, row in rows:
        if len(row) <= max(ti, vi):
            raise DataError(f"{path}: row {n} has {len(row)} columns, expected {len(header)}")
        stamp = _parse_time(row[ti])
        if stamp is None:
            raise DataError(f"{path}: row {n}: {row[ti]!r} in column {time_column!r} is not a date or time")
        text = row[vi].strip()
        if text.lower() in ("", "na", "nan", "null"):
            value = math.nan
        else:
            try:
                value = float(text)
            except ValueError:
                raise DataError(
                    f"{path}: row {n}: {text!r} in column {value_column!r} is not a number"
                ) from None
            if not math.isfinite(value):
                raise DataError(f"{path}: row {n}: {text!r} in column {value_column!r} is not finite")
        times.append(stamp)
        values.append(value)
        line.append(n)
    if len(times) < 2:
        raise DataError(f"{path}: {len(times)} data rows; a series needs many more")
    stamps = np.array(times, dtype="datetime64[s]")
    freq = freq or infer_freq(stamps, str(path))
    return _regularize(
        str(path), stamps, np.array(values, dtype=np.float64), freq, interpolate, np.array(line)
    )


# -- bundled series ----------------------------------------------------------------------------------------


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"{package} is not installed; pip install 'rnnlab[tasks]' to use its bundled series")
    return Path(spec.submodule_search_locations[0])


def _airpassengers() -> Series:
    # The values are a literal inside pmdarima/datasets/airpassengers.py: read it with ast instead of
    # importing pmdarima (whose import compiles and loads all of its models, seconds on a busy machine).
    source = (_package_dir("pmdarima") / "datasets" / "airpassengers.py").read_text(encoding="utf-8")
    values = None
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.List):
            values = ast.literal_eval(node.args[0])
            break
    if values is None or len(values) != 144:
        raise DataError("airpassengers: pmdarima's file does not hold the 144 monthly values")
    times = np.datetime64("1949-01", "M") + np.arange(144)
    return Series("airpassengers", np.array(values, dtype=np.float64), times, "month")


def _statsmodels_csv(name: str) -> list[list[str]]:
    path = _package_dir("statsmodels") / "datasets" / name / f"{name}.csv"
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.reader(f))[1:]


def _co2() -> Series:
    rows = _statsmodels_csv("co2")
    times = np.array([_parse_time(r[0]) for r in rows], dtype="datetime64[s]")
    values = np.array([float(r[1]) if r[1].strip() else math.nan for r in rows])
    return _regularize("co2", times, values, "week", interpolate=True)


def _sunspots() -> Series:
    rows = _statsmodels_csv("sunspots")
    times = np.array([int(float(r[0])) - 1970 for r in rows]).astype("datetime64[Y]")
    return Series("sunspots", np.array([float(r[1]) for r in rows]), times, "year")


def _elnino() -> Series:
    rows = _statsmodels_csv("elnino")
    values = np.array([float(v) for r in rows for v in r[1:13]])
    start = np.datetime64(f"{int(float(rows[0][0]))}-01", "M")
    return Series("elnino", values, start + np.arange(len(values)), "month")


@dataclass(frozen=True)
class _Bundled:
    load: object  # () -> Series
    package: str
    horizon: int  # the default holdout (and forecast) length
    description: str


SERIES_DATASETS: dict[str, _Bundled] = {
    "airpassengers": _Bundled(_airpassengers, "pmdarima", 36, "airline passengers, monthly 1949-1960 (144)"),
    "co2": _Bundled(_co2, "statsmodels", 52, "Mauna Loa CO2, weekly 1958-2001 (2,284; 59 gaps interpolated)"),
    "sunspots": _Bundled(_sunspots, "statsmodels", 11, "sunspot numbers, yearly 1700-2008 (309)"),
    "elnino": _Bundled(
        _elnino, "statsmodels", 24, "Pacific sea surface temperature, monthly 1950-2010 (732)"
    ),
}


def load_series(
    name: str,
    time_column: str | None = None,
    value_column: str | None = None,
    freq: str | None = None,
    interpolate: bool = False,
) -> Series:
    """A bundled series by name, or a CSV file by path (see :func:`read_series_csv`)."""
    if name in SERIES_DATASETS:
        series = SERIES_DATASETS[name].load()
        if freq is not None and freq != series.freq:
            raise DataError(f"data.freq: {name} is a {series.freq}ly series, received freq={freq!r}")
        return series
    if not name.lower().endswith(".csv"):
        raise DataError(
            f"data.dataset: expected a bundled series ({', '.join(SERIES_DATASETS)}) or a .csv file, "
            f"received {name!r}"
        )
    return read_series_csv(name, time_column, value_column, freq, interpolate)


def series_datasets() -> list[dict]:
    """The bundled series and whether each is available here (its package installed)."""
    return [
        {
            "name": name,
            "description": f"{entry.description} (inside {entry.package})",
            "available": importlib.util.find_spec(entry.package) is not None,
            "how": f"pip install 'rnnlab[tasks]' ({entry.package})",
        }
        for name, entry in SERIES_DATASETS.items()
    ]


# -- scaling ---------------------------------------------------------------------------------------------

SCALINGS = ("auto", "log", "standard", "none")


@dataclass
class Scaler:
    """Per-series scaling, fitted on the part before the holdout only: ``z = (f(y) - mean) / std`` with
    ``f = log`` or the identity; :meth:`inverse` undoes it."""

    log: bool = False
    mean: float = 0.0
    std: float = 1.0

    @classmethod
    def fit(cls, values: np.ndarray, scaling: str = "auto") -> Scaler:
        """``auto``: log when every value is positive and the largest is at least twice the smallest (a level
        that grows, with a season that grows with it, as in airline traffic), else standardise only."""
        if scaling not in SCALINGS:
            raise DataError(f"data.scaling: expected one of {', '.join(SCALINGS)}, received {scaling!r}")
        values = np.asarray(values, dtype=np.float64)
        if scaling == "log" and values.min() <= 0:
            raise DataError(
                f"data.scaling=log: the series has values <= 0 (min {values.min():g}); use standard or auto"
            )
        log = scaling == "log" or (
            scaling == "auto" and values.min() > 0 and values.max() >= 2 * values.min()
        )
        f = np.log(values) if log else values
        if scaling == "none":
            return cls(log=False, mean=0.0, std=1.0)
        std = float(f.std())
        return cls(log=bool(log), mean=float(f.mean()), std=std if std > 0 else 1.0)

    def transform(self, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=np.float64)
        if self.log and (values <= 0).any():
            raise DataError("history: the model was trained on log values; expected values > 0")
        return ((np.log(values) if self.log else values) - self.mean) / self.std

    def inverse(self, z: np.ndarray) -> np.ndarray:
        f = np.asarray(z, dtype=np.float64) * self.std + self.mean
        return np.exp(f) if self.log else f

    def to_dict(self) -> dict:
        return {"log": self.log, "mean": self.mean, "std": self.std}
