"""Text -> tokens -> ids: tokenizers and a vocabulary with special tokens.

Two tokenizers cover the bundled data sets:

* :class:`CharTokenizer` splits into characters (whitespace dropped). Chinese has no spaces between words, and
  characters carry most of the meaning, so a character model needs no word segmenter.
* :class:`WordTokenizer` splits English-like text into words and punctuation marks.

:func:`choose_tokenizer` picks one from a sample of texts (``"auto"``): characters when CJK characters make up
a fair share of the letters, words otherwise.

:class:`Vocab` maps tokens to ids with ``<pad>`` = 0 and ``<unk>`` = 1, caps by minimum frequency and size,
orders tokens deterministically (count descending, then the token itself) and round-trips through JSON.
:func:`encode_texts` turns texts into the id lists that training and prediction batch.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "PAD",
    "UNK",
    "CharTokenizer",
    "WordTokenizer",
    "TOKENIZERS",
    "make_tokenizer",
    "tokenizer_from_dict",
    "choose_tokenizer",
    "cjk_fraction",
    "Vocab",
    "encode_texts",
]

PAD = "<pad>"
UNK = "<unk>"

# CJK Unified Ideographs (+ extension A), Hiragana/Katakana and Hangul syllables: scripts written without
# spaces between words, where a character tokenizer is the sensible default.
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
# A word: letters/digits with inner apostrophes or hyphens ("don't", "well-made"); or one punctuation mark.
_WORD = re.compile(r"[^\W_]+(?:['’\-][^\W_]+)*|[^\w\s]", re.UNICODE)


@dataclass(frozen=True)
class CharTokenizer:
    """Split a text into its non-whitespace characters.

    Example:
        >>> CharTokenizer()("好用, OK")
        ['好', '用', ',', 'o', 'k']
    """

    lower: bool = True  # lowercase Latin letters first (Chinese is unaffected)

    name = "char"

    def __call__(self, text: str) -> list[str]:
        if self.lower:
            text = text.lower()
        return [ch for ch in text if not ch.isspace()]

    def to_dict(self) -> dict:
        """JSON-ready description; :func:`tokenizer_from_dict` rebuilds the tokenizer from it."""
        return {"name": self.name, "lower": self.lower}


@dataclass(frozen=True)
class WordTokenizer:
    """Split a text into words and single punctuation marks.

    Example:
        >>> WordTokenizer()("Don't miss it -- a well-made film!")
        ["don't", 'miss', 'it', '-', '-', 'a', 'well-made', 'film', '!']
    """

    lower: bool = True  # lowercase before splitting

    name = "word"

    def __call__(self, text: str) -> list[str]:
        if self.lower:
            text = text.lower()
        return _WORD.findall(text)

    def to_dict(self) -> dict:
        """JSON-ready description; :func:`tokenizer_from_dict` rebuilds the tokenizer from it."""
        return {"name": self.name, "lower": self.lower}


# Tokenizers by name, resolved in one place (make_tokenizer).
TOKENIZERS = {"char": CharTokenizer, "word": WordTokenizer}


def cjk_fraction(texts: Iterable[str]) -> float:
    """Share of CJK characters among all letters and ideographs in ``texts`` (0.0 when there are none)."""
    cjk = letters = 0
    for text in texts:
        cjk += len(_CJK.findall(text))
        letters += sum(ch.isalpha() for ch in text)
    return cjk / letters if letters else 0.0


def choose_tokenizer(texts: Sequence[str], sample: int = 2000, threshold: float = 0.3) -> str:
    """Pick ``"char"`` or ``"word"`` for a corpus.

    Looks at the first ``sample`` texts: if at least ``threshold`` of their letters are CJK, returns
    ``"char"`` (Chinese, Japanese, Korean), else ``"word"``.

    Example:
        >>> choose_tokenizer(["这个东西很好用", "质量太差了"]), choose_tokenizer(["a fine film"])
        ('char', 'word')
    """
    return "char" if cjk_fraction(texts[:sample]) >= threshold else "word"


def make_tokenizer(name: str, texts: Sequence[str] = (), lower: bool = True) -> CharTokenizer | WordTokenizer:
    """Build a tokenizer by name: ``"char"``, ``"word"``, or ``"auto"`` (chosen from ``texts``)."""
    if name == "auto":
        name = choose_tokenizer(texts)
    if name not in TOKENIZERS:
        raise ValueError(f"tokenizer: expected one of auto, {', '.join(TOKENIZERS)}; received {name!r}")
    return TOKENIZERS[name](lower=lower)


def tokenizer_from_dict(spec: dict) -> CharTokenizer | WordTokenizer:
    """Inverse of ``tokenizer.to_dict()``."""
    name = spec.get("name")
    if name not in TOKENIZERS:
        raise ValueError(f"tokenizer spec: expected name in {sorted(TOKENIZERS)}, received {name!r}")
    return TOKENIZERS[name](lower=bool(spec.get("lower", True)))


class Vocab:
    """Token <-> id mapping with ``<pad>`` (id 0) and ``<unk>`` (id 1).

    Build one with :meth:`build`; unknown tokens encode to ``unk_id``. Ids are stable: tokens are ordered by
    count (descending), ties broken by the token string, so the same corpus always gives the same ids.

    Example:
        >>> v = Vocab.build([["a", "b", "a"], ["c", "a"]], min_freq=1)
        >>> v.tokens
        ['<pad>', '<unk>', 'a', 'b', 'c']
        >>> v.encode(["a", "z"])
        [2, 1]
    """

    specials = (PAD, UNK)

    def __init__(self, tokens: Sequence[str]) -> None:
        tokens = list(tokens)
        if tokens[: len(self.specials)] != list(self.specials):
            raise ValueError(f"tokens: expected to start with {list(self.specials)}, received {tokens[:2]}")
        if len(set(tokens)) != len(tokens):
            dup = next(t for t, n in Counter(tokens).items() if n > 1)
            raise ValueError(f"tokens: expected unique tokens, received {dup!r} more than once")
        self.tokens = tokens
        self.index = {token: i for i, token in enumerate(tokens)}

    pad_id = 0
    unk_id = 1

    @classmethod
    def build(
        cls, token_lists: Iterable[Sequence[str]], min_freq: int = 1, max_size: int | None = None
    ) -> Vocab:
        """Count tokens and keep those seen at least ``min_freq`` times, at most ``max_size`` in all.

        Args:
            token_lists: the tokenized training texts.
            min_freq: minimum count for a token to get its own id (>= 1).
            max_size: cap on the vocabulary size *including* the two specials; None for no cap.
        """
        if min_freq < 1:
            raise ValueError(f"min_freq: expected >= 1, received {min_freq}")
        if max_size is not None and max_size < len(cls.specials):
            raise ValueError(f"max_size: expected >= {len(cls.specials)} or None, received {max_size}")
        counts = Counter(token for tokens in token_lists for token in tokens)
        for special in cls.specials:
            counts.pop(special, None)  # a literal "<unk>" in the text must not get a second id
        kept = sorted((t for t, n in counts.items() if n >= min_freq), key=lambda t: (-counts[t], t))
        if max_size is not None:
            kept = kept[: max_size - len(cls.specials)]
        return cls([*cls.specials, *kept])

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: str) -> bool:
        return token in self.index

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self.tokens == other.tokens

    def __repr__(self) -> str:
        return f"Vocab(size={len(self)})"

    def encode(self, tokens: Iterable[str]) -> list[int]:
        """Map tokens to ids; unknown tokens become ``unk_id``."""
        return [self.index.get(token, self.unk_id) for token in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Map ids back to tokens."""
        return [self.tokens[i] for i in ids]

    def to_dict(self) -> dict:
        """JSON-ready form: ``{"tokens": [...]}`` (specials first)."""
        return {"tokens": list(self.tokens)}

    @classmethod
    def from_dict(cls, data: dict) -> Vocab:
        """Inverse of :meth:`to_dict`."""
        if not isinstance(data, dict) or not isinstance(data.get("tokens"), list):
            raise ValueError("vocab: expected a dict with a 'tokens' list")
        return cls(data["tokens"])

    def save(self, path: str | Path) -> None:
        """Write the vocabulary as UTF-8 JSON (characters kept readable, not \\u-escaped)."""
        Path(path).write_text(json.dumps(self.to_dict(), ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Vocab:
        """Read a vocabulary written by :meth:`save`."""
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def encode_texts(
    texts: Sequence[str], tokenizer, vocab: Vocab, max_len: int
) -> tuple[list[list[int]], list[int]]:
    """Tokenize, map to ids and truncate to ``max_len``; returns the ids and each text's full token count.

    A text with no token at all (it cannot come from a non-empty text with the bundled tokenizers) becomes
    one ``<unk>``, so every sequence has length >= 1.

    Example:
        >>> encode_texts(["好用", "  "], CharTokenizer(), Vocab(["<pad>", "<unk>", "好"]), max_len=8)
        ([[2, 1], [1]], [2, 0])
    """
    ids, counts = [], []
    for text in texts:
        tokens = tokenizer(text)
        counts.append(len(tokens))
        ids.append(vocab.encode(tokens[:max_len]) or [vocab.unk_id])
    return ids, counts
