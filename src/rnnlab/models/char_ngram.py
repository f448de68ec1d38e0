"""The interpolated character n-gram: the baseline a character language model is printed beside.

Interpolated absolute discounting (Ney, Essen & Kneser 1994; the discount of Kneser-Ney without its
continuation counts) over the contexts of length ``0 .. order - 1``, down to the uniform distribution::

    p_0(x)     = 1 / V
    p_n(x | h) = max(c(h, x) - D, 0) / c(h) + D * N(h) / c(h) * p_{n-1}(x | h')

where ``h`` is the ``n`` characters before ``x``, ``h'`` its last ``n - 1``, ``c(h)`` how often ``h`` was
followed by anything in the training text, ``N(h)`` by how many distinct characters. The recursion stops at
the longest context that was seen in training (and at the start of the scored text, where no longer context
exists). ``D = 0.75``.

Counting is vectorised with numpy: the context of length ``n + 1`` ending before position ``i`` gets a dense
id from the pair (character ``i - n - 1``, id of the context of length ``n``), so every key stays far inside
int64 whatever the vocabulary size, and two million characters take seconds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["ngram_bpc", "NGRAM_ORDER", "NGRAM_DISCOUNT"]

NGRAM_ORDER = 5  # contexts of up to 4 characters
NGRAM_DISCOUNT = 0.75


def _context_ids(ids: np.ndarray, order: int) -> list[np.ndarray]:
    """``ctx[n][i]``: a dense id of the ``n`` characters before position ``i`` (valid where ``i >= n``)."""
    ctx = [np.zeros(len(ids), dtype=np.int64)]
    for n in range(order - 1):
        prev = np.roll(ids, n + 1)  # prev[i] = ids[i - n - 1]: the character that extends the context
        key = prev * (int(ctx[-1].max()) + 1) + ctx[-1]
        ctx.append(np.unique(key, return_inverse=True)[1].reshape(-1).astype(np.int64))
    return ctx


def ngram_bpc(
    train: Sequence[int] | np.ndarray,
    test: Sequence[int] | np.ndarray,
    vocab_size: int,
    order: int = NGRAM_ORDER,
    discount: float = NGRAM_DISCOUNT,
) -> float:
    """Bits per character on ``test`` of the n-gram counted on ``train`` (both (N,) ids below ``vocab_size``).

    >>> round(ngram_bpc([0, 1] * 50, [0, 1, 0, 1], vocab_size=2, order=2), 3)
    0.258
    """
    if vocab_size < 1 or order < 1 or not 0 < discount < 1:
        raise ValueError(
            f"ngram_bpc: expected vocab_size >= 1, order >= 1 and 0 < discount < 1, received "
            f"{vocab_size}, {order}, {discount}"
        )
    train = np.asarray(train, dtype=np.int64)
    test = np.asarray(test, dtype=np.int64)
    if test.size == 0 or train.size == 0:
        raise ValueError(f"ngram_bpc: expected non-empty texts, received {train.size} and {test.size} ids")
    joined = np.concatenate([train, test])  # one id space for the contexts of both
    ctx = _context_ids(joined, order)
    n_train = train.size
    pos_train = np.arange(n_train)
    pos_test = np.arange(test.size)  # the position inside the test text (contexts never reach before it)
    p = np.full(test.size, 1.0 / vocab_size)
    alive = np.ones(test.size, dtype=bool)
    for n in range(order):
        c_train = ctx[n][:n_train][pos_train >= n]
        x_train = train[pos_train >= n]
        n_ctx = int(ctx[n].max()) + 1
        size = np.bincount(c_train, minlength=n_ctx)  # c(h)
        pairs, counts = np.unique(c_train * vocab_size + x_train, return_counts=True)  # sorted (h, x) keys
        types = np.bincount(pairs // vocab_size, minlength=n_ctx)  # N(h)
        c_test = ctx[n][n_train:]
        alive &= (pos_test >= n) & (size[c_test] > 0)
        key = c_test * vocab_size + test
        at = np.minimum(np.searchsorted(pairs, key), len(pairs) - 1)
        count = np.where(pairs[at] == key, counts[at], 0)
        s = np.maximum(size[c_test], 1)
        here = np.maximum(count - discount, 0) / s + discount * types[c_test] / s * p
        p = np.where(alive, here, p)
    return float(-np.log2(p).mean()) if math.isfinite(p.min()) else math.inf
