"""Tests for rnnlab.nn.variants.

The ladder, per variant: parity with torch.nn where the variant reduces to it (layer norm replaced by the
identity, zero peepholes, zero zoneout, variational dropout in eval); hand-written equations where it does
not; the defining property (a dropout mask shared by every step, zoned-out units keeping their exact
previous value, normalised pre-activations, i = 1 - f, weights actually dropped); stepping with carried
state equals one full pass; gradcheck in float64; errors that name the argument.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.nn import functional as TF
from torch.nn.utils.rnn import pack_sequence
from torch.testing import assert_close

from rnnlab.nn import functional as F
from rnnlab.nn.variants import (
    VARIANTS,
    LayerNormGRU,
    LayerNormGRUCell,
    LayerNormLSTM,
    LayerNormLSTMCell,
    PeepholeLSTM,
    PeepholeLSTMCell,
    VariationalDropoutLSTM,
    WeightDrop,
    ZoneoutLSTM,
    ZoneoutLSTMCell,
    lstm_with_cell_states,
)

DT = torch.float64
GRID = [
    pytest.param(
        num_layers,
        bidirectional,
        batch_first,
        id=f"L{num_layers}-bi{int(bidirectional)}-bf{int(batch_first)}",
    )
    for num_layers in (1, 2)
    for bidirectional in (False, True)
    for batch_first in (False, True)
]


# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------


def _flat(out):
    """(output, h) or (output, (h, c)) -> a flat tuple of tensors, for comparisons and gradcheck."""
    if isinstance(out, torch.Tensor):
        return (out,)
    return tuple(t for item in out for t in _flat(item))


def _suffix(k: int, num_directions: int) -> str:
    layer, direction = divmod(k, num_directions)
    return f"_l{layer}" + ("_reverse" if direction else "")


def _copy_torch_weights_into_cells(ref: nn.RNNBase, stack) -> None:
    """torch.nn.LSTM/GRU weights -> our cells[layer * D + direction] (weight_ih, weight_hh, bias_*)."""
    with torch.no_grad():
        for k, cell in enumerate(stack.cells):
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(cell, name).copy_(getattr(ref, name + _suffix(k, stack.num_directions)))


def _zero_peepholes(stack) -> None:
    with torch.no_grad():
        for cell in stack.cells:
            for p in (cell.weight_ci, cell.weight_cf, cell.weight_co):
                if p is not None:
                    p.zero_()


def _identity_layer_norms(module) -> None:
    for cell in [module] if not hasattr(module, "cells") else module.cells:
        for name, child in list(cell.named_children()):
            if isinstance(child, nn.LayerNorm):
                setattr(cell, name, nn.Identity())


def _ln_gru_stack_from_torch(ref):
    stack = LayerNormGRU(
        ref.input_size,
        ref.hidden_size,
        ref.num_layers,
        batch_first=ref.batch_first,
        bidirectional=ref.bidirectional,
    ).to(DT)
    _identity_layer_norms(stack)
    _copy_torch_weights_into_cells(ref, stack)
    return stack


def _peephole_stack_from_torch(ref):
    stack = PeepholeLSTM(
        ref.input_size,
        ref.hidden_size,
        ref.num_layers,
        batch_first=ref.batch_first,
        bidirectional=ref.bidirectional,
    ).to(DT)
    _zero_peepholes(stack)
    _copy_torch_weights_into_cells(ref, stack)
    return stack


def _zoneout_stack_from_torch(ref):
    stack = ZoneoutLSTM(
        ref.input_size,
        ref.hidden_size,
        ref.num_layers,
        batch_first=ref.batch_first,
        bidirectional=ref.bidirectional,
    ).to(DT)
    _copy_torch_weights_into_cells(ref, stack)
    return stack


def _variational_from_torch(ref):
    ours = VariationalDropoutLSTM(
        ref.input_size,
        ref.hidden_size,
        ref.num_layers,
        batch_first=ref.batch_first,
        bidirectional=ref.bidirectional,
        dropout_input=0.3,
        dropout_state=0.3,
    ).to(DT)
    ours.load_state_dict(ref.state_dict(), strict=True)
    return ours.eval()  # eval: no masks, exactly torch.nn.LSTM


REDUCTIONS = {
    "layernorm_gru_identity_ln": (nn.GRU, _ln_gru_stack_from_torch),
    "peephole_zero_peepholes": (nn.LSTM, _peephole_stack_from_torch),
    "zoneout_zero": (nn.LSTM, _zoneout_stack_from_torch),
    "variational_eval": (nn.LSTM, _variational_from_torch),
}


def _gradcheck_module(module, *inputs, seed=None):
    """gradcheck w.r.t. the inputs and every parameter; reseed before each call if the module draws masks."""
    names = [n for n, _ in module.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_() for p in module.parameters())

    def run(*args):
        if seed is not None:
            torch.manual_seed(seed)
        p = dict(zip(names, args[: len(names)], strict=True))
        return _flat(torch.func.functional_call(module, p, args[len(names) :]))

    # fast_mode checks random projections of the Jacobian (torch's OpInfo tests do the same); the full
    # Jacobian of every parameter costs one forward per entry, too slow for this suite.
    return torch.autograd.gradcheck(run, params + inputs, fast_mode=True)


def _randn(*shape, grad=False):
    return torch.randn(*shape, dtype=DT, requires_grad=grad)


# ------------------------------------------------------------------------------------------------
# the shared time loop, through the variants that reduce to torch.nn
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", list(REDUCTIONS))
@pytest.mark.parametrize(("num_layers", "bidirectional", "batch_first"), GRID)
def test_reduces_to_torch_nn(reduction, num_layers, bidirectional, batch_first):
    torch.manual_seed(0)
    ref_cls, make = REDUCTIONS[reduction]
    ref = ref_cls(3, 4, num_layers, batch_first=batch_first, bidirectional=bidirectional).to(DT)
    ours = make(ref)
    D, B, T = 2 if bidirectional else 1, 2, 5
    x = _randn(B, T, 3) if batch_first else _randn(T, B, 3)
    h0 = _randn(num_layers * D, B, 4)
    hx = (h0, _randn(num_layers * D, B, 4)) if ref_cls is nn.LSTM else h0
    for state in (None, hx):
        x_ref, x_ours = x.clone().requires_grad_(), x.clone().requires_grad_()
        expected, got = _flat(ref(x_ref, state)), _flat(ours(x_ours, state))
        for e, g in zip(expected, got, strict=True):
            assert_close(g, e)
        sum(t.sum() for t in expected).backward()
        sum(t.sum() for t in got).backward()
        assert_close(x_ours.grad, x_ref.grad)


@pytest.mark.parametrize("reduction", list(REDUCTIONS))
def test_unbatched_input_reduces_to_torch_nn(reduction):
    torch.manual_seed(1)
    ref_cls, make = REDUCTIONS[reduction]
    ref = ref_cls(3, 4, 2, bidirectional=True).to(DT)
    ours = make(ref)
    x = _randn(5, 3)  # (T, H_in)
    hx = (_randn(4, 4), _randn(4, 4)) if ref_cls is nn.LSTM else _randn(4, 4)  # (L*D, H)
    for e, g in zip(_flat(ref(x, hx)), _flat(ours(x, hx)), strict=True):
        assert_close(g, e)


def test_inter_layer_dropout_only_between_layers_and_only_in_training():
    torch.manual_seed(2)
    x = torch.randn(6, 3, 4)
    stack = PeepholeLSTM(4, 8, num_layers=2, dropout=0.5)
    stack.eval()
    assert torch.equal(stack(x)[0], stack(x)[0])
    stack.train()
    assert not torch.equal(stack(x)[0], stack(x)[0])
    one = PeepholeLSTM(4, 8, num_layers=1, dropout=0.5).train()
    assert torch.equal(one(x)[0], one(x)[0])


# ------------------------------------------------------------------------------------------------
# layer normalisation
# ------------------------------------------------------------------------------------------------


def _perturb_layer_norms(cell):
    with torch.no_grad():
        for child in cell.children():
            if isinstance(child, nn.LayerNorm):
                child.weight.uniform_(0.5, 1.5)
                child.bias.uniform_(-0.5, 0.5)


def test_layernorm_lstm_cell_follows_the_paper_equations():
    torch.manual_seed(3)
    cell = LayerNormLSTMCell(3, 4).to(DT)
    _perturb_layer_norms(cell)
    x, h, c = _randn(2, 3), _randn(2, 4), _randn(2, 4)

    def ln(a, mod):
        return TF.layer_norm(a, a.shape[-1:], mod.weight, mod.bias, eps=1e-5)

    gates = ln(x @ cell.weight_ih.T, cell.ln_ih) + ln(h @ cell.weight_hh.T, cell.ln_hh) + cell.gate_bias
    i, f, g, o = gates.chunk(4, dim=1)
    c_expected = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h_expected = torch.sigmoid(o) * torch.tanh(ln(c_expected, cell.ln_c))
    h_got, c_got = cell(x, (h, c))
    assert_close(h_got, h_expected)
    assert_close(c_got, c_expected)


def test_layernorm_lstm_cell_without_layer_norm_is_torch_lstm_cell():
    torch.manual_seed(4)
    cell = LayerNormLSTMCell(3, 4).to(DT)
    _identity_layer_norms(cell)
    ref = nn.LSTMCell(3, 4).to(DT)
    with torch.no_grad():
        ref.weight_ih.copy_(cell.weight_ih)
        ref.weight_hh.copy_(cell.weight_hh)
        ref.bias_ih.copy_(cell.gate_bias)
        ref.bias_hh.zero_()
    x, hx = _randn(2, 3), (_randn(2, 4), _randn(2, 4))
    for e, g in zip(ref(x, hx), cell(x, hx), strict=True):
        assert_close(g, e)


@pytest.mark.parametrize("cell_cls", [LayerNormLSTMCell, LayerNormGRUCell])
def test_layer_norms_see_the_pre_activations_and_normalise_them(cell_cls):
    """With unit gain and zero shift each normalised pre-activation has mean 0 and std 1 per example, and
    what is normalised is exactly the matrix product (W x or W h)."""
    torch.manual_seed(5)
    cell = cell_cls(6, 8).to(DT)
    seen = {}
    for name, child in cell.named_children():
        child.register_forward_hook(lambda mod, inp, out, name=name: seen.__setitem__(name, (inp[0], out)))
    x = _randn(16, 6) * 3 + 1
    hx = (_randn(16, 8) * 2, _randn(16, 8)) if cell_cls is LayerNormLSTMCell else _randn(16, 8) * 2
    cell(x, hx)
    h = hx[0] if isinstance(hx, tuple) else hx
    H = 8
    if cell_cls is LayerNormLSTMCell:
        assert set(seen) == {"ln_ih", "ln_hh", "ln_c"}
        assert_close(seen["ln_ih"][0], x @ cell.weight_ih.T)
        assert_close(seen["ln_hh"][0], h @ cell.weight_hh.T)
    else:
        assert set(seen) == {"ln_ih_rz", "ln_hh_rz", "ln_ih_n", "ln_hh_n"}
        assert_close(seen["ln_ih_rz"][0], (x @ cell.weight_ih.T)[:, : 2 * H])
        assert_close(seen["ln_hh_n"][0], (h @ cell.weight_hh.T)[:, 2 * H :])
    for _, out in seen.values():
        assert_close(out.mean(dim=1), torch.zeros(16, dtype=DT), atol=1e-10, rtol=0)
        assert_close(out.var(dim=1, unbiased=False), torch.ones(16, dtype=DT), atol=1e-3, rtol=0)


@pytest.mark.parametrize("cell_cls", [LayerNormLSTMCell, LayerNormGRUCell])
def test_layer_norm_makes_the_cell_invariant_to_rescaling_its_weight_matrices(cell_cls):
    """Ba et al. (2016), section 5.2: LN(a W x) = LN(W x). A plain cell would change; so must the check."""
    torch.manual_seed(6)
    cell = cell_cls(3, 4).to(DT)
    for child in cell.children():
        child.eps = 1e-14  # the invariance is exact only without LN's epsilon
    x = _randn(2, 3)
    hx = (_randn(2, 4), _randn(2, 4)) if cell_cls is LayerNormLSTMCell else _randn(2, 4)
    before = _flat(cell(x, hx))
    scaled = copy.deepcopy(cell)
    with torch.no_grad():
        scaled.weight_ih.mul_(7.0)
        scaled.weight_hh.mul_(0.2)
    for b, a in zip(before, _flat(scaled(x, hx)), strict=True):
        assert_close(a, b, atol=1e-9, rtol=1e-9)
    _identity_layer_norms(cell)
    _identity_layer_norms(scaled)
    assert not torch.allclose(_flat(cell(x, hx))[0], _flat(scaled(x, hx))[0], atol=1e-2)


def test_layernorm_gru_cell_follows_its_equations():
    torch.manual_seed(7)
    cell = LayerNormGRUCell(3, 4).to(DT)
    _perturb_layer_norms(cell)
    x, h = _randn(2, 3), _randn(2, 4)

    def ln(a, mod):
        return TF.layer_norm(a, a.shape[-1:], mod.weight, mod.bias, eps=1e-5)

    W_ir, W_iz, W_in = cell.weight_ih.chunk(3)
    W_hr, W_hz, W_hn = cell.weight_hh.chunk(3)
    b_ir, b_iz, b_in = cell.bias_ih.chunk(3)
    b_hr, b_hz, b_hn = cell.bias_hh.chunk(3)
    i_rz = ln(x @ torch.cat([W_ir, W_iz]).T, cell.ln_ih_rz) + torch.cat([b_ir, b_iz])
    h_rz = ln(h @ torch.cat([W_hr, W_hz]).T, cell.ln_hh_rz) + torch.cat([b_hr, b_hz])
    r, z = torch.sigmoid(i_rz + h_rz).chunk(2, dim=1)
    n = torch.tanh(ln(x @ W_in.T, cell.ln_ih_n) + b_in + r * (ln(h @ W_hn.T, cell.ln_hh_n) + b_hn))
    assert_close(cell(x, h), (1 - z) * n + z * h)


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
    x, hx = _randn(3, 5), (_randn(3, 64), _randn(3, 64))
    for e, g in zip(plain(x, hx), cell.train()(x, hx), strict=True):
        assert_close(g, e)


@pytest.mark.parametrize("training", [True, False])
def test_zoneout_one_never_changes_the_state(training):
    torch.manual_seed(9)
    layer = ZoneoutLSTM(3, 4, num_layers=2, zoneout_h=1.0, zoneout_c=1.0).to(DT).train(training)
    h0, c0 = _randn(2, 2, 4), _randn(2, 2, 4)
    output, (h_n, c_n) = layer(_randn(6, 2, 3), (h0, c0))
    assert torch.equal(h_n, h0)
    assert torch.equal(c_n, c0)
    assert torch.equal(output, h0[-1].expand(6, 2, 4))


def test_zoneout_in_training_keeps_exactly_the_zoned_units():
    """Each unit is either its exact previous value or exactly the plain LSTM's new value, at rate p."""
    cell, plain = _zoneout_and_plain(0.3, 0.6)
    cell.train()
    x, (h, c) = _randn(32, 5), (_randn(32, 64), _randn(32, 64))
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
    x, (h, c) = _randn(4, 5), (_randn(4, 64), _randn(4, 64))
    h_new, c_new = plain(x, (h, c))
    h_got, c_got = cell(x, (h, c))
    assert_close(c_got, 0.6 * c + 0.4 * c_new)
    assert_close(h_got, 0.3 * h + 0.7 * h_new)  # h_new from the cell state before zoneout, as the paper
    assert torch.equal(cell(x, (h, c))[0], h_got)


# ------------------------------------------------------------------------------------------------
# peephole and coupled-gate LSTM
# ------------------------------------------------------------------------------------------------


def test_peephole_with_zero_peepholes_is_torch_lstm_cell():
    torch.manual_seed(10)
    cell = PeepholeLSTMCell(3, 4).to(DT)
    with torch.no_grad():
        for p in (cell.weight_ci, cell.weight_cf, cell.weight_co):
            p.zero_()
    ref = nn.LSTMCell(3, 4).to(DT)
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(ref, name).copy_(getattr(cell, name))
    x, hx = _randn(2, 3), (_randn(2, 4), _randn(2, 4))
    for e, g in zip(ref(x, hx), cell(x, hx), strict=True):
        assert_close(g, e)


def test_peephole_cell_follows_gers_equations():
    torch.manual_seed(11)
    cell = PeepholeLSTMCell(3, 4).to(DT)
    x, h, c = _randn(2, 3), _randn(2, 4), _randn(2, 4)
    i_, f_, g_, o_ = (x @ cell.weight_ih.T + cell.bias_ih + h @ cell.weight_hh.T + cell.bias_hh).chunk(
        4, dim=1
    )
    i = torch.sigmoid(i_ + cell.weight_ci * c)
    f = torch.sigmoid(f_ + cell.weight_cf * c)
    c_new = f * c + i * torch.tanh(g_)
    o = torch.sigmoid(o_ + cell.weight_co * c_new)  # the output gate peeks at the new cell state
    h_got, c_got = cell(x, (h, c))
    assert_close(c_got, c_new)
    assert_close(h_got, o * torch.tanh(c_new))


def test_coupled_gate_is_one_minus_forget_gate():
    """CIFG with (W_f, b_f, p_f) equals the uncoupled cell whose input gate has (-W_f, -b_f, -p_f),
    because sigma(-a) = 1 - sigma(a): so the coupled cell's input gate is exactly 1 - f."""
    torch.manual_seed(12)
    coupled = PeepholeLSTMCell(3, 4, coupled=True).to(DT)
    assert coupled.weight_ih.shape == (12, 3) and coupled.weight_ci is None
    free = PeepholeLSTMCell(3, 4).to(DT)
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            f, g, o = getattr(coupled, name).chunk(3)
            getattr(free, name).copy_(torch.cat([-f, f, g, o]))
        free.weight_ci.copy_(-coupled.weight_cf)
        free.weight_cf.copy_(coupled.weight_cf)
        free.weight_co.copy_(coupled.weight_co)
    x, hx = _randn(2, 3), (_randn(2, 4), _randn(2, 4))
    for e, g in zip(free(x, hx), coupled(x, hx), strict=True):
        assert_close(g, e)
    with torch.no_grad():
        free.weight_ci.add_(0.5)  # any other input gate gives other numbers
    assert not torch.allclose(free(x, hx)[1], coupled(x, hx)[1])


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
    x = _randn(6, 2, 3)
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
            suffix = _suffix(k, D)
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
    x = _randn(1, 16, 8).expand(10, 16, 8)  # (T, B, H_in), the same x at every step
    output, _ = model(x)
    assert torch.equal(output, output[:1].expand_as(output))
    eval_output, _ = model.eval()(x)
    assert not torch.allclose(output[0], eval_output[0])  # ... and the mask did drop something


def test_variational_state_mask_is_the_same_at_every_step():
    """The units of h_{t-1} dropped for a sequence are dropped at every step: changing their columns of
    W_hh changes nothing, while changing a kept unit's column does."""
    torch.manual_seed(16)
    model = VariationalDropoutLSTM(3, 8, dropout_state=0.5).to(DT).train()
    x = _randn(12, 1, 3)  # one sequence
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
    assert torch.equal(_flat(first)[0], _flat(model(x))[0])
    for e, g in zip(_flat(ref(x)), _flat(first), strict=True):
        assert_close(g, e)


# ------------------------------------------------------------------------------------------------
# weight drop
# ------------------------------------------------------------------------------------------------


def _rnnlab_recurrent():
    try:
        from rnnlab.nn import recurrent
    except ImportError:
        return None
    return recurrent


def _weight_drop_targets():
    targets = [("torch-LSTM", lambda: nn.LSTM(3, 5)), ("torch-GRU", lambda: nn.GRU(3, 5))]
    targets.append(("torch-RNN", lambda: nn.RNN(3, 5)))
    targets.append(("variational", lambda: VariationalDropoutLSTM(3, 5)))
    recurrent = _rnnlab_recurrent()
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
    x = _randn(7, 2, 3)
    torch.manual_seed(3)
    out = wrapped(x)
    torch.manual_seed(3)
    dropped = TF.dropout(raw.detach(), 0.5, training=True)  # the same draw as the wrapper's
    with torch.no_grad():
        reference.weight_hh_l0.copy_(dropped)
    expected = reference(x)
    for e, g in zip(_flat(expected), _flat(out), strict=True):
        assert_close(g, e)
    # the raw weight gets the gradient, masked: dropped entries get none
    sum(t.sum() for t in _flat(out)).backward()
    sum(t.sum() for t in _flat(expected)).backward()
    assert_close(raw.grad, reference.weight_hh_l0.grad * (dropped != 0) * 2.0)
    assert (raw.grad[dropped == 0] == 0).all() and raw.grad.abs().sum() > 0


@pytest.mark.parametrize("make", _weight_drop_targets())
def test_weight_drop_eval_uses_the_raw_weight(make):
    torch.manual_seed(19)
    module = make().to(DT)
    original = copy.deepcopy(module)
    wrapped = WeightDrop(module, ["weight_hh_l0"], dropout=0.9).eval()
    x = _randn(4, 2, 3)
    first = _flat(wrapped(x))
    for e, g, again in zip(_flat(original(x)), first, _flat(wrapped(x)), strict=True):
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
    assert _gradcheck_module(wrapped, _randn(3, 1, 2, grad=True), seed=0)


def test_weight_drop_errors_name_the_argument():
    with pytest.raises(ValueError, match="weights must name parameters"):
        WeightDrop(nn.LSTM(3, 4), ["weight_hh_l1"])
    with pytest.raises(ValueError, match="dropout"):
        WeightDrop(nn.LSTM(3, 4), dropout=1.5)
    with pytest.raises(TypeError, match="module"):
        WeightDrop("lstm")


# ------------------------------------------------------------------------------------------------
# every-step cell states
# ------------------------------------------------------------------------------------------------


def _lstm_modules():
    makers = [("torch", nn.LSTM)]
    recurrent = _rnnlab_recurrent()
    if recurrent is not None:
        makers.append(("rnnlab", recurrent.LSTM))
    return [pytest.param(cls, id=name) for name, cls in makers]


@pytest.mark.parametrize("lstm_cls", _lstm_modules())
@pytest.mark.parametrize(("num_layers", "bidirectional", "batch_first"), GRID)
@pytest.mark.parametrize(("proj_size", "bias"), [(0, True), (2, False)])
def test_lstm_with_cell_states_matches_the_module(
    lstm_cls, num_layers, bidirectional, batch_first, proj_size, bias
):
    torch.manual_seed(23)
    lstm = lstm_cls(
        3, 4, num_layers, bias=bias, batch_first=batch_first, bidirectional=bidirectional, proj_size=proj_size
    )
    lstm = lstm.to(DT)
    D, B, T, P = 2 if bidirectional else 1, 2, 5, proj_size or 4
    x = _randn(B, T, 3) if batch_first else _randn(T, B, 3)
    for hx in (None, (_randn(num_layers * D, B, P), _randn(num_layers * D, B, 4))):
        output, (h_n, c_n), c_all = lstm_with_cell_states(lstm, x, hx)
        expected_output, (expected_h, expected_c) = lstm(x, hx)
        assert_close(output, expected_output)
        assert_close(h_n, expected_h)
        assert_close(c_n, expected_c)
        time_major = c_all.transpose(0, 1) if batch_first else c_all  # (T, B, D*H)
        assert time_major.shape == (T, B, D * 4)
        assert_close(time_major[-1, :, :4], c_n[-D])  # forward direction: c at the last step is c_n
        if bidirectional:
            assert_close(time_major[0, :, 4:], c_n[-1])  # reverse direction: c_n is the state at t = 0


def test_lstm_with_cell_states_every_step_equals_an_lstm_cell_loop():
    torch.manual_seed(24)
    lstm = nn.LSTM(3, 4).to(DT)
    cell = nn.LSTMCell(3, 4).to(DT)
    cell.load_state_dict({k[:-3]: v for k, v in lstm.state_dict().items()}, strict=True)  # drop "_l0"
    x = _randn(6, 2, 3)
    _, _, c_all = lstm_with_cell_states(lstm, x)
    h = c = torch.zeros(2, 4, dtype=DT)
    for t in range(6):
        h, c = cell(x[t], (h, c))
        assert_close(c_all[t], c)


def test_lstm_with_cell_states_unbatched_and_errors():
    torch.manual_seed(25)
    lstm = nn.LSTM(3, 4, bidirectional=True)
    x = torch.randn(5, 3)
    output, (h_n, c_n), c_all = lstm_with_cell_states(lstm, x)
    assert c_all.shape == (5, 8)
    assert_close(output, lstm(x)[0])
    assert_close(c_all[-1, :4], c_n[0])
    with pytest.raises(TypeError, match="LSTM module"):
        lstm_with_cell_states(nn.GRU(3, 4), x)
    with pytest.raises(TypeError, match="PackedSequence"):
        lstm_with_cell_states(lstm, pack_sequence([torch.zeros(3, 3)]))
    with pytest.raises(ValueError, match="input_size=3"):
        lstm_with_cell_states(lstm, torch.randn(5, 2, 7))


# ------------------------------------------------------------------------------------------------
# every layer: stepping with carried state equals one full pass; gradcheck for every cell
# ------------------------------------------------------------------------------------------------

LAYERS = {
    "layernorm_lstm": lambda **kw: LayerNormLSTM(3, 4, 2, **kw),
    "layernorm_gru": lambda **kw: LayerNormGRU(3, 4, 2, **kw),
    "peephole_lstm": lambda **kw: PeepholeLSTM(3, 4, 2, **kw),
    "coupled_lstm": lambda **kw: PeepholeLSTM(3, 4, 2, coupled=True, **kw),
    "zoneout_lstm_eval": lambda **kw: ZoneoutLSTM(3, 4, 2, zoneout_h=0.3, zoneout_c=0.2, **kw),
    "variational_lstm_eval": lambda **kw: VariationalDropoutLSTM(
        3, 4, 2, dropout_input=0.3, dropout_state=0.3, **kw
    ),
}


@pytest.mark.parametrize("name", list(LAYERS))
@pytest.mark.parametrize("batch_first", [False, True])
def test_stepping_with_carried_state_equals_one_full_pass(name, batch_first):
    torch.manual_seed(26)
    layer = LAYERS[name](batch_first=batch_first).to(DT).eval()
    time_dim = 1 if batch_first else 0
    x = _randn(2, 7, 3) if batch_first else _randn(7, 2, 3)
    full_output, full_state = layer(x)
    state, outputs = None, []
    for chunk in x.split([1, 3, 1, 2], dim=time_dim):
        out, state = layer(chunk, state)
        outputs.append(out)
    assert_close(torch.cat(outputs, dim=time_dim), full_output)
    for e, g in zip(_flat(full_state), _flat(state), strict=True):
        assert_close(g, e)


def test_zoneout_in_training_stepping_equals_one_full_pass_with_the_same_draws():
    layer = ZoneoutLSTM(3, 4, zoneout_h=0.5, zoneout_c=0.5).to(DT).train()
    x = _randn(6, 2, 3)
    torch.manual_seed(27)
    full_output, full_state = layer(x)
    torch.manual_seed(27)  # one layer, one direction: the masks are drawn in the same order step by step
    state, outputs = None, []
    for x_t in x.split(1):
        out, state = layer(x_t, state)
        outputs.append(out)
    assert_close(torch.cat(outputs), full_output)
    for e, g in zip(full_state, state, strict=True):
        assert_close(g, e)


CELL_CASES = {
    "layernorm_lstm": (lambda: LayerNormLSTMCell(3, 2), True, None),
    "layernorm_gru": (lambda: LayerNormGRUCell(3, 2), False, None),
    "peephole": (lambda: PeepholeLSTMCell(3, 2), True, None),
    "coupled": (lambda: PeepholeLSTMCell(3, 2, coupled=True), True, None),
    "zoneout_eval": (lambda: ZoneoutLSTMCell(3, 2, zoneout_h=0.3, zoneout_c=0.4).eval(), True, None),
    "zoneout_train": (lambda: ZoneoutLSTMCell(3, 2, zoneout_h=0.3, zoneout_c=0.4).train(), True, 0),
}


@pytest.mark.parametrize("name", list(CELL_CASES))
def test_gradcheck_cells(name):
    torch.manual_seed(28)
    make, has_c, seed = CELL_CASES[name]
    cell = make().to(DT)
    x, h = _randn(2, 3, grad=True), _randn(2, 2, grad=True)
    if has_c:
        c = _randn(2, 2, grad=True)
        assert _gradcheck_module(_TupleState(cell), x, h, c, seed=seed)
    else:
        assert _gradcheck_module(cell, x, h, seed=seed)


class _TupleState(nn.Module):
    """cell(x, (h, c)) as a function of three tensors, for gradcheck."""

    def __init__(self, cell):
        super().__init__()
        self.cell = cell

    def forward(self, x, h, c):
        return self.cell(x, (h, c))


@pytest.mark.parametrize(
    ("make", "seed"),
    [
        pytest.param(lambda: PeepholeLSTM(2, 2, 2, bidirectional=True), None, id="peephole_lstm_stack"),
        pytest.param(lambda: LayerNormGRU(2, 2), None, id="layernorm_gru"),
        pytest.param(
            lambda: VariationalDropoutLSTM(2, 2, dropout_input=0.3, dropout_state=0.3), 0, id="variational"
        ),
    ],
)
def test_gradcheck_layers(make, seed):
    torch.manual_seed(29)
    layer = make().to(DT).train()
    assert _gradcheck_module(layer, _randn(3, 1, 2, grad=True), seed=seed)


# ------------------------------------------------------------------------------------------------
# the door: errors name the argument; the registry; docstring examples
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda: LayerNormLSTM(0, 4), ValueError, "input_size"),
        (lambda: LayerNormGRU(3, -1), ValueError, "hidden_size"),
        (lambda: PeepholeLSTM(3, 4, num_layers=0), ValueError, "num_layers"),
        (lambda: PeepholeLSTM(3, 4, coupled=1), TypeError, "coupled"),
        (lambda: ZoneoutLSTM(3, 4, dropout=1.5), ValueError, "dropout"),
        (lambda: ZoneoutLSTM(3, 4, zoneout_h=-0.1), ValueError, "zoneout_h"),
        (lambda: ZoneoutLSTMCell(3, 4, zoneout_c=2), ValueError, "zoneout_c"),
        (lambda: LayerNormLSTM(3, 4, batch_first="yes"), TypeError, "batch_first"),
        (lambda: VariationalDropoutLSTM(3, 4, dropout_state=1.0), ValueError, r"dropout_state .*\[0, 1\)"),
        (lambda: VariationalDropoutLSTM(3, 4, dropout_input=-1), ValueError, "dropout_input"),
    ],
)
def test_constructor_errors_name_the_argument(make, error, match):
    with pytest.raises(error, match=match):
        make()


@pytest.mark.parametrize("name", ["layernorm_lstm", "layernorm_gru", "variational_lstm_eval"])
def test_forward_errors_name_the_argument(name):
    layer = LAYERS[name]()
    is_lstm = name != "layernorm_gru"
    with pytest.raises(TypeError, match="PackedSequence"):
        layer(pack_sequence([torch.zeros(3, 3), torch.zeros(2, 3)]))
    with pytest.raises(ValueError, match=r"input_size=3, got 5"):
        layer(torch.zeros(4, 2, 5))
    with pytest.raises(ValueError, match="3-D"):
        layer(torch.zeros(4, 2, 1, 3))
    with pytest.raises(ValueError, match="T = 0"):
        layer(torch.zeros(0, 2, 3))
    bad = torch.zeros(1, 2, 4)  # needs (L*D, B, H) = (2, 2, 4)
    with pytest.raises(ValueError, match=r"h_0 must have shape \(2, 2, 4\)"):
        layer(torch.zeros(4, 2, 3), (bad, torch.zeros(2, 2, 4)) if is_lstm else bad)
    if is_lstm:
        with pytest.raises(TypeError, match=r"tuple \(h_0, c_0\)"):
            layer(torch.zeros(4, 2, 3), torch.zeros(2, 2, 4))


def test_cell_errors_name_the_argument():
    cell = LayerNormLSTMCell(3, 4)
    with pytest.raises(ValueError, match="input_size = 3"):
        cell(torch.zeros(2, 5))
    with pytest.raises(ValueError, match=r"c must have shape \(2, 4\)"):
        cell(torch.zeros(2, 3), (torch.zeros(2, 4), torch.zeros(2, 5)))
    with pytest.raises(TypeError, match=r"tuple \(h, c\)"):
        cell(torch.zeros(2, 3), torch.zeros(2, 4))
    h = LayerNormGRUCell(3, 4)(torch.zeros(3))  # unbatched works
    assert h.shape == (4,)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_registry_builds_working_layers(name):
    torch.manual_seed(30)
    layer = VARIANTS[name](3, 4)
    output, _ = layer(torch.randn(5, 2, 3))
    assert output.shape[-1] == 4 and torch.isfinite(output).all()
