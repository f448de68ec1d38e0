"""A behavioural test set for sentiment (CheckList-style, Ribeiro et al. 2020): short reviews whose label
turns on negation, contrast, double negation or comparison, in Chinese and English.

Held-out accuracy on reviews-zh or movies-en cannot tell a model that reads context from a bag of n-grams:
most reviews carry their label in a cue word. These items are built so that the cue words mislead. Each
language has 72 items written for rnnlab (not drawn from any data set; shopping, hotel, book and film
reviews in the style of reviews-zh and movies-en), 18 per phenomenon:

* ``negation``: a negation word flips a cue (``这本书我不喜欢``, ``The battery life is not bad at all.``);
* ``contrast``: the clause after 但是 / 可惜 / 不过 / but / however decides, and the clause before it says the
  opposite (``价格便宜，但是用了两天就坏了``);
* ``double_negation``: two negations cancel (``这个酒店不是不好，是非常好``, ``Nobody in our group disliked
  it.``);
* ``comparison``: which side of 比 / 不如 / than is praised (``这个键盘比上一个好多了``).

Every item belongs to a **minimal pair** (``pair_id``): two texts that differ in one negation word, in the
order of two clauses or compared things, or in the one evaluative word, with opposite labels; each pair has
one ``pos`` and one ``neg`` item, so every phenomenon is balanced. Order-swapped contrast pairs follow
CheckList's convention: the clause after the connective gives the label. ``pairs_both_right`` (the share of
pairs with both items right) is the strict score: a model that ignores the flipped word gets at most one of
the two.

The texts must never be read in pretraining: :func:`behavioural_fingerprints` gives their fingerprints
(:func:`rnnlab.data.pretrain.text_fingerprint`) and :func:`rnnlab.tasks.pretrain.pretrain_text` excludes
:func:`behavioural_texts` by default.

Example:
    >>> items = load_behavioural("zh")
    >>> len(items), items[0].phenomenon, items[0].label
    (72, 'negation', 'pos')
    >>> score = score_behavioural(lambda texts: ["pos"] * len(texts), "en")
    >>> score["accuracy"], score["pairs_both_right"]
    (0.5, 0.0)

Reference:
    Ribeiro, Wu, Guestrin & Singh (2020), Beyond Accuracy: Behavioral Testing of NLP Models with CheckList.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from functools import cache
from importlib import resources
from typing import NamedTuple

__all__ = [
    "LANGUAGES",
    "LABELS",
    "PHENOMENA",
    "BehaviouralItem",
    "behavioural_fingerprints",
    "behavioural_texts",
    "load_behavioural",
    "score_behavioural",
]

LANGUAGES = ("zh", "en")
LABELS = ("neg", "pos")
PHENOMENA = ("negation", "contrast", "double_negation", "comparison")
_COLUMNS = ["text", "label", "phenomenon", "pair_id"]


class BehaviouralItem(NamedTuple):
    """One review: its text, gold label (``pos`` / ``neg``), phenomenon and minimal pair."""

    text: str
    label: str
    phenomenon: str
    pair_id: str


def _check_language(lang: str) -> None:
    if lang not in LANGUAGES:
        raise ValueError(f"lang: expected one of {', '.join(LANGUAGES)}, received {lang!r}")


@cache
def _read(lang: str) -> tuple[BehaviouralItem, ...]:
    name = f"{lang}.tsv"
    lines = resources.files(__name__).joinpath(name).read_text(encoding="utf-8").splitlines()
    if not lines or lines[0].split("\t") != _COLUMNS:
        raise ValueError(f"{name}: expected the header {_COLUMNS}, received {lines[:1]}")
    items = []
    for number, line in enumerate(lines[1:], start=2):
        fields = line.split("\t")
        if len(fields) != len(_COLUMNS):
            raise ValueError(f"{name} line {number}: expected {len(_COLUMNS)} tab-separated fields, "
                             f"received {len(fields)}")  # fmt: skip
        item = BehaviouralItem(*(field.strip() for field in fields))
        if item.label not in LABELS or item.phenomenon not in PHENOMENA or not item.text:
            raise ValueError(f"{name} line {number}: expected a text, a label in {LABELS} and a phenomenon "
                             f"in {PHENOMENA}, received {item}")  # fmt: skip
        items.append(item)
    return tuple(items)


def load_behavioural(lang: str) -> list[BehaviouralItem]:
    """The items of language ``lang`` (``"zh"`` or ``"en"``), in file order."""
    _check_language(lang)
    return list(_read(lang))


def behavioural_texts(langs: Iterable[str] = LANGUAGES) -> list[str]:
    """Every behavioural text of ``langs`` (default: all languages)."""
    return [item.text for lang in langs for item in load_behavioural(lang)]


def behavioural_fingerprints(langs: Iterable[str] = LANGUAGES) -> set[str]:
    """The fingerprints (:func:`rnnlab.data.pretrain.text_fingerprint`: NFKC, case folded, spaces collapsed)
    of every behavioural text of ``langs``: a pretraining line with one of them is a test text."""
    from rnnlab.data.pretrain import text_fingerprint

    return {text_fingerprint(text) for text in behavioural_texts(langs)}


def score_behavioural(predict_fn: Callable[[list[str]], Sequence[str]], lang: str) -> dict:
    """Score a classifier on the items of ``lang``.

    Args:
        predict_fn: a list of texts -> one label per text (``"pos"`` / ``"neg"``), in order.
        lang: ``"zh"`` or ``"en"``.

    Returns:
        ``accuracy``; ``per_phenomenon`` ({phenomenon: accuracy}); ``pairs_both_right`` (the share of minimal
        pairs with both items right); ``n`` (items); ``predictions`` (one label per item, in file order).
    """
    items = load_behavioural(lang)
    predicted = list(predict_fn([item.text for item in items]))
    if len(predicted) != len(items):
        raise ValueError(
            f"predict_fn: expected {len(items)} labels (one per text), received {len(predicted)}"
        )
    unknown = sorted({str(p) for p in predicted} - set(LABELS))
    if unknown:
        raise ValueError(f"predict_fn: expected labels in {LABELS}, received {unknown}")
    right = [p == item.label for p, item in zip(predicted, items, strict=True)]
    per_phenomenon, pairs = {}, {}
    for phenomenon in PHENOMENA:
        marks = [r for r, item in zip(right, items, strict=True) if item.phenomenon == phenomenon]
        if marks:
            per_phenomenon[phenomenon] = sum(marks) / len(marks)
    for r, item in zip(right, items, strict=True):
        if item.pair_id:
            pairs.setdefault(item.pair_id, []).append(r)
    return {
        "accuracy": sum(right) / len(right),
        "per_phenomenon": per_phenomenon,
        "pairs_both_right": sum(all(p) for p in pairs.values()) / len(pairs) if pairs else float("nan"),
        "n": len(items),
        "predictions": predicted,
    }
