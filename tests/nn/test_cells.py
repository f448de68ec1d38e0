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


def _bad_calls(name):
    """Wrong inputs for a cell (3, 4), each with the state built for that cell kind."""
    r = torch.randn

    def state(*shape, c_shape=None):
        h = r(*shape)
        return (h, r(*(c_shape or shape))) if name == "LSTMCell" else h

    calls = {
        "3-D input": (r(2, 2, 3), None),
        "0-D input": (r(()), None),
        "input size": (r(2, 5), None),
        "input size, unbatched": (r(5), None),
        "hidden size": (r(2, 3), state(2, 5)),
        "batch mismatch": (r(3, 3), state(5, 4)),
        "batch mismatch and hidden size": (r(3, 3), state(5, 7)),
        "input size before the state": (r(3, 5), state(5, 4)),
        "float64 input": (r(2, 3).double(), None),
        "float64 input, float32 state": (r(2, 3).double(), state(2, 4)),
        "float64 state": (
            r(2, 3),
            state(2, 4).double() if name != "LSTMCell" else (r(2, 4).double(), r(2, 4)),
        ),
        "int64 input": (torch.ones(2, 3, dtype=torch.long), None),
        "float16 input": (r(2, 3).half(), None),
        "shape before dtype": (r(2, 5).double(), None),
        "3-D state": (r(2, 3), state(1, 2, 4)),
        "4-D state": (r(3, 3), state(3, 1, 1, 4)),
        "unbatched input, batched state": (r(3), state(2, 4)),
        "batched input, unbatched state": (r(2, 3), state(4)),
        "unbatched state of the wrong size": (r(3), state(5)),
    }
    if name == "LSTMCell":
        calls |= {
            "c size": (r(2, 3), (r(2, 4), r(2, 5))),
            "c batch": (r(2, 3), (r(2, 4), r(3, 4))),
            "c 3-D": (r(2, 3), (r(2, 4), r(1, 2, 4))),
            "h wrong, c wrong": (r(2, 3), (r(2, 21), r(2, 20))),
            "one tensor for (h, c)": (r(2, 3), r(2, 4)),
            "three states": (r(2, 3), (r(2, 4),) * 3),
        }
    return calls


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize(("name", "kw"), CELLS, ids=IDS)
def test_cell_errors_match_torch(name, kw, bias):
    """Same exception type and message as torch.nn's cell for each wrong input (shapes before dtypes)."""
    ref, ours = _pair(name, torch.float32, bias=bias, **kw)
    for what, (x, hx) in _bad_calls(name).items():
        with pytest.raises(Exception) as expected:
            ref(x, hx)
        with pytest.raises(expected.type) as got:
            ours(x, hx)
        assert str(got.value) == str(expected.value), what


def test_cell_messages_name_the_states_as_torch_does():
    """The messages issue 11 quotes, hand-written (torch's own test_nn regexes)."""
    x, good = torch.randn(3, 10), torch.randn(3, 20)
    lstm = rnn.LSTMCell(10, 20)
    with pytest.raises(RuntimeError, match="^hidden0 has inconsistent hidden_size: got 21, expected 20$"):
        lstm(x, (torch.randn(3, 21), good))
    with pytest.raises(RuntimeError, match="^hidden1 has inconsistent hidden_size: got 21, expected 20$"):
        lstm(x, (good, torch.randn(3, 21)))
    with pytest.raises(RuntimeError, match="^Input batch size 3 doesn't match hidden1 batch size 5$"):
        lstm(x, (good, torch.randn(5, 20)))
    with pytest.raises(RuntimeError, match="^Input batch size 3 doesn't match hidden0 batch size 5$"):
        rnn.GRUCell(10, 20)(x, torch.randn(5, 20))


@pytest.mark.parametrize(("name", "kw"), CELLS, ids=IDS)
def test_cell_of_hidden_size_zero_runs_as_torch(name, kw):
    ref, ours = getattr(nn, name)(10, 0, **kw), getattr(rnn, name)(10, 0, **kw)
    x = torch.randn(3, 10)
    expected, got = ref(x), ours(x)
    for e, g in zip(
        expected if name == "LSTMCell" else [expected], got if name == "LSTMCell" else [got], strict=True
    ):
        assert g.shape == e.shape == (3, 0)


def test_cell_repr_matches_torch():
    for name, kw in CELLS:
        for bias in (True, False):
            ref, ours = _pair(name, bias=bias, **kw)
            assert repr(ours) == repr(ref)
