"""The classifier's wide part: hashed token n-grams, masked by length, joined to the pooled state."""

from __future__ import annotations

import pytest
import torch

from rnnlab.data import collate
from rnnlab.models import ClassifierConfig, RecurrentClassifier
from rnnlab.models.ngrams import OFFSET, PRIME, HashedNgrams, ngram_ids

SEQUENCES = [[3, 4, 5, 6, 7], [8, 9], [10, 11, 12], [2]]


def test_ngram_ids_by_hand():
    """The rolling hash of each bigram, computed by hand, and the mask of the bigrams inside each text."""
    buckets = 1000
    ids, lengths = torch.tensor([[3, 4, 5], [8, 0, 0]]), torch.tensor([3, 1])
    h, valid = ngram_ids(ids, lengths, 2, buckets)

    def bigram(a: int, b: int) -> int:
        return ((2 * OFFSET % buckets * PRIME + a) % buckets * PRIME + b) % buckets

    assert h[0, 0] == bigram(3, 4) and h[0, 1] == bigram(4, 5)
    assert valid.tolist() == [[True, True, False], [False, False, False]]  # t + 2 <= length
    uni, uni_valid = ngram_ids(ids, lengths, 1, buckets)
    assert uni[0, 0] == (OFFSET % buckets * PRIME + 3) % buckets
    assert uni_valid.tolist() == [[True, True, True], [True, False, False]]
    assert int(h.min()) >= 0 and int(h.max()) < buckets


def test_the_same_ngram_gets_the_same_id_wherever_it_stands():
    ids = torch.tensor([[7, 8, 9, 7, 8]])
    h, _ = ngram_ids(ids, torch.tensor([5]), 2, 4096)
    assert h[0, 0] == h[0, 3]  # (7, 8) twice
    assert len({int(x) for x in h[0, :4]}) == 3  # (7, 8), (8, 9), (9, 7), (7, 8)


def test_hashed_ngrams_is_the_mean_of_the_valid_rows():
    """Golden value: with orders (1, 2) the vector is the mean of the unigram and bigram rows of the text."""
    torch.manual_seed(0)
    bag = HashedNgrams((1, 2), 64, 4)
    ids, lengths = torch.tensor([[3, 4, 5, 0]]), torch.tensor([3])
    rows = [ngram_ids(ids, lengths, n, 64) for n in (1, 2)]
    picked = [bag.table.weight[h[0, t]] for h, valid in rows for t in range(4) if valid[0, t]]
    assert len(picked) == 3 + 2
    torch.testing.assert_close(bag(ids, lengths)[0], torch.stack(picked).mean(0))


def test_padding_and_what_follows_the_length_do_not_count():
    bag = HashedNgrams((1, 2, 3), 128, 5)
    a = bag(torch.tensor([[3, 4, 5, 0, 0]]), torch.tensor([3]))
    b = bag(torch.tensor([[3, 4, 5, 9, 9]]), torch.tensor([3]))  # junk past the length
    c = bag(torch.tensor([[3, 4, 5]]), torch.tensor([3]))
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a, c)


def _model(**overrides) -> RecurrentClassifier:
    torch.manual_seed(0)
    config = ClassifierConfig(vocab_size=30, num_classes=3, embedding_dim=8, hidden_size=6, attention_size=5)
    config.ngram_order, config.ngram_buckets, config.ngram_dim = 3, 97, 4
    for key, value in overrides.items():
        setattr(config, key, value)
    return RecurrentClassifier(config).eval()


@pytest.mark.parametrize("pooling", ["last", "attention"])
def test_wide_and_deep_padded_batch_equals_each_text_alone(pooling):
    model = _model(pooling=pooling)
    batch = collate(SEQUENCES)
    with torch.no_grad():
        logits, _ = model(batch.ids, batch.lengths)
        for row, seq in enumerate(SEQUENCES):
            alone, _ = model(torch.tensor([seq]), torch.tensor([len(seq)]))
            torch.testing.assert_close(logits[row], alone[0], atol=1e-6, rtol=1e-5)


def test_the_wide_part_reaches_the_logits_and_learns():
    """The output layer reads [pooled; n-gram mean]; a gradient step moves the n-gram rows of the batch."""
    model = _model()
    assert model.output.in_features == 2 * 6 + 4
    model.train()
    batch = collate(SEQUENCES)
    logits, _ = model(batch.ids, batch.lengths)
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1, 2, 0])).backward()
    grad = model.ngrams.table.weight.grad
    used = set()
    for n in (1, 2, 3):
        h, valid = ngram_ids(batch.ids, batch.lengths, n, 97)
        used |= set(h[valid].tolist())
    assert all(grad[i].abs().sum() > 0 for i in used)
    unused = [i for i in range(97) if i not in used]
    assert unused and all(grad[i].abs().sum() == 0 for i in unused)  # only the batch's n-grams move


def test_ngram_order_zero_means_no_wide_part():
    model = _model(ngram_order=0)
    assert model.ngrams is None and model.output.in_features == 2 * 6


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("ngram_order", -1, "model.ngram_order: expected an integer >= 0, received -1"),
        ("ngram_buckets", 0, "model.ngram_buckets: expected an integer >= 1, received 0"),
        ("ngram_dim", 0, "model.ngram_dim: expected an integer >= 1, received 0"),
    ],
)
def test_bad_ngram_settings_name_the_field(key, value, message):
    config = ClassifierConfig(vocab_size=30)
    setattr(config, key, value)
    with pytest.raises(ValueError, match=message):
        config.validate()


def test_config_round_trip_keeps_the_ngram_fields():
    config = _model().config
    again = ClassifierConfig.from_dict(config.to_dict())
    assert (again.ngram_order, again.ngram_buckets, again.ngram_dim) == (3, 97, 4)
