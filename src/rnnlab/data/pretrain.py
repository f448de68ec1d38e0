"""The text a character LM is pretrained on: general corpora that ship offline, plus a task's training texts,
and never a validation or test text.

ULMFiT (Howard & Ruder 2018) pretrains on general text, then on the target task's own texts; here both go
into one text. :func:`build_pretrain_text` takes the general corpora as lines (:func:`general_lines`: the
*training* parts of People's Daily for Chinese, of the Shakespeare plays and the World English Bible for
English), the task's training texts, and the texts that must never be read (the task's validation and test
texts, and any other evaluation set). Every line is compared by **fingerprint** (:func:`text_fingerprint`: a
hash of the normalised text: Unicode NFKC, case folded, white space collapsed) with the excluded texts, and a
match is dropped and counted, whichever source it came from.

The lines are then cut into blocks of ``block_lines`` consecutive lines (a play's dialogue, a run of
newspaper sentences or of reviews stays together) and the blocks of all sources shuffled with a seed, so
that every stream of a stateful batch reads a mix of general and task text.
"""

from __future__ import annotations

import hashlib
import random
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = [
    "PretrainText",
    "build_pretrain_text",
    "general_lines",
    "language_of",
    "normalise",
    "text_fingerprint",
    "GENERAL_CORPORA",
]

# language -> the bundled charlm corpora whose training parts are general pretraining text
GENERAL_CORPORA = {"zh": ("peoples-daily",), "en": ("shakespeare", "bible-en")}
_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    """The form texts are compared in: NFKC (full-width and half-width alike), case folded, runs of white
    space as one space, stripped.

    >>> normalise("  Ｇｏｏｄ\\tPhone！ ")
    'good phone!'
    """
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def text_fingerprint(text: str) -> str:
    """A short hash of :func:`normalise` (text): equal for texts that differ only in width, case or spaces."""
    return hashlib.sha256(normalise(text).encode("utf-8")).hexdigest()[:20]


def language_of(texts: Iterable[str]) -> str:
    """``"zh"`` when CJK ideographs are at least a third of the letters of ``texts``, else ``"en"``."""
    cjk = letters = 0
    for text in texts:
        for ch in text:
            if ch.isalpha():
                letters += 1
                cjk += "\u4e00" <= ch <= "\u9fff"
    return "zh" if letters and cjk * 3 >= letters else "en"


@dataclass
class PretrainText:
    """The pretraining text (lines joined by newlines) and where each part came from."""

    text: str
    info: dict = field(default_factory=dict)  # per source: lines, characters, dropped; fingerprint


def build_pretrain_text(
    general: Mapping[str, list[str]],
    task_train: list[str],
    exclude: Iterable[str],
    seed: int = 0,
    block_lines: int = 32,
) -> PretrainText:
    """General lines and the task's training texts, less every line whose fingerprint is an excluded text's.

    Args:
        general: source name -> its lines (e.g. ``general_lines("zh")``).
        task_train: the task's training texts, one line each (a newline inside a text becomes a space).
        exclude: texts never to include (validation and test texts of every data set evaluated on).
        seed: seed of the block shuffle.
        block_lines: consecutive lines kept together (>= 1).

    Returns:
        A :class:`PretrainText`; ``info["sources"][name]`` has ``lines``, ``characters`` and ``dropped``
        (lines equal to an excluded text), ``info["fingerprint"]`` identifies the whole text.
    """
    if block_lines < 1:
        raise ValueError(f"block_lines: expected an integer >= 1, received {block_lines!r}")
    banned = {text_fingerprint(t) for t in exclude}
    sources = {**general, "task": [_SPACE.sub(" ", t).strip() for t in task_train]}
    info, blocks = {}, []
    for name, lines in sources.items():
        kept = [line for line in lines if line.strip() and text_fingerprint(line) not in banned]
        dropped = sum(1 for line in lines if line.strip()) - len(kept)
        info[name] = {"lines": len(kept), "characters": sum(map(len, kept)), "dropped": dropped}
        blocks += [kept[i : i + block_lines] for i in range(0, len(kept), block_lines)]
    random.Random(seed).shuffle(blocks)
    text = "\n".join(line for block in blocks for line in block) + "\n"
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]
    return PretrainText(text, {"sources": info, "excluded_texts": len(banned), "fingerprint": digest})


def general_lines(language: str) -> dict[str, list[str]]:
    """The training parts of the bundled corpora of ``language`` (:data:`GENERAL_CORPORA`), as lines; a
    corpus that is not installed here is left out (``bible-en`` needs Debian's sword-text-web)."""
    from rnnlab.data.corpora import load_corpus
    from rnnlab.data.sources import DataError

    if language not in GENERAL_CORPORA:
        raise ValueError(f"language: expected one of {', '.join(GENERAL_CORPORA)}, received {language!r}")
    out = {}
    for name in GENERAL_CORPORA[language]:
        try:
            corpus = load_corpus(name)
        except DataError:
            continue
        out[name] = [line for line in corpus.train.splitlines() if line.strip()]
    if not out:
        raise DataError(
            f"no general corpus for {language!r} is available here ({', '.join(GENERAL_CORPORA[language])}); "
            "see rnnlab datasets charlm"
        )
    return out
