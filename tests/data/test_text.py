"""Tokenizers and the vocabulary: splitting rules, the automatic choice, ids, caps, JSON round trip."""

from __future__ import annotations

import json

import pytest

from rnnlab.data.text import (
    PAD,
    UNK,
    CharTokenizer,
    Vocab,
    WordTokenizer,
    choose_tokenizer,
    cjk_fraction,
    make_tokenizer,
    tokenizer_from_dict,
)


def test_char_tokenizer_keeps_every_character_but_whitespace():
    assert CharTokenizer()("质量 太差了！\n") == ["质", "量", "太", "差", "了", "！"]


def test_char_tokenizer_lowercases_latin_only_when_asked():
    assert CharTokenizer()("iPad好") == ["i", "p", "a", "d", "好"]
    assert CharTokenizer(lower=False)("iPad") == ["i", "P", "a", "d"]


def test_word_tokenizer_splits_words_and_punctuation():
    tokens = WordTokenizer()("It's a WELL-MADE film, isn't it? 10/10")
    assert tokens == ["it's", "a", "well-made", "film", ",", "isn't", "it", "?", "10", "/", "10"]


def test_word_tokenizer_without_lowercasing():
    assert WordTokenizer(lower=False)("Great Film") == ["Great", "Film"]


def test_cjk_fraction_counts_letters_only():
    assert cjk_fraction(["好好 ab"]) == pytest.approx(0.5)
    assert cjk_fraction(["123 !!!"]) == 0.0


@pytest.mark.parametrize(
    ("texts", "expected"),
    [
        (["这个东西很好用，物流也快", "质量太差了"], "char"),
        (["A gorgeous, witty film.", "Tedious and flat."], "word"),
        (["iPhone 充电很快，好评"], "char"),  # mostly Chinese with a brand name: still characters
        ([], "word"),
    ],
)
def test_choose_tokenizer_by_script(texts, expected):
    assert choose_tokenizer(texts) == expected


def test_make_tokenizer_auto_and_explicit():
    assert isinstance(make_tokenizer("auto", ["很好"]), CharTokenizer)
    assert isinstance(make_tokenizer("auto", ["fine"]), WordTokenizer)
    assert isinstance(make_tokenizer("char", ["fine"]), CharTokenizer)  # an explicit choice wins
    assert make_tokenizer("word", lower=False).lower is False
    with pytest.raises(ValueError, match="tokenizer: expected one of auto, char, word; received 'bpe'"):
        make_tokenizer("bpe")


@pytest.mark.parametrize("tokenizer", [CharTokenizer(), WordTokenizer(lower=False)])
def test_tokenizer_dict_round_trip(tokenizer):
    spec = json.loads(json.dumps(tokenizer.to_dict()))
    assert tokenizer_from_dict(spec) == tokenizer
    with pytest.raises(ValueError, match="expected name in"):
        tokenizer_from_dict({"name": "sentencepiece"})


def test_vocab_specials_order_and_unknowns():
    vocab = Vocab.build([["b", "a", "b"], ["c", "a", "b"]])
    # count descending (b: 3, a: 2), ties by the token (c before nothing else)
    assert vocab.tokens == [PAD, UNK, "b", "a", "c"]
    assert (vocab.pad_id, vocab.unk_id) == (0, 1)
    assert vocab.encode(["a", "zzz", "c"]) == [3, 1, 4]
    assert vocab.decode([2, 3]) == ["b", "a"]
    assert "a" in vocab and "zzz" not in vocab and len(vocab) == 5


def test_vocab_ties_are_broken_by_the_token_so_ids_are_stable():
    first = Vocab.build([["y", "x", "z"]])
    second = Vocab.build([["z", "y", "x"]])
    assert first == second and first.tokens[2:] == ["x", "y", "z"]


def test_vocab_min_freq_and_max_size():
    lists = [["a"] * 5 + ["b"] * 3 + ["c"] * 2 + ["d"]]
    assert Vocab.build(lists, min_freq=2).tokens[2:] == ["a", "b", "c"]
    assert Vocab.build(lists, max_size=4).tokens == [PAD, UNK, "a", "b"]  # the cap counts the specials
    with pytest.raises(ValueError, match="min_freq: expected >= 1, received 0"):
        Vocab.build(lists, min_freq=0)
    with pytest.raises(ValueError, match="max_size: expected >= 2 or None, received 1"):
        Vocab.build(lists, max_size=1)


def test_vocab_ignores_literal_special_tokens_in_text():
    vocab = Vocab.build([["<unk>", "<pad>", "a"]])
    assert vocab.tokens == [PAD, UNK, "a"]


def test_vocab_json_round_trip_keeps_characters_readable(tmp_path):
    vocab = Vocab.build([list("这个东西很好用") + ["ok"]])
    path = tmp_path / "vocab.json"
    vocab.save(path)
    assert "好" in path.read_text(encoding="utf-8")  # not \\u597d
    loaded = Vocab.load(path)
    assert loaded == vocab and loaded.encode(list("好用")) == vocab.encode(list("好用"))
    assert Vocab.from_dict(json.loads(json.dumps(vocab.to_dict()))) == vocab


def test_vocab_rejects_malformed_token_lists():
    with pytest.raises(ValueError, match=r"tokens: expected to start with \['<pad>', '<unk>'\]"):
        Vocab(["a", "b"])
    with pytest.raises(ValueError, match="expected unique tokens, received 'a' more than once"):
        Vocab([PAD, UNK, "a", "a"])
    with pytest.raises(ValueError, match="expected a dict with a 'tokens' list"):
        Vocab.from_dict({"itos": []})
