"""The sampler: the same seed gives the same text, top-k / top-p keep only the allowed characters,
temperature 0 is greedy, and every bad option or prime is a one-line error naming it."""

from __future__ import annotations

import math

import pytest
import torch

from rnnlab.data import DataError, Vocab
from rnnlab.inference.sampler import Sampler, check_sampling, filter_logits
from rnnlab.models.charlm import CharLM, CharLMConfig

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def sampler():
    torch.manual_seed(0)
    vocab = Vocab.build([list("the cat sat on the mat\n")])
    model = CharLM(CharLMConfig(vocab_size=len(vocab), hidden_size=12, embedding_dim=6))
    return Sampler(model, vocab)


def test_same_seed_same_text_other_seed_other_text(sampler):
    a = sampler.sample("the ", 60, seed=5)
    assert a == sampler.sample("the ", 60, seed=5)
    assert a.startswith("the ") and len(a) == 64
    assert a != sampler.sample("the ", 60, seed=6)
    assert set(a) <= set(sampler.vocab.tokens[2:])  # never <pad> / <unk>


def test_streaming_yields_one_character_at_a_time(sampler):
    chars = list(sampler.stream("t", 10, seed=1))
    assert len(chars) == 10 and all(len(c) == 1 for c in chars)
    assert "t" + "".join(chars) == sampler.sample("t", 10, seed=1)


def test_top_k_keeps_exactly_the_k_most_likely():
    logits = torch.tensor([0.1, 2.0, -1.0, 3.0, 0.5])
    kept = torch.isfinite(filter_logits(logits, top_k=2)).nonzero().flatten().tolist()
    assert kept == [1, 3]


def test_top_p_keeps_the_smallest_set_reaching_p():
    probs = torch.tensor([0.05, 0.5, 0.1, 0.3, 0.05])
    logits = probs.log()
    kept = torch.isfinite(filter_logits(logits, top_p=0.75)).nonzero().flatten().tolist()
    assert kept == [1, 3]  # 0.5 + 0.3 >= 0.75; 0.5 alone is not
    assert torch.isfinite(filter_logits(logits, top_p=0.01)).sum() == 1  # the most likely always stays
    assert torch.isfinite(filter_logits(logits, top_p=1.0)).all()


def test_sampling_draws_only_allowed_characters(sampler, monkeypatch):
    seen = []
    real = Sampler.probabilities

    def spy(logits, options):
        seen.append(real(logits, options)[0])
        return real(logits, options)

    monkeypatch.setattr(Sampler, "probabilities", staticmethod(spy))
    text = sampler.sample("the", 20, top_k=3, seed=2)
    assert len(seen) == 20 and all(int((p > 0).sum()) <= 3 for p in seen)
    vocab = sampler.vocab
    # each drawn character had a non-zero probability at its step
    for p, ch in zip(seen, text[3:], strict=True):
        assert p[vocab.index[ch]] > 0


def test_batched_filters_equal_the_one_row_filter():
    torch.manual_seed(1)
    logits = torch.randn(6, 40)
    options = [
        (1.0, None, None),
        (0.7, 5, None),
        (1.3, None, 0.6),
        (0.5, 3, 0.9),
        (2.0, 40, 1.0),
        (1.0, 1, None),
    ]
    got = Sampler.probabilities(logits, options)
    for row, (t, k, p) in zip(got, options, strict=True):
        want = torch.softmax(filter_logits(logits[options.index((t, k, p))] / t, k, p), -1)
        assert torch.equal(row, want)


def test_draws_follow_the_distribution_and_never_pick_probability_zero(sampler):
    """The inverse-CDF draw: frequencies match the probabilities, a zero-probability id never comes."""
    logits = torch.full((1, len(sampler.vocab)), -math.inf)
    logits[0, 4], logits[0, 5], logits[0, 7] = 0.0, math.log(3.0), math.log(6.0)  # p = 0.1, 0.3, 0.6
    g = torch.Generator().manual_seed(0)
    counts = torch.bincount(
        torch.tensor([sampler.draw_rows(logits, [(1.0, None, None)], [g])[0] for _ in range(4000)]),
        minlength=logits.shape[-1],
    )
    assert counts.sum() == counts[4] + counts[5] + counts[7]
    assert abs(counts[4] / 4000 - 0.1) < 0.02 and abs(counts[7] / 4000 - 0.6) < 0.03


def test_temperature_zero_is_greedy_and_top_k_one_agrees(sampler):
    greedy = sampler.sample("the", 30, temperature=0)
    assert greedy == sampler.sample("the", 30, temperature=0, seed=99)
    assert greedy == sampler.sample("the", 30, top_k=1, seed=3)


def test_unseen_prime_characters(sampler):
    assert len(sampler.sample("the 猫", 5)) == 10  # partly unseen: read as <unk>
    with pytest.raises(DataError, match="none of its characters was seen"):
        sampler.sample("猫狗", 5)
    assert len(sampler.sample("", 5)) == 5  # an empty prime starts from a newline


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"length": 0}, "--length"),
        ({"length": -3}, "--length"),
        ({"temperature": -0.5}, "--temperature"),
        ({"temperature": math.nan}, "--temperature"),
        ({"top_k": 0}, "--top-k"),
        ({"top_p": 0.0}, "--top-p"),
        ({"top_p": 1.5}, "--top-p"),
    ],
)
def test_bad_options_are_named(kwargs, message):
    args = {"length": 10, "temperature": 1.0, "top_k": None, "top_p": None, **kwargs}
    with pytest.raises(DataError, match=message):
        check_sampling(**args)
