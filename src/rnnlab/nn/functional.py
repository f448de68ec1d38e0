"""One time step of each recurrent cell, written as its equations.

These functions hold *all* of rnnlab's recurrent gate math for the readable path: the cells in
:mod:`rnnlab.nn.cells` call them once, the layers in :mod:`rnnlab.nn.recurrent` call them once per time
step. Each follows torch.nn's conventions exactly (gate order, where the biases go, the GRU reset gate),
so that the same weights give the same numbers.

Dimension legend (shared across rnnlab): ``B`` batch, ``H_in`` input features, ``H`` hidden size,
``P`` projection size (LSTMP; ``P = H`` without projection).

Weights are stored as torch.nn stores them: the gates' matrices stacked along dim 0, e.g. for an LSTM
``W_ih = [W_ii | W_if | W_ig | W_io]`` of shape ``(4H, H_in)``. ``x @ W_ih.T`` therefore gives all gates'
input terms at once, and :meth:`torch.Tensor.chunk` splits them in gate order.

References:
    Elman (1990), Finding structure in time.
    Hochreiter & Schmidhuber (1997), Long short-term memory; Gers et al. (2000) for the forget gate.
    Sak et al. (2014), LSTM RNN architectures for large scale acoustic modeling (the projection, LSTMP).
    Cho et al. (2014), Learning phrase representations using RNN encoder-decoder (the GRU).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["linear", "rnn_tanh", "rnn_relu", "lstm", "gru", "STEPS"]


def linear(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """``x W^T + b``: (B, K) @ (K, N)^T -> (B, N); the bias may be None.

    torch's own ``linear`` computes it, so that what hooks into it works as on torch.nn's layers
    (per-sample gradients through ``torch.nn.utils._per_sample_grad``, autocast's casting rules).
    """
    return torch.nn.functional.linear(x, weight, bias)  # (B, N)


def rnn_tanh(
    x: Tensor,
    h_prev: Tensor,
    W_ih: Tensor,
    W_hh: Tensor,
    b_ih: Tensor | None = None,
    b_hh: Tensor | None = None,
) -> Tensor:
    r"""Elman RNN step with tanh.

    .. math::
        h_t = \tanh(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh})

    Shapes: ``x`` (B, H_in), ``h_prev`` (B, H) -> ``h`` (B, H).
    """
    return torch.tanh(linear(x, W_ih, b_ih) + linear(h_prev, W_hh, b_hh))


def rnn_relu(
    x: Tensor,
    h_prev: Tensor,
    W_ih: Tensor,
    W_hh: Tensor,
    b_ih: Tensor | None = None,
    b_hh: Tensor | None = None,
) -> Tensor:
    r"""Elman RNN step with ReLU.

    .. math::
        h_t = \max(0, W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh})

    Shapes: ``x`` (B, H_in), ``h_prev`` (B, H) -> ``h`` (B, H).
    """
    return torch.relu(linear(x, W_ih, b_ih) + linear(h_prev, W_hh, b_hh))


def lstm(
    x: Tensor,
    state: tuple[Tensor, Tensor],
    W_ih: Tensor,
    W_hh: Tensor,
    b_ih: Tensor | None = None,
    b_hh: Tensor | None = None,
    W_hr: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    r"""LSTM step, optionally with a projection of the hidden state (LSTMP).

    .. math::
        i_t &= \sigma(W_{ii} x_t + b_{ii} + W_{hi} h_{t-1} + b_{hi}) \\
        f_t &= \sigma(W_{if} x_t + b_{if} + W_{hf} h_{t-1} + b_{hf}) \\
        g_t &= \tanh(W_{ig} x_t + b_{ig} + W_{hg} h_{t-1} + b_{hg}) \\
        o_t &= \sigma(W_{io} x_t + b_{io} + W_{ho} h_{t-1} + b_{ho}) \\
        c_t &= f_t \odot c_{t-1} + i_t \odot g_t \\
        h_t &= o_t \odot \tanh(c_t) \\
        h_t &\leftarrow W_{hr} h_t \quad \text{(only with a projection)}

    ``g_t`` is the candidate cell state (d2l's :math:`\tilde C_t`).

    Shapes: ``x`` (B, H_in), ``state = (h_prev, c_prev)`` with ``h_prev`` (B, P) and ``c_prev`` (B, H);
    ``W_ih`` (4H, H_in), ``W_hh`` (4H, P), ``W_hr`` (P, H). Returns ``(h, c)``: (B, P), (B, H).
    """
    h_prev, c_prev = state
    gates = linear(x, W_ih, b_ih) + linear(h_prev, W_hh, b_hh)  # (B, 4H)
    ingate, forgetgate, cellgate, outgate = gates.chunk(4, dim=1)  # 4 x (B, H)
    i = torch.sigmoid(ingate)
    f = torch.sigmoid(forgetgate)
    g = torch.tanh(cellgate)
    o = torch.sigmoid(outgate)
    c = f * c_prev + i * g
    h = o * torch.tanh(c)
    if W_hr is not None:
        h = h @ W_hr.t()  # (B, H) @ (H, P) -> (B, P)
    return h, c


def gru(
    x: Tensor,
    h_prev: Tensor,
    W_ih: Tensor,
    W_hh: Tensor,
    b_ih: Tensor | None = None,
    b_hh: Tensor | None = None,
) -> Tensor:
    r"""GRU step, as torch.nn computes it.

    .. math::
        r_t &= \sigma(W_{ir} x_t + b_{ir} + W_{hr} h_{t-1} + b_{hr}) \\
        z_t &= \sigma(W_{iz} x_t + b_{iz} + W_{hz} h_{t-1} + b_{hz}) \\
        n_t &= \tanh(W_{in} x_t + b_{in} + r_t \odot (W_{hn} h_{t-1} + b_{hn})) \\
        h_t &= (1 - z_t) \odot n_t + z_t \odot h_{t-1}

    Note the difference from Cho et al. (2014): there the reset gate multiplies :math:`h_{t-1}` *before*
    the matrix product, :math:`W_{hn}(r_t \odot h_{t-1})`. torch.nn (like cuDNN) applies it *after* the
    product and its bias, which lets all three recurrent products be done as one matrix multiply.

    Shapes: ``x`` (B, H_in), ``h_prev`` (B, H); ``W_ih`` (3H, H_in), ``W_hh`` (3H, H) -> ``h`` (B, H).
    """
    x_r, x_z, x_n = linear(x, W_ih, b_ih).chunk(3, dim=1)  # 3 x (B, H)
    h_r, h_z, h_n = linear(h_prev, W_hh, b_hh).chunk(3, dim=1)  # 3 x (B, H)
    r = torch.sigmoid(x_r + h_r)
    z = torch.sigmoid(x_z + h_z)
    n = torch.tanh(x_n + r * h_n)  # reset gate applied after W_hn h + b_hn (see note)
    h = (1 - z) * n + z * h_prev
    return h


# Steps by torch.nn's mode names; each maps (x, state, *weights) -> new state.
STEPS = {"RNN_TANH": rnn_tanh, "RNN_RELU": rnn_relu, "LSTM": lstm, "GRU": gru}
