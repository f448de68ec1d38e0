"""The one set of checks at the door (rnnlab.nn._checks), through every layer and cell class.

Constructor arguments: TypeError for a wrong type, ValueError for a bad value, in torch.nn's words, and
torch.nn's own classes raise the same where they check the argument. A zero-length sequence: torch's
RuntimeError, on both paths, in every input layout; a zero batch still runs.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import rnnlab.nn as rnn

# Every layer class and the keyword arguments it takes beyond (input_size, hidden_size).
LAYERS = {
    "RNN": {"num_layers", "bias", "batch_first", "dropout"},
    "LSTM": {"num_layers", "bias", "batch_first", "dropout"},
    "GRU": {"num_layers", "bias", "batch_first", "dropout"},
    "LayerNormLSTM": {"num_layers", "bias", "batch_first", "dropout"},
    "LayerNormGRU": {"num_layers", "bias", "batch_first", "dropout"},
    "PeepholeLSTM": {"num_layers", "bias", "batch_first", "dropout"},
    "ZoneoutLSTM": {"num_layers", "bias", "batch_first", "dropout"},
    "VariationalDropoutLSTM": {"num_layers", "bias", "batch_first"},
    "MinGRU": {"num_layers", "bias", "batch_first", "dropout"},
    "MinLSTM": {"num_layers", "bias", "batch_first", "dropout"},
}
CELLS = [
    "RNNCell",
    "LSTMCell",
    "GRUCell",
    "LayerNormLSTMCell",
    "LayerNormGRUCell",
    "PeepholeLSTMCell",
    "ZoneoutLSTMCell",
    "MinGRUCell",
    "MinLSTMCell",
]
TORCH_LAYERS = {"RNN", "LSTM", "GRU"}
TORCH_CELLS = {"RNNCell", "LSTMCell", "GRUCell"}

DROPOUT_MESSAGE = (
    "dropout should be a number in range [0, 1] representing the probability of an element being zeroed"
)
# (argument, value, expected type, expected message)
SIZE_CASES = [
    ("hidden_size", "4", TypeError, "hidden_size should be of type int, got: str"),
    ("hidden_size", 4.0, TypeError, "hidden_size should be of type int, got: float"),
    ("input_size", "10", TypeError, "input_size should be of type int, got: str"),
    ("input_size", 0, ValueError, "input_size must be greater than zero"),
    ("hidden_size", 0, ValueError, "hidden_size must be greater than zero"),
    ("hidden_size", -1, ValueError, "hidden_size must be greater than zero"),
    ("bias", 1, TypeError, "bias should be of type bool, got: int"),
]
LAYER_CASES = [
    ("num_layers", 0, ValueError, "num_layers must be greater than zero"),
    ("num_layers", "2", TypeError, "num_layers should be of type int, got: str"),
    ("num_layers", 2.0, TypeError, "num_layers should be of type int, got: float"),
    ("batch_first", "yes", TypeError, "batch_first should be of type bool, got: str"),
    ("dropout", 1.5, ValueError, DROPOUT_MESSAGE),
    ("dropout", "0.5", ValueError, DROPOUT_MESSAGE),
    ("dropout", True, ValueError, DROPOUT_MESSAGE),
]


def _build(module, name, arg, value):
    kwargs = {"input_size": 10, "hidden_size": 4, arg: value}
    return getattr(module, name)(**kwargs)


def _layer_cases(names=tuple(LAYERS)):
    for name in names:
        accepted = LAYERS[name]
        for case in SIZE_CASES + LAYER_CASES:
            if case[0] in accepted | {"input_size", "hidden_size"}:
                yield pytest.param(name, *case, id=f"{name}-{case[0]}={case[1]!r}")


# torch.nn's cells run with sizes of 0 and take any truthy bias (its own tests build RNNCell(10, 20, "relu")),
# so rnnlab's drop-in cells do too; they refuse a wrong type and a negative size.
TORCH_CELL_CASES = [case for case in SIZE_CASES if case[1] != 0 and case[0] != "bias" and case[1] != -1] + [
    ("hidden_size", -1, ValueError, "hidden_size must be zero or greater, got -1"),
    ("input_size", -2, ValueError, "input_size must be zero or greater, got -2"),
]


def _cell_cases(names=tuple(CELLS)):
    for name in names:
        for case in TORCH_CELL_CASES if name in TORCH_CELLS else SIZE_CASES:
            yield pytest.param(name, *case, id=f"{name}-{case[0]}={case[1]!r}")


@pytest.mark.parametrize(("name", "arg", "value", "error", "message"), [*_layer_cases(), *_cell_cases()])
def test_every_class_raises_torch_types_and_messages(name, arg, value, error, message):
    with pytest.raises(error) as got:
        _build(rnn, name, arg, value)
    assert str(got.value) == message


@pytest.mark.parametrize(
    ("name", "arg", "value", "error", "message"), list(_layer_cases(sorted(TORCH_LAYERS)))
)
def test_torch_layers_raise_the_same(name, arg, value, error, message):
    with pytest.raises(Exception) as expected:
        _build(nn, name, arg, value)
    assert expected.type is error
    if arg != "num_layers":  # torch does not check num_layers' type: it fails later, with other words
        assert str(expected.value) == message


@pytest.mark.parametrize(("name", "arg", "value", "error", "message"), list(_cell_cases(sorted(TORCH_CELLS))))
def test_torch_cells_raise_the_same_type(name, arg, value, error, message):
    """torch.nn's cells check nothing themselves: a wrong size type fails inside torch.empty with a
    TypeError (the same type, other words); a negative size fails there with a RuntimeError."""
    with pytest.raises(TypeError if error is TypeError else RuntimeError):
        _build(nn, name, arg, value)


def test_variants_check_bidirectional_and_their_own_arguments():
    cases = [
        (lambda: rnn.LayerNormLSTM(3, 4, bidirectional=1), TypeError, "bidirectional should be of type bool"),
        (lambda: rnn.PeepholeLSTM(3, 4, coupled=1), TypeError, "coupled should be of type bool, got: int"),
        (lambda: rnn.ZoneoutLSTM(3, 4, zoneout_h="a"), TypeError, "zoneout_h should be a number, got: str"),
        (lambda: rnn.ZoneoutLSTMCell(3, 4, zoneout_c=2), ValueError, r"zoneout_c .* \[0, 1\], got 2"),
        (lambda: rnn.VariationalDropoutLSTM(3, 4, dropout_state=1.0), ValueError, r"\[0, 1\), got 1.0"),
        (lambda: rnn.WeightDrop(nn.LSTM(3, 4), dropout=-0.5), ValueError, r"dropout .* got -0.5"),
        (lambda: rnn.MinGRU(3, 4, mode="fast"), ValueError, r"mode should be one of .*, got 'fast'"),
        (lambda: rnn.RNN(3, 4, nonlinearity="sigmoid"), ValueError, "Unknown nonlinearity 'sigmoid'"),
    ]
    for make, error, match in cases:
        with pytest.raises(error, match=match):
            make()


@pytest.mark.parametrize("name", [n for n, accepted in LAYERS.items() if "dropout" in accepted])
def test_dropout_with_one_layer_warns_like_torch(name):
    with pytest.warns(UserWarning, match="non-zero dropout expects num_layers greater than 1"):
        getattr(rnn, name)(3, 4, dropout=0.2)


# ------------------------------------------------------------------------------------------------
# zero-length sequences: torch's RuntimeError at the door; a zero batch runs
# ------------------------------------------------------------------------------------------------

SEQUENCE_MESSAGE = "Expected sequence length to be larger than 0 in RNN"
EMPTY_INPUTS = [  # (batch_first, shape), T = 0 in each
    (False, (0, 2, 3)),
    (True, (2, 0, 3)),
    (False, (0, 3)),
    (True, (0, 3)),
    (False, (0, 0, 3)),
]


@pytest.mark.parametrize("use_fused", [True, False])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize(("batch_first", "shape"), EMPTY_INPUTS)
@pytest.mark.parametrize("name", sorted(TORCH_LAYERS))
def test_zero_length_sequence_raises_torchs_error(name, batch_first, shape, bidirectional, use_fused):
    kwargs = {"num_layers": 2, "batch_first": batch_first, "bidirectional": bidirectional}
    ref, ours = getattr(nn, name)(3, 4, **kwargs), getattr(rnn, name)(3, 4, **kwargs)
    ours.use_fused = use_fused
    with pytest.raises(RuntimeError) as expected:
        ref(torch.zeros(*shape))
    with pytest.raises(RuntimeError) as got:
        ours(torch.zeros(*shape))
    assert str(expected.value) == SEQUENCE_MESSAGE
    assert str(got.value) == SEQUENCE_MESSAGE


@pytest.mark.parametrize("name", ["LayerNormLSTM", "LayerNormGRU", "PeepholeLSTM", "ZoneoutLSTM",
                                  "VariationalDropoutLSTM", "MinGRU", "MinLSTM"])  # fmt: skip
def test_zero_length_sequence_raises_torchs_error_in_the_variants(name):
    layer = getattr(rnn, name)(3, 4, batch_first=True)
    with pytest.raises(RuntimeError) as got:
        layer(torch.zeros(2, 0, 3))
    assert str(got.value) == SEQUENCE_MESSAGE


def test_the_state_is_checked_before_the_length_as_torch_does():
    x, hx = torch.zeros(0, 2, 3), (torch.zeros(1, 5, 4), torch.zeros(1, 5, 4))
    with pytest.raises(RuntimeError) as expected:
        nn.LSTM(3, 4)(x, hx)
    with pytest.raises(RuntimeError) as got:
        rnn.LSTM(3, 4)(x, hx)
    assert str(got.value) == str(expected.value) == "Expected hidden[0] size (1, 2, 4), got [1, 5, 4]"


@pytest.mark.parametrize("use_fused", [True, False])
@pytest.mark.parametrize("name", sorted(TORCH_LAYERS))
def test_zero_batch_runs_as_torch(name, use_fused):
    torch.manual_seed(0)
    ref = getattr(nn, name)(3, 4, bidirectional=True)
    torch.manual_seed(0)
    ours = getattr(rnn, name)(3, 4, bidirectional=True)
    ours.use_fused = use_fused
    x = torch.zeros(5, 0, 3, requires_grad=True)
    expected, got = ref(x), ours(x)
    assert got[0].shape == expected[0].shape == (5, 0, 8)
    got[0].sum().backward()  # no hard error in the backward either
