"""The vectorised character n-gram scores exactly what the textbook loop over dictionaries scores."""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict

import pytest

from rnnlab.models.char_ngram import ngram_bpc


def reference_bpc(train, test, vocab_size, order=5, d=0.75):
    """Interpolated absolute discounting as the module docstring's recursion, one position at a time."""
    counts = [defaultdict(Counter) for _ in range(order)]  # counts[n][context of length n][next]
    for n in range(order):
        for i in range(n, len(train)):
            counts[n][tuple(train[i - n : i])][train[i]] += 1
    bits = 0.0
    for i in range(len(test)):
        p = 1.0 / vocab_size
        for n in range(order):
            if i < n:
                break
            c = counts[n].get(tuple(test[i - n : i]))
            if c is None:
                break
            size = sum(c.values())
            p = max(c.get(test[i], 0) - d, 0) / size + d * len(c) / size * p
        bits -= math.log2(p)
    return bits / len(test)


@pytest.mark.parametrize(("vocab", "order"), [(5, 5), (30, 3), (3000, 4)])
def test_matches_the_reference_loop(vocab, order):
    rng = random.Random(vocab)
    words = [[rng.randrange(2, vocab) for _ in range(rng.randrange(1, 6))] for _ in range(40)]

    def text(n):
        return [t for _ in range(n) for t in rng.choice(words) + [1]]

    train, test = text(400), text(60) + [vocab - 1, 0]  # an unseen character and a never-seen context
    assert ngram_bpc(train, test, vocab, order) == pytest.approx(reference_bpc(train, test, vocab, order))


def test_a_longer_context_helps_on_repetitive_text():
    text = [i % 7 for i in range(700)]
    assert ngram_bpc(text, text[:70], 7, order=3) < 0.2 < ngram_bpc(text, text[:70], 7, order=1)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="non-empty"):
        ngram_bpc([], [1], 3)
    with pytest.raises(ValueError, match="discount"):
        ngram_bpc([1], [1], 3, discount=1.5)
