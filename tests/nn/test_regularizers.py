"""Tests for rnnlab.nn.regularizers: zoneout, variational (recurrent) dropout and weight drop.

Each regularizer's defining property (zoned-out units keeping their exact previous value, a dropout mask
shared by every step, weights actually dropped and the raw weight trained), its expectation or identity in
eval, parity with torch.nn where it reduces to it, gradcheck in float64, errors that name the argument.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.nn import functional as TF
from torch.testing import assert_close
from variant_testing import DT, flat, gradcheck_module, param_suffix, randn, rnnlab_recurrent

from rnnlab.nn import functional as F
from rnnlab.nn.regularizers import VariationalDropoutLSTM, WeightDrop, ZoneoutLSTM, ZoneoutLSTMCell
from rnnlab.nn.variants import LayerNormLSTM

# ------------------------------------------------------------------------------------------------
# zoneout
# ------------------------------------------------------------------------------------------------


def _zoneout_and_plain(p_h, p_c, seed=8):
    torch.manual_seed(seed)
    cell = ZoneoutLSTMCell(5, 64, zoneout_h=p_h, zoneout_c=p_c).to(DT)
    plain = nn.LSTMCell(5, 64).to(DT)
    plain.load_state_dict(cell.state_dict(), strict=True)
    return cell, plain


def test_zoneout_zero_is_the_plain_lstm_cell_in_training():
    cell, plain = _zoneout_and_plain(0.0, 0.0)
    x, hx = randn(3, 5), (randn(3, 64), randn(3, 64))
    for e, g in zip(plain(x, hx), cell.train()(x, hx), strict=True):
        assert_close(g, e)


@pytest.mark.parametrize("training", [True, False])
def test_zoneout_one_never_changes_the_state(training):
    torch.manual_seed(9)
    layer = ZoneoutLSTM(3, 4, num_layers=2, zoneout_h=1.0, zoneout_c=1.0).to(DT).train(training)
    h0, c0 = randn(2, 2, 4), randn(2, 2, 4)
    output, (h_n, c_n) = layer(randn(6, 2, 3), (h0, c0))
    assert torch.equal(h_n, h0)
    assert torch.equal(c_n, c0)
    assert torch.equal(output, h0[-1].expand(6, 2, 4))


def test_zoneout_in_training_keeps_exactly_the_zoned_units():
    """Each unit is either its exact previous value or exactly the plain LSTM's new value, at rate p."""
    cell, plain = _zoneout_and_plain(0.3, 0.6)
    cell.train()
    x, (h, c) = randn(32, 5), (randn(32, 64), randn(32, 64))
    h_new, c_new = plain(x, (h, c))
    h_got, c_got = cell(x, (h, c))
    for got, prev, new, p in ((h_got, h, h_new, 0.3), (c_got, c, c_new, 0.6)):
        # new: torch's fused cell may differ from the unfused math in the last bit, hence isclose there
        kept, updated = got == prev, torch.isclose(got, new, rtol=1e-12, atol=1e-12)
        assert (kept | updated).all()
        assert not (kept & updated).any()  # prev != new everywhere here, so each unit is one or the other
        assert abs(kept.to(DT).mean().item() - p) < 0.05  # 2048 units per state
        assert not (kept == kept[:1]).all()  # each example draws its own mask
    # a fresh mask per step: the same step again zones out other units
    assert not torch.equal(cell(x, (h, c))[0] == h, h_got == h)


def test_zoneout_in_eval_uses_the_expectation():
    cell, plain = _zoneout_and_plain(0.3, 0.6)
    cell.eval()
    x, (h, c) = randn(4, 5), (randn(4, 64), randn(4, 64))
    h_new, c_new = plain(x, (h, c))
    h_got, c_got = cell(x, (h, c))
    assert_close(c_got, 0.6 * c + 0.4 * c_new)
    assert_close(h_got, 0.3 * h + 0.7 * h_new)  # h_new from the cell state before zoneout, as the paper
    assert torch.equal(cell(x, (h, c))[0], h_got)


# ------------------------------------------------------------------------------------------------
# variational (recurrent) dropout
# ------------------------------------------------------------------------------------------------


def test_variational_lstm_has_torch_lstm_parameters_and_init():
    torch.manual_seed(13)
    ours = VariationalDropoutLSTM(3, 4, num_layers=2, bidirectional=True, dropout_state=0.2)
    torch.manual_seed(13)
    ref = nn.LSTM(3, 4, num_layers=2, bidirectional=True)
    assert list(ours.state_dict()) == list(ref.state_dict())
    for (name, a), b in zip(ours.state_dict().items(), ref.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    ref.load_state_dict(ours.state_dict(), strict=True)
    no_bias = VariationalDropoutLSTM(3, 4, bias=False)
    assert list(no_bias.state_dict()) == list(nn.LSTM(3, 4, bias=False).state_dict())


@pytest.mark.parametrize("bidirectional", [False, True])
def test_variational_lstm_in_training_uses_sample_masks_at_every_step(bidirectional):
    torch.manual_seed(14)
    model = VariationalDropoutLSTM(3, 4, 2, bidirectional=bidirectional, dropout_input=0.4, dropout_state=0.5)
    model = model.to(DT).train()
    x = randn(6, 2, 3)
    torch.manual_seed(99)
    output, (h_n, c_n) = model(x)
    torch.manual_seed(99)
    masks = model.sample_masks(2, dtype=DT)
    # by hand: the same masks on the layer input and on h_{t-1} at every step
    D = model.num_directions
    layer_in, finals = x, []
    for layer in range(2):
        outs = []
        for d in range(D):
            k = layer * D + d
            m_x, m_h = masks[k]
            suffix = param_suffix(k, D)
            weights = [getattr(model, n + suffix) for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
            h, c, seq = torch.zeros(2, 4, dtype=DT), torch.zeros(2, 4, dtype=DT), [None] * 6
            for t in reversed(range(6)) if d else range(6):
                h, c = F.lstm(layer_in[t] * m_x, (h * m_h, c), *weights)
                seq[t] = h
            finals.append((h, c))
            outs.append(torch.stack(seq))
        layer_in = torch.cat(outs, dim=2)
    assert_close(output, layer_in)
    assert_close(h_n, torch.stack([h for h, _ in finals]))
    assert_close(c_n, torch.stack([c for _, c in finals]))


def test_variational_sample_masks_are_scaled_bernoulli_per_example_layer_and_direction():
    torch.manual_seed(31)
    model = VariationalDropoutLSTM(
        3, 50, num_layers=2, bidirectional=True, dropout_input=0.2, dropout_state=0.6
    )
    masks = model.sample_masks(200)
    assert [tuple(m.shape) for pair in masks for m in pair] == [(200, 3), (200, 50)] * 2 + [
        (200, 100),
        (200, 50),
    ] * 2
    for m_x, m_h in masks:
        for m, p in ((m_x, 0.2), (m_h, 0.6)):
            assert set(m.unique().tolist()) == {0.0, 1 / (1 - p)}
            assert abs((m == 0).double().mean().item() - p) < 0.05
            assert not (m == m[:1]).all()  # every example its own mask
    assert not torch.equal(masks[0][1], masks[1][1])  # and every direction
    assert VariationalDropoutLSTM(3, 4, dropout_state=0.5).sample_masks(2)[0][0] is None  # p = 0: no mask


def test_variational_input_mask_is_the_same_at_every_step():
    """No recurrence (W_hh = 0) and a closed forget gate make h_t a function of the masked x_t alone; with x
    constant in time, h_t is then constant in time iff the mask is shared by all steps."""
    torch.manual_seed(15)
    model = VariationalDropoutLSTM(8, 6, dropout_input=0.5).to(DT).train()
    with torch.no_grad():
        model.weight_hh_l0.zero_()
        model.bias_hh_l0[6:12] = -1e4  # forget gate: sigmoid(-1e4) = 0, so c_t = i_t * g_t
    x = randn(1, 16, 8).expand(10, 16, 8)  # (T, B, H_in), the same x at every step
    output, _ = model(x)
    assert torch.equal(output, output[:1].expand_as(output))
    eval_output, _ = model.eval()(x)
    assert not torch.allclose(output[0], eval_output[0])  # ... and the mask did drop something


def test_variational_state_mask_is_the_same_at_every_step():
    """The units of h_{t-1} dropped for a sequence are dropped at every step: changing their columns of
    W_hh changes nothing, while changing a kept unit's column does."""
    torch.manual_seed(16)
    model = VariationalDropoutLSTM(3, 8, dropout_state=0.5).to(DT).train()
    x = randn(12, 1, 3)  # one sequence
    torch.manual_seed(5)
    m_h = model.sample_masks(1, dtype=DT)[0][1][0]  # (H,)
    dropped, kept = (m_h == 0).nonzero().flatten(), (m_h != 0).nonzero().flatten()
    assert len(dropped) > 0 and len(kept) > 0
    torch.manual_seed(5)
    reference = model(x)[0]
    perturbed = copy.deepcopy(model)
    with torch.no_grad():
        perturbed.weight_hh_l0[:, dropped] += 3.0
    torch.manual_seed(5)
    assert torch.equal(perturbed(x)[0], reference)
    with torch.no_grad():
        perturbed.weight_hh_l0[:, kept[:1]] += 3.0
    torch.manual_seed(5)
    assert not torch.allclose(perturbed(x)[0], reference)


def test_variational_lstm_eval_is_deterministic_and_torch_lstm():
    torch.manual_seed(17)
    model = VariationalDropoutLSTM(3, 4, 2, dropout_input=0.5, dropout_state=0.5).eval()
    ref = nn.LSTM(3, 4, 2)
    ref.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(5, 2, 3)
    first = model(x)
    assert torch.equal(flat(first)[0], flat(model(x))[0])
    for e, g in zip(flat(ref(x)), flat(first), strict=True):
        assert_close(g, e)


# ------------------------------------------------------------------------------------------------
# weight drop
# ------------------------------------------------------------------------------------------------


def _weight_drop_targets():
    targets = [("torch-LSTM", lambda: nn.LSTM(3, 5)), ("torch-GRU", lambda: nn.GRU(3, 5))]
    targets.append(("torch-RNN", lambda: nn.RNN(3, 5)))
    targets.append(("variational", lambda: VariationalDropoutLSTM(3, 5)))
    recurrent = rnnlab_recurrent()
    if recurrent is not None:
        targets += [
            (f"rnnlab-{n}", (lambda n=n: getattr(recurrent, n)(3, 5))) for n in ("LSTM", "GRU", "RNN")
        ]
    return [pytest.param(make, id=name) for name, make in targets]


@pytest.mark.parametrize("make", _weight_drop_targets())
def test_weight_drop_uses_the_dropped_weight_and_trains_the_raw_one(make):
    torch.manual_seed(18)
    module = make().to(DT)
    reference = copy.deepcopy(module)
    wrapped = WeightDrop(module, ["weight_hh_l0"], dropout=0.5).train()
    raw = wrapped.weight_hh_l0_raw
    x = randn(7, 2, 3)
    torch.manual_seed(3)
    out = wrapped(x)
    torch.manual_seed(3)
    dropped = TF.dropout(raw.detach(), 0.5, training=True)  # the same draw as the wrapper's
    with torch.no_grad():
        reference.weight_hh_l0.copy_(dropped)
    expected = reference(x)
    for e, g in zip(flat(expected), flat(out), strict=True):
        assert_close(g, e)
    # the raw weight gets the gradient, masked: dropped entries get none
    sum(t.sum() for t in flat(out)).backward()
    sum(t.sum() for t in flat(expected)).backward()
    assert_close(raw.grad, reference.weight_hh_l0.grad * (dropped != 0) * 2.0)
    assert (raw.grad[dropped == 0] == 0).all() and raw.grad.abs().sum() > 0


@pytest.mark.parametrize("make", _weight_drop_targets())
def test_weight_drop_eval_uses_the_raw_weight(make):
    torch.manual_seed(19)
    module = make().to(DT)
    original = copy.deepcopy(module)
    wrapped = WeightDrop(module, ["weight_hh_l0"], dropout=0.9).eval()
    x = randn(4, 2, 3)
    first = flat(wrapped(x))
    for e, g, again in zip(flat(original(x)), first, flat(wrapped(x)), strict=True):
        assert_close(g, e)
        assert torch.equal(g, again)


def test_weight_drop_draws_a_fresh_mask_each_call_and_registers_the_raw_weight_once():
    torch.manual_seed(20)
    lstm = nn.LSTM(3, 5, num_layers=2)
    n_params = sum(p.numel() for p in lstm.parameters())
    wrapped = WeightDrop(lstm, ["weight_hh_l0", "weight_hh_l1"], dropout=0.5)
    names = [n for n, _ in wrapped.named_parameters()]
    assert "weight_hh_l0_raw" in names and "weight_hh_l1_raw" in names
    assert "module.weight_hh_l0" not in names and "module.weight_hh_l0" not in wrapped.state_dict()
    assert sum(p.numel() for p in wrapped.parameters()) == n_params
    x = torch.randn(4, 2, 3)
    assert not torch.equal(wrapped(x)[0], wrapped(x)[0])
    with pytest.raises(TypeError):  # the bare module no longer owns the weight: no silent stale tensor
        lstm(x)


def test_weight_drop_on_nested_names_and_with_cell_states():
    torch.manual_seed(21)
    layer = LayerNormLSTM(3, 4)
    wrapped = WeightDrop(layer, ["cells.0.weight_hh"], dropout=0.5)
    assert "cells_0_weight_hh_raw" in dict(wrapped.named_parameters())
    x = torch.randn(5, 2, 3)
    wrapped.train()(x)[0].sum().backward()
    assert wrapped.cells_0_weight_hh_raw.grad is not None


def test_gradcheck_weight_drop():
    torch.manual_seed(22)
    wrapped = WeightDrop(nn.LSTM(2, 2), dropout=0.5).to(DT).train()
    assert gradcheck_module(wrapped, randn(3, 1, 2, grad=True), seed=0)


def test_weight_drop_errors_name_the_argument():
    with pytest.raises(ValueError, match="weights must name parameters"):
        WeightDrop(nn.LSTM(3, 4), ["weight_hh_l1"])
    with pytest.raises(ValueError, match="dropout"):
        WeightDrop(nn.LSTM(3, 4), dropout=1.5)
    with pytest.raises(TypeError, match="module"):
        WeightDrop("lstm")
