"""Sentence pairs: the TSV reader and its errors, the Ding (de-en) parser, splits by source, vocabularies with
four distinct specials, and batches with <bos> / <eos> placed right."""

from __future__ import annotations

import pytest

from rnnlab.data.pairs import (
    DE_EN_PATH,
    PairBatches,
    PairVocab,
    ParallelDataConfig,
    default_tokenizers,
    load_de_en,
    load_parallel,
    read_pairs_file,
    split_pairs,
)
from rnnlab.data.sources import DataError


def write(tmp_path, text, name="pairs.tsv", encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def test_tsv_pairs_skip_blanks_and_comments_and_ignore_extra_columns(tmp_path):
    path = write(
        tmp_path,
        "\ufeff# German\tEnglish\nGuten Morgen.\tGood morning.\n\n  Danke!  \tThanks!\tCC-BY 2.0 (Tatoeba)\n",
    )
    assert read_pairs_file(path) == [("Guten Morgen.", "Good morning."), ("Danke!", "Thanks!")]


@pytest.mark.parametrize(
    "text, message",
    [
        ("Guten Morgen. Good morning.\n", "line 1: expected 'source<TAB>target'"),
        ("a\tb\n\t\tc\n", "line 2: the source is empty"),
        ("a\t \n", "line 1: the target is empty"),
        ("# only a comment\n\n", "found none"),
    ],
)
def test_bad_tsv_files_name_the_file_and_line(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(DataError, match=message) as info:
        read_pairs_file(path)
    assert str(path) in str(info.value)


def test_missing_and_undecodable_files(tmp_path):
    with pytest.raises(DataError, match="nope.tsv'?: no such file; expected a bundled data set"):
        read_pairs_file(tmp_path / "nope.tsv")
    with pytest.raises(DataError, match="is a directory, not a data file; .*'dates', 'de-en'"):
        read_pairs_file(tmp_path)
    path = write(tmp_path, "Grüße\tgreetings\n", encoding="latin-1")
    with pytest.raises(DataError, match="expected UTF-8"):
        read_pairs_file(path)


DING = """# Version :: test
Aal {m} | Aale {pl} :: eel | eels
Es regnet (heute). [ugs.] | Es hat geregnet! :: It's raining (today). | It rained!
Lass dir nichts anmerken!; Zeig nichts! | Rede! :: Don’t let on anything! | Talk!
unter Berufung auf etw. :: referring to sth.
Das steht dir gut. :: That suits you well.
Nur ein Teil | Zwei. :: only one side
Er argumentiert/streitet. :: He argues/quarrels.
Dieser Satz hat sehr viel mehr Wörter als erlaubt sind, viel mehr. :: Too long, but only on one side.
"""


def test_ding_entries_become_aligned_sentence_pairs(tmp_path):
    pairs = load_de_en(write(tmp_path, DING, "de-en"), max_words=10)
    assert pairs == [
        ("Es regnet.", "It's raining."),  # annotations removed, space before "." closed
        ("Es hat geregnet!", "It rained!"),
        ("Lass dir nichts anmerken!", "Don't let on anything!"),  # first alternative, straight apostrophe
        ("Rede!", "Talk!"),
        ("Das steht dir gut.", "That suits you well."),
    ]  # words ("Aal"), phrases ("etw."), unaligned and slash alternatives are left out


def test_de_en_without_the_package_says_how_to_install_it(tmp_path):
    with pytest.raises(DataError, match="apt-get install trans-de-en"):
        load_de_en(tmp_path / "de-en")
    with pytest.raises(DataError, match="apt-get install trans-de-en"):
        load_parallel(ParallelDataConfig(dataset="de-en", de_en_path=str(tmp_path / "de-en")))


@pytest.mark.skipif(not DE_EN_PATH.is_file(), reason="Debian package trans-de-en is not installed")
def test_the_installed_de_en_dictionary_gives_thousands_of_short_sentence_pairs():
    corpus = load_parallel(ParallelDataConfig(dataset="de-en"))
    n = len(corpus.train) + len(corpus.valid) + len(corpus.test)
    assert 10_000 < n < 20_000
    assert not {s for s, _ in corpus.train} & {s for s, _ in corpus.test}
    assert all(len(s.split()) <= 10 and len(t.split()) <= 10 for s, t in corpus.test)
    assert default_tokenizers(corpus) == ("word", "word")


def test_split_is_by_source_deduplicated_and_seeded():
    pairs = [(f"s{i % 40}", f"t{i}") for i in range(120)] + [("s1", "t1")] * 3
    train, valid, test = split_pairs(pairs, 0.1, 0.2, seed=7)
    assert len(train) + len(valid) + len(test) == 120  # the three extra ("s1", "t1") are duplicates
    sources = [{s for s, _ in part} for part in (train, valid, test)]
    assert (len(sources[1]), len(sources[2])) == (4, 8)
    assert not sources[0] & sources[1] and not sources[0] & sources[2] and not sources[1] & sources[2]
    assert split_pairs(pairs, 0.1, 0.2, seed=7) == (train, valid, test)
    assert split_pairs(pairs, 0.1, 0.2, seed=8) != (train, valid, test)


def test_a_tsv_file_loads_and_splits(tmp_path):
    path = write(tmp_path, "".join(f"这是第{i}句\tsentence {i}\n" for i in range(50)))
    corpus = load_parallel(ParallelDataConfig(dataset=str(path), valid_fraction=0.1, test_fraction=0.2))
    assert (len(corpus.train), len(corpus.valid), len(corpus.test)) == (35, 5, 10)
    assert default_tokenizers(corpus) == ("char", "word")  # Chinese by character, English by word


def test_config_checks_name_the_field():
    with pytest.raises(ValueError, match="valid_fraction, test_fraction"):
        ParallelDataConfig(valid_fraction=0.6, test_fraction=0.5)
    with pytest.raises(ValueError, match="src_tokenizer"):
        ParallelDataConfig(src_tokenizer="bpe")


def test_vocab_has_four_distinct_specials_and_round_trips():
    vocab = PairVocab.build([list("2036-03-24"), list("1999-12-31")])
    assert vocab.tokens[:4] == ["<pad>", "<unk>", "<bos>", "<eos>"]
    assert len({vocab.pad_id, vocab.unk_id, vocab.bos_id, vocab.eos_id}) == 4
    assert vocab.encode(["<bos>", "x"]) == [2, 1]
    assert PairVocab.from_dict(vocab.to_dict()) == vocab
    literal = PairVocab.build([["<eos>", "a"]])  # a literal "<eos>" in the text gets no second id
    assert literal.tokens == ["<pad>", "<unk>", "<bos>", "<eos>", "a"]


def test_batches_put_bos_before_and_eos_after_the_target():
    vocab = PairVocab(PairVocab.specials)
    sources = [[5, 6, 7], [8], [9, 10]]
    targets = [[4], [5, 6, 7], [8, 9]]
    batches = PairBatches(sources, targets, batch_size=2, shuffle=True, seed=0, vocab=vocab)
    seen = []
    for batch in batches:
        for row, i in enumerate(batch.index):
            n, m = len(sources[i]), len(targets[i])
            assert batch.src[row, :n].tolist() == sources[i] and batch.src[row, n:].eq(0).all()
            assert batch.src_lengths[row] == n
            assert batch.tgt_in[row, : m + 1].tolist() == [2, *targets[i]]
            assert batch.tgt_out[row, : m + 1].tolist() == [*targets[i], 3]
            assert batch.tgt_in[row, m + 1 :].eq(0).all() and batch.tgt_out[row, m + 1 :].eq(0).all()
            seen.append(i)
    assert sorted(seen) == [0, 1, 2] and len(batches) == 2
    with pytest.raises(ValueError, match="sources"):
        PairBatches([[1], []], None, 2)
    with pytest.raises(ValueError, match="targets"):
        PairBatches([[1]], [[1], [2]], 2)
