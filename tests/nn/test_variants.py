"""Tests for rnnlab.nn.variants: layer-normalised, peephole and coupled-gate cells, every-step cell states,
and the registry.

Hand-written equations where a variant has no torch.nn reference; parity with torch.nn where it reduces
to it (layer norm replaced by the identity, zero peepholes); the defining property (normalised
pre-activations, invariance to rescaled weights, i = 1 - f); every-step cell states equal to the module's
own call and to an LSTMCell loop. The shared loop and the door: test_variant_base.py; the regularizers:
test_regularizers.py.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.nn import functional as TF
from torch.nn.utils.rnn import pack_sequence
from torch.testing import assert_close
from variant_testing import DT, GRID, flat, identity_layer_norms, randn, rnnlab_recurrent

from rnnlab.nn.variants import (
    VARIANTS,
    LayerNormGRUCell,
    LayerNormLSTMCell,
    PeepholeLSTMCell,
    lstm_with_cell_states,
)

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
    x, h, c = randn(2, 3), randn(2, 4), randn(2, 4)

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
    identity_layer_norms(cell)
    ref = nn.LSTMCell(3, 4).to(DT)
    with torch.no_grad():
        ref.weight_ih.copy_(cell.weight_ih)
        ref.weight_hh.copy_(cell.weight_hh)
        ref.bias_ih.copy_(cell.gate_bias)
        ref.bias_hh.zero_()
    x, hx = randn(2, 3), (randn(2, 4), randn(2, 4))
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
    x = randn(16, 6) * 3 + 1
    hx = (randn(16, 8) * 2, randn(16, 8)) if cell_cls is LayerNormLSTMCell else randn(16, 8) * 2
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
    x = randn(2, 3)
    hx = (randn(2, 4), randn(2, 4)) if cell_cls is LayerNormLSTMCell else randn(2, 4)
    before = flat(cell(x, hx))
    scaled = copy.deepcopy(cell)
    with torch.no_grad():
        scaled.weight_ih.mul_(7.0)
        scaled.weight_hh.mul_(0.2)
    for b, a in zip(before, flat(scaled(x, hx)), strict=True):
        assert_close(a, b, atol=1e-9, rtol=1e-9)
    identity_layer_norms(cell)
    identity_layer_norms(scaled)
    assert not torch.allclose(flat(cell(x, hx))[0], flat(scaled(x, hx))[0], atol=1e-2)


def test_layernorm_gru_cell_follows_its_equations():
    torch.manual_seed(7)
    cell = LayerNormGRUCell(3, 4).to(DT)
    _perturb_layer_norms(cell)
    x, h = randn(2, 3), randn(2, 4)

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
    x, hx = randn(2, 3), (randn(2, 4), randn(2, 4))
    for e, g in zip(ref(x, hx), cell(x, hx), strict=True):
        assert_close(g, e)


def test_peephole_cell_follows_gers_equations():
    torch.manual_seed(11)
    cell = PeepholeLSTMCell(3, 4).to(DT)
    x, h, c = randn(2, 3), randn(2, 4), randn(2, 4)
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
    x, hx = randn(2, 3), (randn(2, 4), randn(2, 4))
    for e, g in zip(free(x, hx), coupled(x, hx), strict=True):
        assert_close(g, e)
    with torch.no_grad():
        free.weight_ci.add_(0.5)  # any other input gate gives other numbers
    assert not torch.allclose(free(x, hx)[1], coupled(x, hx)[1])


# ------------------------------------------------------------------------------------------------
# every-step cell states
# ------------------------------------------------------------------------------------------------


def _lstm_modules():
    makers = [("torch", nn.LSTM)]
    recurrent = rnnlab_recurrent()
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
    x = randn(B, T, 3) if batch_first else randn(T, B, 3)
    for hx in (None, (randn(num_layers * D, B, P), randn(num_layers * D, B, 4))):
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
    x = randn(6, 2, 3)
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


@pytest.mark.parametrize("name", list(VARIANTS))
def test_registry_builds_working_layers(name):
    torch.manual_seed(30)
    layer = VARIANTS[name](3, 4)
    output, _ = layer(torch.randn(5, 2, 3))
    assert output.shape[-1] == 4 and torch.isfinite(output).all()
