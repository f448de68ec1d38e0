"""Tests for rnnlab.nn.masking: lengths_to_mask, masked_softmax, resolve_mask."""

from __future__ import annotations

import doctest
import math

import pytest
import torch
from torch.testing import assert_close

from rnnlab.nn import masking
from rnnlab.nn.masking import lengths_to_mask, masked_softmax, resolve_mask


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def test_docstring_examples_run():
    assert doctest.testmod(masking).failed == 0


# ---------------------------------------------------------------- lengths_to_mask


def test_lengths_to_mask_hand_case():
    expected = torch.tensor([[True, True, False], [False, False, False], [True, True, True]])
    assert torch.equal(lengths_to_mask(torch.tensor([2, 0, 3])), expected)


def test_lengths_to_mask_max_len_pads_with_false():
    mask = lengths_to_mask(torch.tensor([1, 2]), max_len=4)
    assert mask.dtype == torch.bool
    assert torch.equal(mask, torch.tensor([[True, False, False, False], [True, True, False, False]]))


def test_lengths_to_mask_empty_batch():
    assert lengths_to_mask(torch.zeros(0, dtype=torch.long)).shape == (0, 0)
    assert lengths_to_mask(torch.zeros(0, dtype=torch.long), max_len=3).shape == (0, 3)


def test_lengths_to_mask_counts_match_lengths():
    lengths = torch.randint(0, 7, (9,))
    mask = lengths_to_mask(lengths, max_len=7)
    assert torch.equal(mask.sum(dim=1), lengths)


@pytest.mark.parametrize(
    ("lengths", "max_len", "error", "match"),
    [
        (torch.tensor([[1, 2]]), None, ValueError, r"lengths: expected shape \(B,\), received \(1, 2\)"),
        (
            torch.tensor([1.0, 2.0]),
            None,
            TypeError,
            r"lengths: expected an integer dtype, received torch.float32",
        ),
        (torch.tensor([True]), None, TypeError, r"lengths: expected an integer dtype, received torch.bool"),
        (torch.tensor([1, -1]), None, ValueError, r"lengths: expected every length >= 0, received min -1"),
        (torch.tensor([1, 3]), 2, ValueError, r"max_len: expected >= the longest length 3, received 2"),
        ([1, 2], None, TypeError, r"lengths: expected a torch.Tensor, received list"),
    ],
)
def test_lengths_to_mask_errors(lengths, max_len, error, match):
    with pytest.raises(error, match=match):
        lengths_to_mask(lengths, max_len)


# ---------------------------------------------------------------- masked_softmax


def test_masked_softmax_hand_case():
    # exp(0) : exp(ln 3) = 1 : 3 over the two valid positions; the masked 5.0 must not count.
    scores = torch.tensor([[0.0, math.log(3.0), 5.0]])
    mask = torch.tensor([[True, True, False]])
    weights = masked_softmax(scores, mask)
    assert_close(weights, torch.tensor([[0.25, 0.75, 0.0]]))
    assert weights[0, 2].item() == 0.0


def test_masked_softmax_without_mask_is_softmax():
    scores = torch.randn(3, 5)
    assert_close(masked_softmax(scores, None), torch.softmax(scores, dim=-1))


def test_masked_softmax_equals_softmax_over_the_valid_part():
    scores = torch.randn(4, 6)
    lengths = torch.tensor([6, 3, 1, 4])
    weights = masked_softmax(scores, lengths_to_mask(lengths, 6))
    for b, n in enumerate(lengths.tolist()):
        assert_close(weights[b, :n], torch.softmax(scores[b, :n], dim=0))
        assert torch.all(weights[b, n:] == 0.0)


def test_masked_softmax_other_dim_and_broadcast_mask():
    scores = torch.randn(2, 5, 3)
    mask = torch.tensor([[True, False, True, True, False], [False, True, True, True, True]])
    weights = masked_softmax(scores, mask.unsqueeze(-1), dim=1)  # mask (B, T, 1) over scores (B, T, 3)
    assert_close(weights.sum(dim=1), torch.ones(2, 3))
    assert torch.all(weights.masked_select(~mask.unsqueeze(-1).expand_as(weights)) == 0.0)


def test_fully_masked_row_is_zero_with_finite_gradient():
    scores = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[True, True, False, False], [False] * 4, [True] * 4])
    weights = masked_softmax(scores, mask)
    assert torch.equal(weights[1], torch.zeros(4, dtype=torch.float64))
    assert_close(weights[[0, 2]].sum(dim=-1), torch.ones(2, dtype=torch.float64))
    (weights * torch.randn_like(weights)).sum().backward()
    assert torch.isfinite(scores.grad).all()
    assert torch.all(scores.grad[~mask] == 0.0)  # no gradient reaches a masked score


def test_extreme_scores_do_not_overflow():
    scores = torch.tensor([[1e30, -1e30, 3.0e38], [-3.0e38, -3.0e38, 0.0]])
    mask = torch.tensor([[True, True, False], [True, True, False]])
    weights = masked_softmax(scores, mask)
    assert torch.isfinite(weights).all()
    assert_close(weights, torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0]]))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_is_computed_in_float32(dtype):
    # Large scores: float16 exp(30) overflows; computed in float32 and cast back, the weights are right.
    scores = (torch.randn(4, 7) * 30).to(dtype)
    mask = torch.rand(4, 7) > 0.3
    mask[:, 0] = True
    weights = masked_softmax(scores, mask)
    assert weights.dtype == dtype
    assert torch.equal(weights, masked_softmax(scores.float(), mask).to(dtype))
    assert_close(weights, masked_softmax(scores.double(), mask).to(dtype))  # dtype's own tolerances
    assert torch.all(weights[~mask] == 0)
    assert_close(weights.float().sum(-1), torch.ones(4), atol=1e-2, rtol=0)


def test_inputs_are_not_modified():
    scores = torch.randn(2, 5)
    mask = torch.rand(2, 5) > 0.5
    scores_before, mask_before = scores.clone(), mask.clone()
    masked_softmax(scores, mask)
    assert torch.equal(scores, scores_before)
    assert torch.equal(mask, mask_before)


def test_gradcheck_float64():
    scores = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[True, False, True, True, False], [False] * 5, [True] * 5])
    assert torch.autograd.gradcheck(lambda s: masked_softmax(s, mask), (scores,), fast_mode=True)


@pytest.mark.parametrize(
    ("scores", "mask", "dim", "error", "match"),
    [
        (
            torch.tensor([1, 2]),
            None,
            -1,
            TypeError,
            r"scores: expected a floating-point tensor, received torch.int64",
        ),
        (
            torch.randn(2, 3),
            torch.ones(2, 3),
            -1,
            TypeError,
            r"mask: expected a bool tensor .*received torch.float32",
        ),
        (
            torch.randn(2, 3),
            torch.ones(2, 4, dtype=torch.bool),
            -1,
            ValueError,
            r"mask: expected a shape broadcastable to scores \(2, 3\), received \(2, 4\)",
        ),
        (
            torch.randn(3),
            torch.ones(2, 3, dtype=torch.bool),
            -1,
            ValueError,
            r"mask: expected a shape broadcastable to scores \(3,\), received \(2, 3\)",
        ),
        (torch.randn(2, 3), None, 2, ValueError, r"dim: expected in \[-2, 1\], received 2"),
    ],
)
def test_masked_softmax_errors(scores, mask, dim, error, match):
    with pytest.raises(error, match=match):
        masked_softmax(scores, mask, dim=dim)


# ---------------------------------------------------------------- resolve_mask


def test_resolve_mask_shapes_and_lengths():
    mask = torch.tensor([[True, False, True], [True, True, False]])
    assert torch.equal(resolve_mask(mask, None, 2, 4, 3), mask.unsqueeze(1))
    full = torch.rand(2, 4, 3) > 0.5
    assert resolve_mask(full, None, 2, 4, 3) is full
    from_lengths = resolve_mask(None, torch.tensor([1, 3]), 2, 4, 3)
    assert torch.equal(from_lengths, torch.tensor([[[True, False, False]], [[True, True, True]]]))
    assert resolve_mask(None, None, 2, 4, 3) is None


@pytest.mark.parametrize(
    ("mask", "lengths", "error", "match"),
    [
        (
            torch.ones(2, 3, dtype=torch.bool),
            torch.tensor([1, 2]),
            ValueError,
            r"mask, lengths: .*received both",
        ),
        (None, torch.tensor([1, 2, 3]), ValueError, r"lengths: expected shape \(B=2,\), received \(3,\)"),
        (None, torch.tensor([1, 4]), ValueError, r"lengths: expected every length <= S=3, received max 4"),
        (torch.ones(2, 3, dtype=torch.int64), None, TypeError, r"mask: expected a bool tensor"),
        (
            torch.ones(2, 5, 3, dtype=torch.bool),
            None,
            ValueError,
            r"mask: expected shape \(B=2, S=3\) or \(B=2, Tq=4, S=3\) with True = attend, "
            r"received \(2, 5, 3\)",
        ),
    ],
)
def test_resolve_mask_errors(mask, lengths, error, match):
    with pytest.raises(error, match=match):
        resolve_mask(mask, lengths, 2, 4, 3)
