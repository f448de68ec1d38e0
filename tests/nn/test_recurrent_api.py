"""The torch.nn contract beyond the numbers: signatures, parameters, state_dict both ways, errors,
warnings, and the ecosystem (deepcopy, pickle, .to, functional_call, repr, all_weights)."""

from __future__ import annotations

import copy
import inspect
import io
import pickle

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

import rnnlab.nn as rnn

NAMES = ["RNN", "GRU", "LSTM", "RNNCell", "GRUCell", "LSTMCell"]


@pytest.mark.parametrize("name", NAMES)
def test_constructor_defaults_match_torch(name):
    """Same defaults; positional order as torch documents it (RNN's 4th positional is nonlinearity)."""
    ours = inspect.signature(getattr(rnn, name)).parameters
    documented = {
        "RNN": ["input_size", "hidden_size", "num_layers", "nonlinearity", "bias", "batch_first", "dropout",
                "bidirectional", "device", "dtype"],
        "GRU": ["input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout", "bidirectional",
                "device", "dtype"],
        "LSTM": ["input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout", "bidirectional",
                 "proj_size", "device", "dtype"],
        "RNNCell": ["input_size", "hidden_size", "bias", "nonlinearity", "device", "dtype"],
        "GRUCell": ["input_size", "hidden_size", "bias", "device", "dtype"],
        "LSTMCell": ["input_size", "hidden_size", "bias", "device", "dtype"],
    }[name]  # fmt: skip
    assert [p for p in ours if p != "kwargs"] == documented
    torch.manual_seed(0)
    ref = getattr(nn, name)(3, 4)
    torch.manual_seed(0)
    mine = getattr(rnn, name)(3, 4)
    for attr in ["input_size", "hidden_size", "bias", "num_layers", "batch_first", "dropout", "bidirectional",
                 "proj_size", "nonlinearity", "mode"]:  # fmt: skip
        assert getattr(mine, attr, None) == getattr(ref, attr, None), attr


def test_rnn_positional_nonlinearity():
    torch.manual_seed(0)
    ref = nn.RNN(3, 4, 2, "relu", False, True)
    torch.manual_seed(0)
    ours = rnn.RNN(3, 4, 2, "relu", False, True)
    assert ours.nonlinearity == "relu" and ours.bias is False and ours.batch_first is True
    x = torch.randn(2, 5, 3)
    torch.testing.assert_close(ours(x)[0], ref(x)[0])


@pytest.mark.parametrize("name", ["RNN", "GRU", "LSTM"])
@pytest.mark.parametrize(
    "kw", [{}, {"num_layers": 2, "bidirectional": True}, {"bias": False}], ids=["plain", "bi2", "nobias"]
)
def test_state_dict_loads_both_ways(name, kw):
    ref = getattr(nn, name)(3, 4, **kw)
    ours = getattr(rnn, name)(3, 4, **kw)
    assert list(ref.state_dict()) == list(ours.state_dict())
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(5, 2, 3)
    torch.testing.assert_close(ours(x)[0], ref(x)[0])
    ours2 = getattr(rnn, name)(3, 4, **kw)
    ref.load_state_dict(ours2.state_dict(), strict=True)
    torch.testing.assert_close(ref(x)[0], ours2(x)[0])


def test_lstm_projection_state_dict_and_shapes():
    ref = nn.LSTM(3, 6, 2, proj_size=2, bidirectional=True)
    ours = rnn.LSTM(3, 6, 2, proj_size=2, bidirectional=True)
    ours.load_state_dict(ref.state_dict(), strict=True)
    assert {k: tuple(v.shape) for k, v in ours.state_dict().items()} == {
        k: tuple(v.shape) for k, v in ref.state_dict().items()
    }
    out, (h, c) = ours(torch.randn(5, 2, 3))
    assert out.shape == (5, 2, 4) and h.shape == (4, 2, 2) and c.shape == (4, 2, 6)


def test_bias_false_registers_no_bias():
    layer = rnn.LSTM(3, 4, bias=False)
    assert [n for n, _ in layer.named_parameters()] == ["weight_ih_l0", "weight_hh_l0"]


@pytest.mark.parametrize("name", ["RNN", "GRU", "LSTM"])
def test_ecosystem(name):
    layer = getattr(rnn, name)(3, 4, num_layers=2)
    x = torch.randn(5, 2, 3)
    expected = layer(x)[0]
    torch.testing.assert_close(copy.deepcopy(layer)(x)[0], expected)
    torch.testing.assert_close(pickle.loads(pickle.dumps(layer))(x)[0], expected)
    buf = io.BytesIO()
    torch.save(layer.state_dict(), buf)
    buf.seek(0)
    fresh = getattr(rnn, name)(3, 4, num_layers=2)
    fresh.load_state_dict(torch.load(buf, weights_only=True))
    torch.testing.assert_close(fresh(x)[0], expected)
    doubled = copy.deepcopy(layer).to(torch.float64)
    assert all(p.dtype == torch.float64 for p in doubled.parameters())
    torch.testing.assert_close(doubled(x.double())[0].float(), expected, rtol=1e-5, atol=1e-6)
    zeros = {n: torch.zeros_like(p) for n, p in layer.named_parameters()}
    out = torch.func.functional_call(layer, zeros, (x,))[0]
    assert torch.all(out == 0)  # all-zero weights: tanh(0) = 0, and the real weights were not used
    layer.flatten_parameters()
    assert [[tuple(p.shape) for p in ps] for ps in layer.all_weights] == [
        [tuple(p.shape) for p in ps] for ps in getattr(nn, name)(3, 4, num_layers=2).all_weights
    ]


@pytest.mark.parametrize(
    "kw",
    [{}, {"num_layers": 2, "dropout": 0.5}, {"bias": False, "batch_first": True, "bidirectional": True}],
    ids=["plain", "dropout", "flags"],
)
@pytest.mark.parametrize("name", ["RNN", "GRU", "LSTM"])
def test_repr_matches_torch(name, kw):
    assert repr(getattr(rnn, name)(3, 4, **kw)) == repr(getattr(nn, name)(3, 4, **kw))
    if name == "LSTM":
        assert repr(rnn.LSTM(3, 4, proj_size=2)) == repr(nn.LSTM(3, 4, proj_size=2))


@pytest.mark.parametrize(
    ("args", "kw"),
    [
        ((3, 4), {"dropout": 1.5}),
        ((3, 4), {"dropout": True}),
        ((3, 4), {"bias": 1}),
        ((3, 4), {"batch_first": "yes"}),
        ((3.0, 4), {}),
        ((0, 4), {}),
        ((3, 4.0), {}),
        ((3, 0), {}),
        ((3, 4), {"num_layers": 0}),
        ((3, 4), {"proj_size": -1}),
        ((3, 4), {"proj_size": 4}),
        ((3, 4), {"proj_size": 2, "__cls": "GRU"}),
        ((3, 4), {"nonlinearity": "sigmoid", "__cls": "RNN"}),
    ],
)
def test_constructor_errors_match_torch(args, kw):
    kw = dict(kw)
    name = kw.pop("__cls", "LSTM")
    with pytest.raises(Exception) as expected:
        getattr(nn, name)(*args, **kw)
    with pytest.raises(expected.type) as got:
        getattr(rnn, name)(*args, **kw)
    assert str(got.value) == str(expected.value)


def test_dropout_with_one_layer_warns_like_torch():
    with pytest.warns(UserWarning, match="non-zero dropout expects num_layers greater than 1"):
        rnn.LSTM(3, 4, dropout=0.2)


def _bad_calls(name):
    lstm = name == "LSTM"

    def hx(*shape):
        return (torch.randn(*shape), torch.randn(*shape)) if lstm else torch.randn(*shape)

    packed = pack_padded_sequence(torch.randn(5, 2, 3), torch.tensor([5, 3]))
    return [
        (torch.randn(2, 5, 2, 3), None),  # 4-D input
        (torch.randn(5, 2, 7), None),  # wrong feature size
        (torch.randn(5, 2, 3).double(), None),  # dtype mismatch
        (torch.randn(5, 2, 3), hx(1, 3, 4)),  # hidden batch mismatch
        (torch.randn(5, 2, 3), hx(1, 2, 5)),  # hidden size mismatch
        (torch.randn(5, 2, 3), hx(2, 2, 4)),  # too many layers in hx
        (torch.randn(5, 2, 3), hx(2, 4)),  # 2-D hx with batched input
        (torch.randn(5, 3), hx(1, 1, 4)),  # 3-D hx with unbatched input
        (packed, hx(1, 3, 4)),  # packed with the wrong hidden batch
    ]


@pytest.mark.parametrize("name", ["RNN", "GRU", "LSTM"])
def test_forward_errors_match_torch(name):
    ref, ours = getattr(nn, name)(3, 4), getattr(rnn, name)(3, 4)
    for i, (x, hx) in enumerate(_bad_calls(name)):
        with pytest.raises(Exception) as expected:
            ref(x, hx)
        with pytest.raises(expected.type) as got:
            ours(x, hx)
        if i in (0, 1, 2, 3, 4, 5):  # raised in Python by torch: the very same message
            assert str(got.value) == str(expected.value), (i, str(got.value))


def test_unbatched_and_batch_first_shapes():
    lstm = rnn.LSTM(3, 4, num_layers=2, batch_first=True, bidirectional=True)
    out, (h, c) = lstm(torch.randn(6, 3))
    assert out.shape == (6, 8) and h.shape == (4, 4) and c.shape == (4, 4)
    out, (h, c) = lstm(torch.randn(2, 6, 3))
    assert out.shape == (2, 6, 8) and h.shape == (4, 2, 4)
