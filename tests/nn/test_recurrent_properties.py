"""Properties of the layers that hold whatever the reference says: stepping with carried state equals a
full pass, the layer equals its cell stepped by hand, the reverse direction is the forward one on flipped
input, a packed batch equals each sequence alone, and gradcheck in float64."""

from __future__ import annotations

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence

import rnnlab.nn as rnn

DT = torch.float64
LAYERS = [
    ("RNN", {}),
    ("RNN", {"nonlinearity": "relu"}),
    ("GRU", {}),
    ("LSTM", {}),
    ("LSTM", {"proj_size": 2}),
]
IDS = ["rnn_tanh", "rnn_relu", "gru", "lstm", "lstmp"]


def _layer(name, kw, use_fused, **more):
    torch.manual_seed(0)
    layer = getattr(rnn, name)(3, 4, **kw, **more).to(DT)
    layer.use_fused = use_fused
    return layer


def _states(state):
    return state if isinstance(state, tuple) else (state,)


@pytest.mark.parametrize("use_fused", [False, True], ids=["readable", "fused"])
@pytest.mark.parametrize(("name", "kw"), LAYERS, ids=IDS)
def test_stepping_with_carried_state_equals_full_pass(name, kw, use_fused):
    """d2l's cautionary bug (a dropped caller state) fails this test."""
    layer = _layer(name, kw, use_fused, num_layers=2)
    x = torch.randn(7, 2, 3, dtype=DT)
    full_out, full_state = layer(x)
    outs, state = [], None
    for chunk in x.split([1, 3, 2, 1]):
        out, state = layer(chunk, state)
        outs.append(out)
    torch.testing.assert_close(torch.cat(outs), full_out)
    for a, b in zip(_states(state), _states(full_state), strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize(("name", "kw"), [c for c in LAYERS if "proj_size" not in c[1]], ids=IDS[:4])
def test_layer_equals_its_cell_stepped_by_hand(name, kw):
    layer = _layer(name, kw, False)
    cell = getattr(rnn, name + "Cell")(3, 4, **kw).to(DT)
    cell.load_state_dict({k[: -len("_l0")]: v for k, v in layer.state_dict().items()})
    x = torch.randn(6, 2, 3, dtype=DT)
    out, _ = layer(x)
    state = None
    for t in range(6):
        state = cell(x[t], state)
        torch.testing.assert_close(out[t], _states(state)[0])


@pytest.mark.parametrize("use_fused", [False, True], ids=["readable", "fused"])
@pytest.mark.parametrize(("name", "kw"), LAYERS, ids=IDS)
def test_reverse_direction_equals_forward_on_flipped_input(name, kw, use_fused):
    bi = _layer(name, kw, use_fused, bidirectional=True)
    uni = getattr(rnn, name)(3, 4, **kw).to(DT)
    uni.use_fused = use_fused
    uni.load_state_dict({k.replace("_reverse", ""): v for k, v in bi.state_dict().items() if "_reverse" in k})
    x = torch.randn(5, 2, 3, dtype=DT)
    out_bi, state_bi = bi(x)
    out_rev, state_rev = uni(x.flip(0))
    p = out_bi.size(-1) // 2
    torch.testing.assert_close(out_bi[..., p:], out_rev.flip(0))
    for a, b in zip(_states(state_bi), _states(state_rev), strict=True):
        torch.testing.assert_close(a[1], b[0])


@pytest.mark.parametrize("use_fused", [False, True], ids=["readable", "fused"])
@pytest.mark.parametrize(("name", "kw"), LAYERS, ids=IDS)
def test_packed_batch_equals_each_sequence_alone(name, kw, use_fused):
    layer = _layer(name, kw, use_fused, num_layers=2, bidirectional=True, batch_first=True)
    lengths = [4, 7, 1, 5]
    x = torch.randn(4, 7, 3, dtype=DT)
    packed = pack_padded_sequence(x, torch.tensor(lengths), batch_first=True, enforce_sorted=False)
    out_packed, state_packed = layer(packed)
    padded, _ = torch.nn.utils.rnn.pad_packed_sequence(out_packed, batch_first=True)
    for b, n in enumerate(lengths):
        out_alone, state_alone = layer(x[b : b + 1, :n])
        torch.testing.assert_close(padded[b, :n], out_alone[0])
        assert torch.all(padded[b, n:] == 0)
        for a, s in zip(_states(state_packed), _states(state_alone), strict=True):
            torch.testing.assert_close(a[:, b], s[:, 0])


@pytest.mark.parametrize("use_fused", [False, True], ids=["readable", "fused"])
@pytest.mark.parametrize("packed", [False, True], ids=["padded", "packed"])
@pytest.mark.parametrize(("name", "kw"), LAYERS, ids=IDS)
def test_layer_gradcheck(name, kw, packed, use_fused):
    layer = _layer(name, kw, use_fused, num_layers=2, bidirectional=True)
    names = [n for n, _ in layer.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in layer.parameters()]
    x = torch.randn(4, 2, 3, dtype=DT, requires_grad=True)
    h_size = 2 if kw.get("proj_size") else 4
    h0 = torch.randn(4, 2, h_size, dtype=DT, requires_grad=True)
    c0 = torch.randn(4, 2, 4, dtype=DT, requires_grad=True)
    lengths = torch.tensor([4, 2])

    def f(x, h0, c0, *weights):
        inp = pack_padded_sequence(x, lengths) if packed else x
        hx = (h0, c0) if name == "LSTM" else h0
        out, state = torch.func.functional_call(layer, dict(zip(names, weights, strict=True)), (inp, hx))
        return (getattr(out, "data", out), *_states(state))

    assert torch.autograd.gradcheck(f, (x, h0, c0, *params))
