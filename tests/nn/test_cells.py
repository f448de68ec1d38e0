"""RNNCell, LSTMCell, GRUCell against torch.nn: init, outputs, gradients, gradcheck, errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import rnnlab.nn as rnn

CELLS = [("RNNCell", {}), ("RNNCell", {"nonlinearity": "relu"}), ("LSTMCell", {}), ("GRUCell", {})]
IDS = ["rnn_tanh", "rnn_relu", "lstm", "gru"]


def _pair(name, dtype=torch.float64, **kw):
    torch.manual_seed(0)
    ref = getattr(nn, name)(3, 4, **kw).to(dtype)
    torch.manual_seed(0)
    ours = getattr(rnn, name)(3, 4, **kw).to(dtype)
    return ref, ours


def _state(name, batch_shape, dtype):
    h = torch.randn(*batch_shape, 4, dtype=dtype, requires_grad=True)
    if name == "LSTMCell":
        c = torch.randn(*batch_shape, 4, dtype=dtype, requires_grad=True)
        return (h, c), [h, c]
    return h, [h]


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize(("name", "kw"), CELLS, ids=IDS)
def test_cell_parity(name, kw, bias, dtype, batched):
    ref, ours = _pair(name, dtype, bias=bias, **kw)
    assert [n for n, _ in ref.named_parameters()] == [n for n, _ in ours.named_parameters()]
    for a, b in zip(ref.parameters(), ours.parameters(), strict=True):
        assert torch.equal(a, b)
    if not bias:
        assert ours.bias_ih is None and ours.bias_hh is None
    batch_shape = (5,) if batched else ()
    torch.manual_seed(1)
    x = torch.randn(*batch_shape, 3, dtype=dtype, requires_grad=True)
    hx, leaves = _state(name, batch_shape, dtype)
    results = []
    for cell in (ref, ours):
        for t in [x, *leaves]:
            t.grad = None
        cell.zero_grad()
        out = cell(x, hx)
        outs = out if isinstance(out, tuple) else (out,)
        sum((o * (k + 1.5)).sin().sum() for k, o in enumerate(outs)).backward()
        grads = [t.grad.clone() for t in [x, *leaves]] + [p.grad.clone() for p in cell.parameters()]
        results.append(([o.detach() for o in outs], grads))
    tol = {"rtol": 1e-5, "atol": 1e-6} if dtype == torch.float32 else {}
    for a, b in zip(results[1][0] + results[1][1], results[0][0] + results[0][1], strict=True):
        torch.testing.assert_close(a, b, **tol)


@pytest.mark.parametrize(("name", "kw"), CELLS, ids=IDS)
def test_cell_default_state_is_zeros(name, kw):
    ref, ours = _pair(name, **kw)
    x = torch.randn(2, 3, dtype=torch.float64)
    out_r, out_o = ref(x), ours(x)
    for a, b in zip(
        out_o if isinstance(out_o, tuple) else (out_o,),
        out_r if isinstance(out_r, tuple) else (out_r,),
        strict=True,
    ):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize(("name", "kw"), CELLS, ids=IDS)
def test_cell_gradcheck(name, kw):
    _, cell = _pair(name, torch.float64, **kw)
    x = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    hx, leaves = _state(name, (2,), torch.float64)
    params = list(cell.parameters())

    def f(x, *tensors):
        state = (tensors[0], tensors[1]) if name == "LSTMCell" else tensors[0]
        weights = dict(zip([n for n, _ in cell.named_parameters()], tensors[len(leaves) :], strict=True))
        return torch.func.functional_call(cell, weights, (x, state))

    assert torch.autograd.gradcheck(f, (x, *leaves, *[p.detach().requires_grad_() for p in params]))


def test_lstm_cell_hand_computed():
    """One LSTM step with constant weights, computed by hand."""
    cell = rnn.LSTMCell(1, 1, bias=False).double()
    with torch.no_grad():
        cell.weight_ih.fill_(1.0)  # all four gates see x
        cell.weight_hh.fill_(0.0)
    x = torch.tensor([[0.5]], dtype=torch.float64)
    h, c = cell(x, (torch.zeros(1, 1, dtype=torch.float64), torch.tensor([[2.0]], dtype=torch.float64)))
    s, g = (
        1 / (1 + torch.exp(torch.tensor(-0.5, dtype=torch.float64))),
        torch.tanh(torch.tensor(0.5).double()),
    )
    c_expected = s * 2.0 + s * g  # f * c_prev + i * g
    torch.testing.assert_close(c, c_expected.view(1, 1))
    torch.testing.assert_close(h, (s * torch.tanh(c_expected)).view(1, 1))


@pytest.mark.parametrize(("name", "kw"), CELLS, ids=IDS)
def test_cell_errors_match_torch(name, kw):
    ref, ours = _pair(name, torch.float32, **kw)
    bad_inputs = [
        (torch.randn(2, 2, 3), None),  # 3-D input
        (torch.randn(2, 5), None),  # wrong feature size
        (torch.randn(2, 3), torch.randn(3, 4)),  # batch mismatch with hidden
        (torch.randn(2, 3), torch.randn(2, 5)),  # wrong hidden size
        (torch.randn(2, 3), torch.randn(1, 2, 4)),  # 3-D hidden
    ]
    for x, h in bad_inputs:
        hx = None if h is None else ((h, h) if name == "LSTMCell" else h)
        with pytest.raises(Exception) as expected:
            ref(x, hx)
        with pytest.raises(expected.type):
            ours(x, hx)


def test_cell_repr_matches_torch():
    for name, kw in CELLS:
        for bias in (True, False):
            ref, ours = _pair(name, bias=bias, **kw)
            assert repr(ours) == repr(ref)
