"""Sentence pairs for sequence to sequence: the data sets, the user's TSV file, vocabularies and batches.

Three sources of (source, target) pairs, chosen by :class:`ParallelDataConfig`'s ``dataset``:

* ``"dates"`` (default): generated date normalisation, :mod:`rnnlab.data.dates`; split by date.
* ``"de-en"``: German -> English sentences from the Ding dictionary of the Debian package ``trans-de-en``
  (``/usr/share/trans/de-en``, GPL-2+), read at run time; without the package :func:`load_de_en` raises a
  :class:`DataError` that says ``apt-get install trans-de-en``. Each dictionary line is
  ``de | de-sub ... :: en | en-sub ...``; the sub-entries are aligned one for one, and those that are whole
  sentences on both sides (capitalised, ending in ``. ! ?``, at most ``max_words`` words) become pairs, with
  annotations (``{f}``, ``[coll.]``, ``(sth.)``, ``<...>``) removed and only the first ``;`` alternative kept.
* a path: the user's UTF-8 file of ``source<TAB>target`` lines (extra columns, such as the attribution column
  of Tatoeba / Anki exports, are ignored; blank lines and ``#`` comments are skipped).

Pairs are de-duplicated and split **by source sentence** (:func:`split_pairs`), so a sentence never sits in
two splits. :class:`PairVocab` has four distinct specials, ``<pad>`` = 0, ``<unk>`` = 1, ``<bos>`` = 2,
``<eos>`` = 3, and :class:`PairBatches` yields a :class:`PairBatch` of padded source ids with their lengths
and the target twice: ``tgt_in = <bos> y`` (what the decoder reads) and ``tgt_out = y <eos>`` (what it
predicts).
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from rnnlab.data.batching import BucketBatchSampler
from rnnlab.data.dates import generate_dates
from rnnlab.data.sources import DataError
from rnnlab.data.text import PAD, UNK, Vocab, choose_tokenizer

__all__ = [
    "BOS",
    "EOS",
    "DE_EN_PATH",
    "PairVocab",
    "ParallelDataConfig",
    "ParallelCorpus",
    "read_pairs_file",
    "load_de_en",
    "split_pairs",
    "load_parallel",
    "default_tokenizers",
    "PairBatch",
    "PairBatches",
]

BOS = "<bos>"
EOS = "<eos>"
DE_EN_PATH = Path("/usr/share/trans/de-en")
DE_EN_INSTALL = "sudo apt-get install trans-de-en"

# Ding annotations: {f} gender, [coll.] register, <Aalmolch> see-also, (sth.) optional words.
_ANNOTATION = re.compile(r"\s*(\[[^\]]*\]|\{[^}]*\}|<[^>]*>|\([^)]*\))")
_SENTENCE_END = re.compile(r"[.!?]$")
# Dictionary phrases, not sentences: "unter Berufung auf etw." / "referring to sth."
_PHRASE_END = re.compile(r"\b(etw|jdm|jdn|jds|sth|sb|sb's)\.$")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([.!?,])")
_SPACES = re.compile(r"\s+")


class PairVocab(Vocab):
    """A :class:`~rnnlab.data.text.Vocab` with four distinct specials: pad 0, unk 1, bos 2, eos 3.

    Shared start and padding ids (as in some tutorials) would make the loss skip or learn the start token;
    distinct ids let the loss ignore exactly the padding.

    >>> v = PairVocab.build([list("2036-03-24")])
    >>> v.tokens[:5], (v.pad_id, v.unk_id, v.bos_id, v.eos_id)
    (['<pad>', '<unk>', '<bos>', '<eos>', '-'], (0, 1, 2, 3))
    """

    specials = (PAD, UNK, BOS, EOS)
    pad_id = 0
    unk_id = 1
    bos_id = 2
    eos_id = 3

    def __repr__(self) -> str:
        return f"PairVocab(size={len(self)})"


@dataclass
class ParallelDataConfig:
    dataset: str = "dates"  # "dates" | "de-en" | path of a source<TAB>target file
    seed: int = 0  # seeds generation (dates) and the split (all)
    n_train: int = 30000  # dates: training examples (each a distinct date)
    n_valid: int = 1000  # dates: validation examples
    n_test: int = 2000  # dates: held-out test examples, dates never seen in training
    first_year: int = 1900  # dates: earliest year drawn
    last_year: int = 2099  # dates: latest year drawn
    valid_fraction: float = 0.05  # de-en / file: share of distinct source sentences for validation
    test_fraction: float = 0.1  # de-en / file: share of distinct source sentences for the test set
    max_words: int = 10  # de-en: keep sentence pairs of at most this many words on each side
    de_en_path: str = str(DE_EN_PATH)  # de-en: the Ding dictionary file of the trans-de-en package
    src_tokenizer: str = "auto"  # "char" | "word" | "auto" (dates: char, de-en: word, file: by script)
    tgt_tokenizer: str = "auto"  # as src_tokenizer, for the targets
    lower: bool = True  # lower-case before tokenizing (both sides)
    min_freq: int = 1  # tokens seen fewer times in training become <unk>

    def __post_init__(self) -> None:
        fractions = (self.valid_fraction, self.test_fraction)
        if min(fractions) < 0 or sum(fractions) >= 1:
            raise ValueError(
                f"valid_fraction, test_fraction: expected >= 0 with a sum < 1, received {list(fractions)}"
            )
        if self.max_words < 1:
            raise ValueError(f"max_words: expected >= 1, received {self.max_words}")
        for name in ("src_tokenizer", "tgt_tokenizer"):
            if getattr(self, name) not in ("auto", "char", "word"):
                raise ValueError(
                    f"{name}: expected 'auto', 'char' or 'word', received {getattr(self, name)!r}"
                )
        if self.min_freq < 1:
            raise ValueError(f"min_freq: expected >= 1, received {self.min_freq}")


@dataclass
class ParallelCorpus:
    """Train / validation / test (source, target) pairs and where they came from."""

    train: list[tuple[str, str]]
    valid: list[tuple[str, str]]
    test: list[tuple[str, str]]
    name: str  # "dates", "de-en" or the file path
    info: dict = field(default_factory=dict)  # counts before / after filtering and de-duplication


def read_pairs_file(path: str | Path) -> list[tuple[str, str]]:
    """Read ``source<TAB>target`` lines from a UTF-8 file (a BOM is tolerated).

    Blank lines and lines starting with ``#`` are skipped; columns after the second are ignored. Raises
    :class:`DataError` naming the file and line for a missing file, bad encoding, a line without a tab or an
    empty side, and for a file without any pair.
    """
    path = Path(path)
    expected = "expected a bundled data set ('dates', 'de-en') or a UTF-8 file of source<TAB>target lines"
    if path.is_dir():
        raise DataError(f"data: {str(path)!r} is a directory, not a data file; {expected}")
    if not path.is_file():
        raise DataError(f"data: {str(path)!r}: no such file; {expected}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: expected UTF-8 text, received undecodable bytes at offset {e.start}") from e
    pairs = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        columns = line.split("\t")
        if len(columns) < 2:
            raise DataError(f"{path}, line {number}: expected 'source<TAB>target', received {line[:60]!r}")
        source, target = columns[0].strip(), columns[1].strip()
        if not source or not target:
            side = "source" if not source else "target"
            raise DataError(f"{path}, line {number}: the {side} is empty")
        pairs.append((source, target))
    if not pairs:
        raise DataError(f"{path}: expected at least one 'source<TAB>target' line, found none")
    return pairs


def _clean_ding(text: str) -> str:
    text = text.split("; ")[0]  # first alternative only
    text = _ANNOTATION.sub("", text)
    text = text.replace("\u2019", "'").replace("\u2018", "'")  # typographic apostrophes
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)  # "Es regnet (heute) ." -> "Es regnet."
    return _SPACES.sub(" ", text).strip()


def _is_sentence(text: str, max_words: int) -> bool:
    return (
        bool(_SENTENCE_END.search(text))
        and text[:1].isupper()
        and "/" not in text  # "argue/quarrel": an alternative, not a sentence
        and not _PHRASE_END.search(text)
        and len(text.split()) <= max_words
    )


def load_de_en(path: str | Path = DE_EN_PATH, max_words: int = 10) -> list[tuple[str, str]]:
    """German -> English sentence pairs from the Ding dictionary of ``trans-de-en`` (module docstring).

    Raises :class:`DataError` with the install command when the file is absent.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(
            f"dataset 'de-en' needs the Debian package trans-de-en ({path} not found); install it with "
            f"`{DE_EN_INSTALL}`, or pass your own source<TAB>target file"
        )
    pairs = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.startswith("#") or " :: " not in line:
                continue
            german, english = line.rstrip("\n").split(" :: ", 1)
            de_subs, en_subs = german.split(" | "), english.split(" | ")
            if len(de_subs) != len(en_subs):  # not aligned: skip the entry rather than guess
                continue
            for de, en in zip(de_subs, en_subs, strict=True):
                if en.islower() or not any(mark in en for mark in ".!?"):  # cheap necessary conditions
                    continue
                de, en = _clean_ding(de), _clean_ding(en)
                if _is_sentence(de, max_words) and _is_sentence(en, max_words):
                    pairs.append((de, en))
    return pairs


def split_pairs(
    pairs: Sequence[tuple[str, str]], valid_fraction: float, test_fraction: float, seed: int = 0
) -> tuple[list, list, list]:
    """De-duplicate, then split by distinct source sentence into train / valid / test.

    All pairs that share a source go to the same split, so a test sentence is never trained on, even with
    another translation. Each held-out split gets ``round(fraction * n_sources)`` sources (at least one when
    its fraction is positive and a source is left for training).

    >>> tr, va, te = split_pairs([("a", "x"), ("a", "y"), ("b", "z"), ("c", "w"), ("a", "x")], 0.0, 0.34)
    >>> sorted(tr + va + te), len({source for source, _ in te})
    ([('a', 'x'), ('a', 'y'), ('b', 'z'), ('c', 'w')], 1)
    """
    unique = list(dict.fromkeys(pairs))  # keeps the first occurrence, in order
    by_source: dict[str, list] = {}
    for pair in unique:
        by_source.setdefault(pair[0], []).append(pair)
    sources = sorted(by_source)
    random.Random(seed).shuffle(sources)
    n = len(sources)
    sizes = []
    for fraction in (valid_fraction, test_fraction):
        take = round(fraction * n)
        if fraction > 0 and take == 0 and n - sum(sizes) > 1:
            take = 1
        sizes.append(min(take, max(n - sum(sizes) - 1, 0)))
    valid_src, test_src = sources[: sizes[0]], sources[sizes[0] : sizes[0] + sizes[1]]
    train_src = sources[sizes[0] + sizes[1] :]

    def gather(names):
        return [pair for name in names for pair in by_source[name]]

    return gather(train_src), gather(valid_src), gather(test_src)


def load_parallel(config: ParallelDataConfig) -> ParallelCorpus:
    """The pairs ``config.dataset`` names, split (see the module docstring)."""
    if config.dataset == "dates":
        s = generate_dates(
            config.n_train, config.n_valid, config.n_test, config.seed, config.first_year, config.last_year
        )
        train, valid, test = ([(e.source, e.target) for e in part] for part in (s.train, s.valid, s.test))
        return ParallelCorpus(train, valid, test, "dates", {"split": "by date"})
    if config.dataset == "de-en":
        pairs, name = load_de_en(config.de_en_path, config.max_words), "de-en"
    else:
        pairs, name = read_pairs_file(config.dataset), config.dataset
    train, valid, test = split_pairs(pairs, config.valid_fraction, config.test_fraction, config.seed)
    if not train:
        raise DataError(f"{name}: no training pairs left after the split ({len(pairs)} pairs in all)")
    info = {"pairs": len(pairs), "unique": len(train) + len(valid) + len(test), "split": "by source"}
    return ParallelCorpus(train, valid, test, name, info)


def default_tokenizers(corpus: ParallelCorpus) -> tuple[str, str]:
    """Tokenizer names for ``"auto"``: characters for dates, words for de-en, by script for a file."""
    if corpus.name == "dates":
        return "char", "char"
    if corpus.name == "de-en":
        return "word", "word"
    return choose_tokenizer([s for s, _ in corpus.train]), choose_tokenizer([t for _, t in corpus.train])


@dataclass
class PairBatch:
    """A padded batch of pairs (targets are None when translating new text)."""

    src: Tensor  # (B, T) int64 source ids, padded with pad_id
    src_lengths: Tensor  # (B,) int64 source lengths, >= 1, on the CPU (pack_padded_sequence wants them there)
    tgt_in: Tensor | None = None  # (B, S) <bos> y_1 ... y_n, padded
    tgt_out: Tensor | None = None  # (B, S) y_1 ... y_n <eos>, padded
    index: list[int] | None = None  # positions of these examples in the data set

    def to(self, device: torch.device | str) -> PairBatch:
        def move(t: Tensor | None) -> Tensor | None:
            return None if t is None else t.to(device)

        return PairBatch(move(self.src), self.src_lengths, move(self.tgt_in), move(self.tgt_out), self.index)

    def __len__(self) -> int:
        return self.src.shape[0]


def _pad(sequences: Sequence[Sequence[int]], pad_id: int) -> Tensor:
    out = torch.full((len(sequences), max(len(s) for s in sequences)), pad_id, dtype=torch.long)  # (B, T)
    for row, seq in enumerate(sequences):
        out[row, : len(seq)] = torch.as_tensor(list(seq), dtype=torch.long)
    return out


class PairBatches:
    """Length-bucketed batches of encoded pairs; re-iterable, reshuffled per epoch with ``set_epoch``.

    Args:
        sources: source ids per example (no specials), each non-empty.
        targets: target ids per example (no specials), or None to batch sources only.
        batch_size: examples per batch.
        shuffle: reshuffle every epoch (training), or a fixed length-sorted order (evaluation).
        seed: base seed of the shuffle.
        vocab: the target vocabulary, for its pad / bos / eos ids (sources are padded with 0 as well).

    >>> b = next(iter(PairBatches([[5, 6], [7]], [[4], [5, 6]], 2, vocab=PairVocab(PairVocab.specials))))
    >>> b.src.tolist(), b.src_lengths.tolist(), b.tgt_in.tolist(), b.tgt_out.tolist()
    ([[7, 0], [5, 6]], [1, 2], [[2, 5, 6], [2, 4, 0]], [[5, 6, 3], [4, 3, 0]])
    """

    def __init__(
        self,
        sources: Sequence[Sequence[int]],
        targets: Sequence[Sequence[int]] | None,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        vocab: PairVocab | None = None,
    ) -> None:
        if targets is not None and len(targets) != len(sources):
            raise ValueError(f"targets: expected {len(sources)} entries, received {len(targets)}")
        if any(len(s) == 0 for s in sources):
            raise ValueError(
                "sources: expected every source to hold at least one token, received an empty one"
            )
        vocab = vocab or PairVocab(PairVocab.specials)
        self.sources, self.targets = list(sources), None if targets is None else list(targets)
        self.pad_id, self.bos_id, self.eos_id = vocab.pad_id, vocab.bos_id, vocab.eos_id
        self.sampler = BucketBatchSampler([len(s) for s in self.sources], batch_size, shuffle, seed)

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[PairBatch]:
        for index in self.sampler:
            src = _pad([self.sources[i] for i in index], self.pad_id)  # (B, T)
            lengths = torch.tensor([len(self.sources[i]) for i in index], dtype=torch.long)  # (B,)
            if self.targets is None:
                yield PairBatch(src, lengths, index=index)
                continue
            tgt_in = _pad([[self.bos_id, *self.targets[i]] for i in index], self.pad_id)  # (B, S)
            tgt_out = _pad([[*self.targets[i], self.eos_id] for i in index], self.pad_id)  # (B, S)
            yield PairBatch(src, lengths, tgt_in, tgt_out, index)
