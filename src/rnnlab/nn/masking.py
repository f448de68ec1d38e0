"""Masks from lengths, and a softmax that respects them.

rnnlab has one mask polarity everywhere: a bool tensor where **True means valid** (attend to this
position, count this time step) and False means padding. This is the polarity of the bool ``attn_mask``
of :func:`torch.nn.functional.scaled_dot_product_attention`, and the *opposite* of the
``key_padding_mask`` of :class:`torch.nn.MultiheadAttention` (True = ignore). To hand an rnnlab mask to
torch.nn.MultiheadAttention, pass ``key_padding_mask=~mask``.

Dimension legend (shared across rnnlab): ``B`` batch, ``T`` time (sequence length); for attention
``Tq`` queries and ``S`` keys.

Two numerical choices, both explained where they are made in :func:`masked_softmax`:

* masked scores are filled with ``torch.finfo(dtype).min`` rather than ``-inf``, out of place;
* the softmax runs in float32 when the scores are float16 or bfloat16, then is cast back.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["lengths_to_mask", "masked_softmax", "resolve_mask"]

# Half-precision dtypes whose softmax we compute in float32 (their exp/sum lose too much precision,
# and float16 overflows at 65504).
_LOW_PRECISION = (torch.float16, torch.bfloat16)


def lengths_to_mask(lengths: Tensor, max_len: int | None = None) -> Tensor:
    """Turn sequence lengths into a bool padding mask, True at valid positions.

    ``mask[b, t] = t < lengths[b]``.

    Args:
        lengths: (B,) integer tensor, each entry in ``[0, max_len]``.
        max_len: number of time steps ``T`` of the mask; defaults to ``lengths.max()`` (0 for B = 0).

    Returns:
        (B, T) bool tensor on ``lengths.device``.

    Example:
        >>> lengths_to_mask(torch.tensor([2, 0, 3]))
        tensor([[ True,  True, False],
                [False, False, False],
                [ True,  True,  True]])
    """
    if not isinstance(lengths, Tensor):
        raise TypeError(f"lengths: expected a torch.Tensor, received {type(lengths).__name__}")
    if lengths.dim() != 1:
        raise ValueError(f"lengths: expected shape (B,), received {tuple(lengths.shape)}")
    if lengths.dtype.is_floating_point or lengths.dtype.is_complex or lengths.dtype == torch.bool:
        raise TypeError(f"lengths: expected an integer dtype, received {lengths.dtype}")
    longest = int(lengths.max()) if lengths.numel() > 0 else 0
    if lengths.numel() > 0 and int(lengths.min()) < 0:
        raise ValueError(f"lengths: expected every length >= 0, received min {int(lengths.min())}")
    if max_len is None:
        max_len = longest
    elif max_len < longest:
        raise ValueError(f"max_len: expected >= the longest length {longest}, received {max_len}")
    steps = torch.arange(max_len, device=lengths.device)  # (T,)
    return steps.unsqueeze(0) < lengths.unsqueeze(1)  # (1, T) < (B, 1) -> (B, T)


def masked_softmax(scores: Tensor, mask: Tensor | None, dim: int = -1) -> Tensor:
    r"""Softmax over ``dim`` that gives masked positions exactly zero weight.

    .. math::
        w_i = \frac{m_i \exp(s_i)}{\sum_j m_j \exp(s_j)}, \qquad w = 0 \text{ if } \sum_j m_j = 0

    where ``m`` is the mask (True = valid). Guarantees:

    * masked positions get exactly ``0.0``, and no gradient flows into their scores;
    * a row whose positions are all masked is all zeros (not NaN, not uniform), with finite gradients;
    * float16 / bfloat16 scores are processed in float32 and the result is cast back to their dtype;
    * neither ``scores`` nor ``mask`` is modified.

    Args:
        scores: floating tensor of any shape.
        mask: bool tensor broadcastable to ``scores.shape`` (True = keep), or None for a plain softmax.
        dim: the dimension to normalize over.

    Returns:
        Tensor of ``scores.shape`` and ``scores.dtype``.
    """
    if not isinstance(scores, Tensor) or not scores.dtype.is_floating_point:
        got = scores.dtype if isinstance(scores, Tensor) else type(scores).__name__
        raise TypeError(f"scores: expected a floating-point tensor, received {got}")
    if not -scores.dim() <= dim < max(scores.dim(), 1):
        raise ValueError(f"dim: expected in [{-scores.dim()}, {scores.dim() - 1}], received {dim}")
    if mask is not None:
        if not isinstance(mask, Tensor) or mask.dtype != torch.bool:
            got = mask.dtype if isinstance(mask, Tensor) else type(mask).__name__
            raise TypeError(f"mask: expected a bool tensor (True = keep), received {got}")
        try:
            broadcast = torch.broadcast_shapes(mask.shape, scores.shape)
        except RuntimeError:
            broadcast = None
        if broadcast != scores.shape:
            raise ValueError(
                f"mask: expected a shape broadcastable to scores {tuple(scores.shape)}, "
                f"received {tuple(mask.shape)}"
            )

    # Half precision: exp and the row sum are done in float32, otherwise float16 overflows and both
    # lose digits that the weights (which must sum to one) need.
    compute = scores.float() if scores.dtype in _LOW_PRECISION else scores
    if mask is None:
        return torch.softmax(compute, dim=dim).to(scores.dtype)

    # finfo.min rather than -inf: a fully masked row of -inf gives (-inf) - (-inf) = NaN inside softmax.
    # With a finite minimum that row becomes uniform, and the masked_fill below zeroes it. masked_fill
    # (not `x[~mask] = v`) keeps the caller's tensor intact and the operation visible to autograd.
    filled = compute.masked_fill(~mask, torch.finfo(compute.dtype).min)
    weights = torch.softmax(filled, dim=dim)
    # Exactly zero at masked positions (exp(finfo.min - max) underflows to 0 already, except in a fully
    # masked row); this also cuts the gradient to the masked scores.
    weights = weights.masked_fill(~mask, 0.0)
    return weights.to(scores.dtype)


def _shape(x: object) -> object:
    return tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__


def resolve_mask(
    mask: Tensor | None, lengths: Tensor | None, batch_size: int, num_queries: int, num_keys: int
) -> Tensor | None:
    """The one place where an attention layer turns its ``mask=`` / ``lengths=`` arguments into a mask.

    Accepts a bool ``mask`` of shape (B, S) or (B, Tq, S), True = attend, or ``lengths`` (B,) with every
    entry in ``[0, S]`` (the first ``lengths[b]`` keys are valid), or neither. Giving both is an error,
    since they could disagree.

    Args:
        mask: (B, S) or (B, Tq, S) bool tensor, or None.
        lengths: (B,) integer tensor, or None.
        batch_size, num_queries, num_keys: the expected ``B``, ``Tq`` and ``S``.

    Returns:
        None when neither is given, else a bool tensor (B, 1, S) or (B, Tq, S) that broadcasts against
        scores (B, Tq, S).

    Example:
        >>> resolve_mask(None, torch.tensor([1, 2]), 2, 1, 3)
        tensor([[[ True, False, False]],
        <BLANKLINE>
                [[ True,  True, False]]])
    """
    B, Tq, S = batch_size, num_queries, num_keys
    if mask is not None and lengths is not None:
        raise ValueError("mask, lengths: expected at most one of them, received both")
    if lengths is not None:
        if not isinstance(lengths, Tensor) or tuple(lengths.shape) != (B,):
            raise ValueError(f"lengths: expected shape (B={B},), received {_shape(lengths)}")
        if B > 0 and int(lengths.max()) > S:
            raise ValueError(f"lengths: expected every length <= S={S}, received max {int(lengths.max())}")
        mask = lengths_to_mask(lengths, S)  # (B, S)
    if mask is None:
        return None
    if not isinstance(mask, Tensor) or mask.dtype != torch.bool:
        got = mask.dtype if isinstance(mask, Tensor) else type(mask).__name__
        raise TypeError(f"mask: expected a bool tensor (True = attend), received {got}")
    if tuple(mask.shape) == (B, S):
        return mask.unsqueeze(1)  # (B, 1, S)
    if tuple(mask.shape) == (B, Tq, S):
        return mask
    raise ValueError(
        f"mask: expected shape (B={B}, S={S}) or (B={B}, Tq={Tq}, S={S}) with True = attend, "
        f"received {_shape(mask)}"
    )
