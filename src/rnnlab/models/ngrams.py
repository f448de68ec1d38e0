"""A bag of hashed n-grams of token ids: the "wide" half of a wide-and-deep text classifier.

Linear models over n-gram counts are strong text classifiers (Wang & Manning 2012, NBSVM; Joulin et al. 2017,
fastText); a recurrent encoder sees the same n-grams only through its state. :class:`HashedNgrams` gives the
classifier both: every n-gram of consecutive token ids (orders ``orders``, e.g. 1, 2, 3) is hashed into one
of ``buckets`` rows of an embedding table (the hashing trick, as fastText does), and the rows of a text's
valid n-grams are averaged into one vector (fastText's mean of n-gram vectors).

The n-gram ids are computed inside the model from the token ids with integer tensor ops, so the model's
input stays ``(ids, lengths)``: the predictor, the server and the exporter see no new input. The hash of the
n-gram ``(x_t, ..., x_{t+n-1})`` is a rolling polynomial, reduced modulo ``buckets`` at every step so the
products stay far inside int64::

    h_0 = n * OFFSET                                  (orders hash to different places)
    h_k = (h_{k-1} * PRIME + x_{t+k-1}) mod buckets,  k = 1..n

An n-gram counts when it lies inside the text (``t + n <= length``); padding never enters. No EmbeddingBag
and no offsets: an nn.Embedding, a mask and a sum, which every exporter has.

Dimension legend: B batch, T time, G n-gram vector size (``dim``).

References:
    Wang & Manning (2012), Baselines and bigrams: simple, good sentiment and topic classification.
    Joulin et al. (2017), Bag of tricks for efficient text classification (fastText).
    Weinberger et al. (2009), Feature hashing for large scale multitask learning.
    Cheng et al. (2016), Wide & deep learning for recommender systems.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["HashedNgrams", "ngram_ids"]

PRIME = 1_000_003  # multiplier of the rolling hash (prime, > any vocabulary rnnlab builds)
OFFSET = 7_919  # h_0 = order * OFFSET: a unigram and a bigram ending in the same token land apart


def ngram_ids(ids: Tensor, lengths: Tensor, order: int, buckets: int) -> tuple[Tensor, Tensor]:
    """Hashed ids of every n-gram of ``order`` consecutive tokens, and which of them lie inside the text.

    Args:
        ids: (B, T) int64 token ids, padded.
        lengths: (B,) the number of real tokens of each row.
        order: n, the n-gram length (>= 1).
        buckets: size of the hash space; ids are in ``[0, buckets)``.

    Returns:
        (B, T) int64 n-gram ids (the n-gram starting at t) and a (B, T) bool mask, True where
        ``t + order <= length``.
    """
    B, T = ids.shape
    h = torch.full_like(ids, order * OFFSET % buckets)  # (B, T)
    for k in range(order):
        shifted = torch.cat([ids[:, k:], ids.new_zeros(B, min(k, T))], dim=1)  # (B, T): x_{t+k}, 0 past T
        h = (h * PRIME + shifted) % buckets
    t = torch.arange(T, device=ids.device).unsqueeze(0)  # (1, T)
    valid = t + order <= lengths.to(ids.device).unsqueeze(1)  # (B, T)
    return h, valid


class HashedNgrams(nn.Module):
    """The mean of the hashed n-gram vectors of each text: ``(ids, lengths) -> (B, G)``.

    Args:
        orders: the n-gram lengths to use, e.g. ``(1, 2, 3)``.
        buckets: rows of the shared hash table.
        dim: G, the size of each n-gram vector.

    A text with no n-gram of any order (only possible without order 1) gets the zero vector.
    """

    def __init__(self, orders: tuple[int, ...], buckets: int, dim: int) -> None:
        super().__init__()
        self.orders, self.buckets = tuple(orders), buckets
        self.table = nn.Embedding(buckets, dim)
        # near zero at the start (as fastText): the wide part begins quiet and grows where it helps
        nn.init.uniform_(self.table.weight, -1.0 / dim, 1.0 / dim)

    def forward(self, ids: Tensor, lengths: Tensor) -> Tensor:
        total = self.table.weight.new_zeros(ids.shape[0], self.table.embedding_dim)  # (B, G)
        count = self.table.weight.new_zeros(ids.shape[0], 1)  # (B, 1)
        for order in self.orders:
            h, valid = ngram_ids(ids, lengths, order, self.buckets)  # (B, T), (B, T)
            w = valid.to(total.dtype).unsqueeze(-1)  # (B, T, 1)
            total = total + (self.table(h) * w).sum(1)  # (B, T, G) -> (B, G)
            count = count + w.sum(1)  # (B, 1)
        return total / count.clamp(min=1.0)  # (B, G)

    def extra_repr(self) -> str:
        return f"orders={self.orders}, buckets={self.buckets}, dim={self.table.embedding_dim}"
