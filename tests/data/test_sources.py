"""Data sources: de-duplication before splitting, the bundled sets' exact counts, the user's files, errors."""

from __future__ import annotations

import io
import json
import tarfile

import pytest

from rnnlab.data import (
    DataError,
    LabeledTexts,
    cache_dir,
    deduplicate,
    load_data,
    load_movies_en,
    load_reviews_zh,
    make_splits,
    read_labeled_file,
)


@pytest.fixture(scope="module")
def reviews() -> LabeledTexts:
    return load_reviews_zh()


def test_deduplicate_keeps_first_copies_and_drops_conflicts():
    texts = ["good", "bad", " good ", "meh", "meh", "bad"]
    labels = ["pos", "neg", "pos", "pos", "neg", "neg"]
    kept, kept_labels, info = deduplicate(texts, labels)
    assert kept == ["good", "bad"] and kept_labels == ["pos", "neg"]  # "meh" has two labels: dropped
    assert info == {"input": 6, "duplicates": 3, "conflicting_texts": 1, "kept": 2}


def test_reviews_zh_counts_after_deduplication(reviews):
    assert len(reviews) == 17_363
    assert reviews.label_counts() == {"neg": 9_031, "pos": 8_332}
    assert reviews.info["conflicting_texts"] == 47
    assert len(set(reviews.texts)) == len(reviews)


def test_reviews_zh_splits_share_no_text_and_are_reproducible(reviews):
    splits = make_splits(reviews, 0.1, 0.1, seed=0)
    train, valid, test = (set(p.texts) for p in (splits.train, splits.valid, splits.test))
    assert not (train & valid or train & test or valid & test)
    assert len(train) + len(valid) + len(test) == 17_363
    # stratified: each part keeps the 52/48 class balance
    for part in (splits.valid, splits.test):
        assert part.label_counts()["neg"] / len(part) == pytest.approx(9_031 / 17_363, abs=0.002)
    again = make_splits(reviews, 0.1, 0.1, seed=0)
    assert again.info["test"]["fingerprint"] == splits.info["test"]["fingerprint"]
    other = make_splits(reviews, 0.1, 0.1, seed=1)
    assert other.info["test"]["fingerprint"] != splits.info["test"]["fingerprint"]
    assert splits.info["deduplication"]["kept"] == 17_363


def _fake_vader_cache(root, rows: list[str]):
    """A cache holding a stand-in vaderSentiment sdist with the nested tarball layout of the real one."""
    inner = io.BytesIO()
    with tarfile.open(fileobj=inner, mode="w:gz") as tar:
        data = "\r\n".join(rows).encode("utf-8") + b"\r\n"
        info = tarfile.TarInfo("hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    folder = root / "movies-en"
    folder.mkdir(parents=True)
    with tarfile.open(folder / "vaderSentiment-3.3.2.tar.gz", "w:gz") as tar:
        info = tarfile.TarInfo("vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz")
        info.size = len(inner.getvalue())
        tar.addfile(info, io.BytesIO(inner.getvalue()))


def test_movies_en_labels_by_sign_and_drops_zeros(tmp_path, monkeypatch):
    rows = [
        "1\t2.27\tA splendid film.",
        "2\t-1.5\tDull and long.",
        "3\t0.0\tIt exists.",
        "4\t0.4\tA splendid film.",
    ]
    _fake_vader_cache(tmp_path, rows)
    monkeypatch.setenv("RNNLAB_CACHE", str(tmp_path))
    assert cache_dir() == tmp_path
    data = load_movies_en()
    assert data.texts == [
        "A splendid film.",
        "Dull and long.",
    ]  # CRLF stripped, zero dropped, duplicate merged
    assert data.labels == ["pos", "neg"]
    assert (tmp_path / "movies-en" / "movieReviewSnippets_GroundTruth.txt").is_file()  # extracted once
    assert load_data("movies-en").texts == data.texts


def test_read_csv_tsv_jsonl_with_any_labels(tmp_path):
    (tmp_path / "a.csv").write_text('review,stars\n"Great, really",5\nAwful,1\n', encoding="utf-8")
    data = read_labeled_file(tmp_path / "a.csv", "review", "stars")
    assert data.texts == ["Great, really", "Awful"] and data.labels == ["5", "1"]
    (tmp_path / "a.tsv").write_text("text\tlabel\nfine\tgood\n", encoding="utf-8-sig")  # with a BOM
    assert read_labeled_file(tmp_path / "a.tsv").labels == ["good"]
    lines = [
        json.dumps({"text": "很好", "label": 1}, ensure_ascii=False),
        "",
        json.dumps({"text": "差", "label": 0}),
    ]
    (tmp_path / "a.jsonl").write_text("\n".join(lines), encoding="utf-8")
    data = load_data(str(tmp_path / "a.jsonl"))
    assert data.texts == ["很好", "差"] and data.labels == ["1", "0"]


def test_missing_column_names_the_column_and_what_exists(tmp_path):
    (tmp_path / "a.csv").write_text("review,label\nok,pos\n", encoding="utf-8")
    with pytest.raises(
        DataError, match=r"a.csv: missing text column 'text'; columns found: 'review', 'label'"
    ):
        read_labeled_file(tmp_path / "a.csv")


def test_non_utf8_file_names_the_byte_and_line(tmp_path):
    (tmp_path / "a.csv").write_bytes(b"text,label\nok,pos\n" + "质量差,neg\n".encode("gbk"))
    with pytest.raises(
        DataError, match=r"a.csv: not UTF-8 text \(byte 0x.. on line 3\); re-save the file as UTF-8"
    ):
        read_labeled_file(tmp_path / "a.csv")


def test_empty_text_or_label_names_the_row(tmp_path):
    (tmp_path / "a.csv").write_text("text,label\nok,pos\n   ,neg\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"a.csv, row 3: empty text in column 'text'"):
        read_labeled_file(tmp_path / "a.csv")
    (tmp_path / "b.jsonl").write_text('{"text": "ok", "label": ""}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"b.jsonl, line 1: missing label in column 'label'"):
        read_labeled_file(tmp_path / "b.jsonl")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("a.txt", "text,label\n", r"unknown format '.txt'; expected a CSV, TSV or JSONL file \(.csv, .tsv"),
        ("noext", "text,label\n", r"no file extension to tell its format; expected a CSV, TSV or JSONL"),
        ("a.csv", "text,label\n", r"a.csv: no rows"),
        ("a.jsonl", "{not json}\n", r"a.jsonl, line 1: not valid JSON"),
        ("a.jsonl", "[1, 2]\n", r"a.jsonl, line 1: expected a JSON object, received list"),
    ],
)
def test_malformed_files(tmp_path, name, content, message):
    (tmp_path / name).write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=message):
        read_labeled_file(tmp_path / name)


def test_unknown_data_name_or_path(tmp_path):
    with pytest.raises(DataError, match="'reviews-jp' is neither a bundled data set"):
        load_data("reviews-jp")
    with pytest.raises(DataError, match="no such file") as info:
        read_labeled_file(tmp_path / "missing.csv")
    assert str(tmp_path / "missing.csv") in str(info.value) and "reviews-zh, movies-en" in str(info.value)


def test_a_directory_is_not_a_data_file(tmp_path):
    (tmp_path / "data.csv").mkdir()  # even with a data file's suffix
    for folder in (tmp_path, tmp_path / "data.csv"):
        for load in (read_labeled_file, load_data):
            with pytest.raises(DataError, match="is a directory, not a data file") as info:
                load(str(folder))
            message = str(info.value)
            assert message.startswith(str(folder))
            assert (
                "CSV, TSV or JSONL" in message and ".jsonl" in message and "reviews-zh, movies-en" in message
            )
            assert "unknown format" not in message
