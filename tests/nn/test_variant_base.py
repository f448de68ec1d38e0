"""Tests for rnnlab.nn._variant_base, the machinery every variant shares, through the public variants.

The one time loop reproduces torch.nn wherever a variant reduces to it (layer norm replaced by the
identity, zero peepholes, zero zoneout, variational dropout in eval), over layers, directions, layouts and
unbatched input; dropout falls only between layers; stepping with carried state equals one full pass;
gradcheck in float64 for every cell and a few layers; errors at the door name the argument.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_sequence
from torch.testing import assert_close
from variant_testing import (
    DT,
    GRID,
    TupleState,
    copy_torch_weights_into_cells,
    flat,
    gradcheck_module,
    identity_layer_norms,
    randn,
    zero_peepholes,
)

from rnnlab.nn.regularizers import VariationalDropoutLSTM, ZoneoutLSTM, ZoneoutLSTMCell
from rnnlab.nn.variants import (
    LayerNormGRU,
    LayerNormGRUCell,
    LayerNormLSTM,
    LayerNormLSTMCell,
    PeepholeLSTM,
    PeepholeLSTMCell,
)

# ------------------------------------------------------------------------------------------------
# builders: variants set up to reduce to torch.nn
# ------------------------------------------------------------------------------------------------


def _ln_gru_stack_from_torch(ref):
    stack = LayerNormGRU(
        ref.input_size,
        ref.hidden_size,
        ref.num_layers,
        batch_first=ref.batch_first,
        bidirectional=ref.bidirectional,
    ).to(DT)
    identity_layer_norms(stack)
    copy_torch_weights_into_cells(ref, stack)
    return stack


def _peephole_stack_from_torch(ref):
    stack = PeepholeLSTM(
        ref.input_size,
        ref.hidden_size,
        ref.num_layers,
        batch_first=ref.batch_first,
        bidirectional=ref.bidirectional,
    ).to(DT)
    zero_peepholes(stack)
    copy_torch_weights_into_cells(ref, stack)
    return stack


def _zoneout_stack_from_torch(ref):
    stack = ZoneoutLSTM(
        ref.input_size,
        ref.hidden_size,
        ref.num_layers,
        batch_first=ref.batch_first,
        bidirectional=ref.bidirectional,
    ).to(DT)
    copy_torch_weights_into_cells(ref, stack)
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
    x = randn(B, T, 3) if batch_first else randn(T, B, 3)
    h0 = randn(num_layers * D, B, 4)
    hx = (h0, randn(num_layers * D, B, 4)) if ref_cls is nn.LSTM else h0
    for state in (None, hx):
        x_ref, x_ours = x.clone().requires_grad_(), x.clone().requires_grad_()
        expected, got = flat(ref(x_ref, state)), flat(ours(x_ours, state))
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
    x = randn(5, 3)  # (T, H_in)
    hx = (randn(4, 4), randn(4, 4)) if ref_cls is nn.LSTM else randn(4, 4)  # (L*D, H)
    for e, g in zip(flat(ref(x, hx)), flat(ours(x, hx)), strict=True):
        assert_close(g, e)


def test_inter_layer_dropout_only_between_layers_and_only_in_training():
    torch.manual_seed(2)
    x = torch.randn(6, 3, 4)
    stack = PeepholeLSTM(4, 8, num_layers=2, dropout=0.5)
    stack.eval()
    assert torch.equal(stack(x)[0], stack(x)[0])
    stack.train()
    assert not torch.equal(stack(x)[0], stack(x)[0])
    with pytest.warns(UserWarning, match="non-zero dropout expects num_layers greater than 1"):  # as torch.nn
        one = PeepholeLSTM(4, 8, num_layers=1, dropout=0.5).train()
    assert torch.equal(one(x)[0], one(x)[0])


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
    x = randn(2, 7, 3) if batch_first else randn(7, 2, 3)
    full_output, full_state = layer(x)
    state, outputs = None, []
    for chunk in x.split([1, 3, 1, 2], dim=time_dim):
        out, state = layer(chunk, state)
        outputs.append(out)
    assert_close(torch.cat(outputs, dim=time_dim), full_output)
    for e, g in zip(flat(full_state), flat(state), strict=True):
        assert_close(g, e)


def test_zoneout_in_training_stepping_equals_one_full_pass_with_the_same_draws():
    layer = ZoneoutLSTM(3, 4, zoneout_h=0.5, zoneout_c=0.5).to(DT).train()
    x = randn(6, 2, 3)
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
    x, h = randn(2, 3, grad=True), randn(2, 2, grad=True)
    if has_c:
        c = randn(2, 2, grad=True)
        assert gradcheck_module(TupleState(cell), x, h, c, seed=seed)
    else:
        assert gradcheck_module(cell, x, h, seed=seed)


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
    assert gradcheck_module(layer, randn(3, 1, 2, grad=True), seed=seed)


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
    with pytest.raises(RuntimeError, match="^Expected sequence length to be larger than 0 in RNN$"):
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
