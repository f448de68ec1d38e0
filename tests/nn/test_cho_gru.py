"""Tests for rnnlab.nn.cho_gru: Cho et al.'s GRU (reset gate before the recurrent product).

It has no torch.nn reference, so: a hand-computed golden step; a layer equal to a hand-written walk of
the step over layers and directions; torch.nn.GRU's formula broken on purpose (the two differ when the
reset gate is not 1, agree when it is, or when h = 0 and b_hn = 0); gradcheck in float64; stepping with
carried state equals one full pass; a padded / packed batch equals each sequence run alone; and
torch.nn.GRU's contract (names, init, state_dict both ways, input forms, errors).
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pack_sequence, pad_packed_sequence
from torch.testing import assert_close
from variant_testing import DT, GRID, flat, gradcheck_module, randn

import rnnlab.nn as rnn
from rnnlab.nn.cho_gru import ChoGRU, ChoGRUCell, cho_gru

pytestmark = pytest.mark.usefixtures("one_thread")


def _sigmoid(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


def test_golden_step_by_hand():
    # H_in = 1, H = 2: with two hidden units r * h before W_hn differs from r * (W_hn h) after it.
    W_ih = torch.tensor([[0.5], [-0.3], [0.2], [0.1], [0.4], [-0.6]], dtype=DT)  # rows r1 r2 z1 z2 n1 n2
    W_hh = torch.tensor([[0.1, 0.2], [0.3, -0.1], [-0.2, 0.5], [0.4, 0.1], [0.7, -0.3], [0.2, 0.6]], dtype=DT)
    b_ih = torch.tensor([0.0, 0.1, -0.1, 0.2, 0.05, 0.0], dtype=DT)
    b_hh = torch.tensor([0.1, 0.0, 0.0, -0.2, 0.3, -0.1], dtype=DT)
    x, h = 2.0, [0.5, -1.0]
    # by hand, unit by unit
    r = [
        _sigmoid(0.5 * x + 0.0 + 0.1 * h[0] + 0.2 * h[1] + 0.1),
        _sigmoid(-0.3 * x + 0.1 + 0.3 * h[0] - 0.1 * h[1]),
    ]
    z = [
        _sigmoid(0.2 * x - 0.1 - 0.2 * h[0] + 0.5 * h[1]),
        _sigmoid(0.1 * x + 0.2 + 0.4 * h[0] + 0.1 * h[1] - 0.2),
    ]
    rh = [r[0] * h[0], r[1] * h[1]]
    n = [
        math.tanh(0.4 * x + 0.05 + 0.7 * rh[0] - 0.3 * rh[1] + 0.3),
        math.tanh(-0.6 * x + 0.0 + 0.2 * rh[0] + 0.6 * rh[1] - 0.1),
    ]
    expected = torch.tensor([[(1 - z[k]) * n[k] + z[k] * h[k] for k in range(2)]], dtype=DT)
    got = cho_gru(torch.tensor([[x]], dtype=DT), torch.tensor([h], dtype=DT), W_ih, W_hh, b_ih, b_hh)
    assert_close(got, expected, rtol=0, atol=1e-15)
    # the cell computes the same step, batched and unbatched
    cell = ChoGRUCell(1, 2).double()
    with torch.no_grad():
        for name, value in zip(
            ("weight_ih", "weight_hh", "bias_ih", "bias_hh"), (W_ih, W_hh, b_ih, b_hh), strict=True
        ):
            getattr(cell, name).copy_(value)
    assert_close(cell(torch.tensor([[x]], dtype=DT), torch.tensor([h], dtype=DT)), expected)
    assert_close(cell(torch.tensor([x], dtype=DT), torch.tensor(h, dtype=DT)), expected[0])


def _walk(layer: ChoGRU, x: torch.Tensor, h0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The layer by hand: x (T, B, H_in), h0 (L*D, B, H) -> output (T, B, D*H), h_n (L*D, B, H)."""
    D = 2 if layer.bidirectional else 1
    finals = []
    for k in range(layer.num_layers):
        outs = []
        for d in range(D):
            sfx = f"_l{k}" + ("_reverse" if d else "")
            w = [getattr(layer, n + sfx) for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
            h, seq = h0[k * D + d], [None] * x.shape[0]
            for t in reversed(range(x.shape[0])) if d else range(x.shape[0]):
                h = cho_gru(x[t], h, *w)
                seq[t] = h
            outs.append(torch.stack(seq))
            finals.append(h)
        x = torch.cat(outs, dim=-1)
    return x, torch.stack(finals)


@pytest.mark.parametrize(("num_layers", "bidirectional", "batch_first"), GRID)
def test_layer_is_the_step_walked_over_layers_and_directions(num_layers, bidirectional, batch_first):
    torch.manual_seed(0)
    layer = ChoGRU(3, 4, num_layers, batch_first=batch_first, bidirectional=bidirectional).double()
    D = 2 if bidirectional else 1
    x, h0 = randn(6, 2, 3), randn(num_layers * D, 2, 4)
    out, h_n = layer(x.transpose(0, 1) if batch_first else x, h0)
    expected_out, expected_h = _walk(layer, x, h0)
    assert_close(out.transpose(0, 1) if batch_first else out, expected_out)
    assert_close(h_n, expected_h)


def test_differs_from_torch_gru_when_the_reset_gate_is_not_one():
    torch.manual_seed(1)
    ref = nn.GRU(3, 4, 2, bidirectional=True).double()
    cho = ChoGRU(3, 4, 2, bidirectional=True).double()
    cho.load_state_dict(ref.state_dict(), strict=True)
    x = randn(5, 2, 3)
    out_cho, _ = cho(x)
    out_ref, _ = ref(x)
    assert (out_cho - out_ref).abs().max() > 1e-3  # the formula is really another one


def test_agrees_with_torch_gru_where_the_reset_gate_cannot_matter():
    torch.manual_seed(2)
    ref = nn.GRU(3, 4).double()
    cho = ChoGRU(3, 4).double()
    cho.load_state_dict(ref.state_dict(), strict=True)
    x = randn(5, 2, 3)
    # h = 0 and b_hn = 0: W_hn (r * 0) + 0 = r * (W_hn 0 + 0), so the first step agrees, the second not
    with torch.no_grad():
        for m in (ref, cho):
            m.bias_hh_l0[8:].zero_()
    out_cho, _ = cho(x[:2])
    out_ref, _ = ref(x[:2])
    assert_close(out_cho[0], out_ref[0])
    assert (out_cho[1] - out_ref[1]).abs().max() > 1e-4
    # r = 1 exactly (sigmoid(60) rounds to 1 in float64): the same function at every step, any state
    with torch.no_grad():
        for m in (ref, cho):
            m.weight_ih_l0[:4].zero_()
            m.weight_hh_l0[:4].zero_()
            m.bias_ih_l0[:4].fill_(60.0)
    h0 = randn(1, 2, 4)
    for a, b in zip(flat(cho(x, h0)), flat(ref(x, h0)), strict=True):
        assert_close(a, b)


def test_gradcheck_float64_layer_and_cell():
    torch.manual_seed(3)
    layer = ChoGRU(2, 3, 2, bidirectional=True).double()
    assert gradcheck_module(layer, randn(4, 2, 2, grad=True), randn(4, 2, 3, grad=True))
    cell = ChoGRUCell(2, 3).double()
    assert gradcheck_module(cell, randn(2, 2, grad=True), randn(2, 3, grad=True))
    no_bias = ChoGRU(2, 3, bias=False).double()
    assert gradcheck_module(no_bias, randn(3, 1, 2, grad=True))


def test_stepping_with_carried_state_equals_one_full_pass():
    torch.manual_seed(4)
    layer = ChoGRU(3, 5, num_layers=2).double()
    x = randn(7, 2, 3)
    full, h_full = layer(x)
    h, pieces = None, []
    for chunk in x.split([3, 1, 3]):
        out, h = layer(chunk, h)
        pieces.append(out)
    assert_close(torch.cat(pieces), full)
    assert_close(h, h_full)
    # and one cell step at a time equals the one-layer layer
    one = ChoGRU(3, 5).double()
    cell = ChoGRUCell(3, 5).double()
    cell.load_state_dict({k.removesuffix("_l0"): v for k, v in one.state_dict().items()})
    h_t = torch.zeros(2, 5, dtype=DT)
    steps = []
    for x_t in x:
        h_t = cell(x_t, h_t)
        steps.append(h_t)
    assert_close(torch.stack(steps), one(x)[0])


@pytest.mark.parametrize("bidirectional", [False, True])
def test_packed_and_padded_batches_equal_each_sequence_alone(bidirectional):
    torch.manual_seed(5)
    layer = ChoGRU(3, 4, 2, batch_first=True, bidirectional=bidirectional).double()
    lengths = [5, 2, 4]  # unsorted: the layer must hand h_n back in the caller's order
    seqs = [randn(n, 3) for n in lengths]
    padded = torch.zeros(3, 5, 3, dtype=DT)
    for i, s in enumerate(seqs):
        padded[i, : len(s)] = s
    packed = pack_padded_sequence(padded, torch.tensor(lengths), batch_first=True, enforce_sorted=False)
    out_packed, h_n = layer(packed)
    out, out_lengths = pad_packed_sequence(out_packed, batch_first=True)
    assert out_lengths.tolist() == lengths
    for i, s in enumerate(seqs):
        alone, h_alone = layer(s)  # unbatched (T, H_in)
        assert_close(out[i, : len(s)], alone)
        assert (out[i, len(s) :] == 0).all()
        assert_close(h_n[:, i], h_alone)
    # pack_sequence, sorted, with an initial state
    h0 = randn(h_n.shape[0], 3, 4)
    out_sorted, h_sorted = layer(pack_sequence(sorted(seqs, key=len, reverse=True)), h0)
    assert out_sorted.data.shape == (sum(lengths), layer.hidden_size * (2 if bidirectional else 1))
    assert torch.isfinite(h_sorted).all()


def test_torch_gru_contract():
    torch.manual_seed(6)
    ref = nn.GRU(3, 4, 2, bidirectional=True, batch_first=True)
    torch.manual_seed(6)
    cho = ChoGRU(3, 4, 2, bidirectional=True, batch_first=True)
    assert [n for n, _ in cho.named_parameters()] == [n for n, _ in ref.named_parameters()]
    for (_, a), (_, b) in zip(cho.named_parameters(), ref.named_parameters(), strict=True):
        assert_close(a, b, rtol=0, atol=0)  # same seed, same init draws in the same order
    ref.load_state_dict(cho.state_dict(), strict=True)
    assert repr(cho) == "ChoGRU(3, 4, num_layers=2, batch_first=True, bidirectional=True)"
    assert cho.mode == "GRU" and isinstance(cho, rnn.RNNBase) and not isinstance(cho, rnn.GRU)
    x = torch.randn(2, 5, 3)
    out, h_n = cho(x)
    assert out.shape == (2, 5, 8) and h_n.shape == (4, 2, 4)
    out_1, h_1 = cho(x[1])  # unbatched (T, H_in)
    assert_close(out_1, out[1])
    assert_close(h_1, h_n[:, 1])
    with pytest.raises(
        RuntimeError, match="input.size\\(-1\\) must be equal to input_size. Expected 3, got 7"
    ):
        cho(torch.randn(2, 5, 7))
    with pytest.raises(RuntimeError, match="Expected hidden size \\(4, 2, 4\\), got \\[2, 2, 4\\]"):
        cho(x, torch.zeros(2, 2, 4))
    with pytest.raises(ValueError, match="proj_size argument is only supported for LSTM"):
        ChoGRU(3, 4, proj_size=2)
    with pytest.raises(TypeError, match="unexpected keyword argument 'nonsense'"):
        ChoGRU(3, 4, nonsense=1)


def test_dropout_between_layers_only_in_training():
    torch.manual_seed(7)
    layer = ChoGRU(3, 4, 2, dropout=0.5)
    x = torch.randn(5, 2, 3)
    layer.eval()
    assert_close(layer(x)[0], layer(x)[0])
    layer.train()
    torch.manual_seed(8)
    a = layer(x)[0]
    torch.manual_seed(9)
    b = layer(x)[0]
    assert (a - b).abs().max() > 1e-4


def test_registered_as_a_variant_and_exported_by_rnnlab_nn():
    assert rnn.VARIANTS["cho_gru"] is ChoGRU
    assert rnn.ChoGRU is ChoGRU and rnn.ChoGRUCell is ChoGRUCell
