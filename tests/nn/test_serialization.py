"""Whole models saved with torch.save reload under weights-only torch.load, as torch.nn's do.

The program a user writes: build a model of rnnlab layers, ``torch.save(model, path)``, later
``torch.load(path)`` (weights_only=True, torch's default) after allow-listing its own classes; the loaded
model gives the same outputs. rnnlab.nn allow-lists its own classes when imported.
"""

from __future__ import annotations

import pickle

import pytest
import torch
from torch import nn
from torch.testing import assert_close

import rnnlab.nn as rnn


class Tagger(nn.Module):
    """A user's model made of rnnlab's torch.nn drop-ins, cells and attention."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = rnn.LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True, proj_size=2)
        self.gru = rnn.GRU(4, 5, batch_first=True)
        self.rnn = rnn.RNN(5, 4, nonlinearity="relu", batch_first=True)
        self.cell = rnn.LSTMCell(4, 4)
        self.attention = rnn.AdditiveAttention(4, 4, 6)
        self.multihead = rnn.MultiHeadAttention(4, 2)
        self.pool = rnn.AttentionPooling(4, 3)
        self.out = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = self.lstm(x)  # (B, T, 4)
        h, _ = self.gru(h)  # (B, T, 5)
        h, _ = self.rnn(h)  # (B, T, 4)
        s, _ = self.cell(h[:, -1])  # (B, 4)
        context, _ = self.attention(s, h)  # (B, 4)
        mixed, _ = self.multihead(h, h)  # (B, T, 4)
        pooled, _ = self.pool(mixed)  # (B, 4)
        return self.out(context + pooled)  # (B, 2)


class VariantStack(nn.Module):
    """A user's model made of every variant layer (and WeightDrop around one of them)."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            [
                rnn.LayerNormLSTM(3, 4, bidirectional=True),
                rnn.LayerNormGRU(8, 4, num_layers=2, dropout=0.1),
                rnn.PeepholeLSTM(4, 4, coupled=True),
                rnn.ZoneoutLSTM(4, 4, zoneout_h=0.1, zoneout_c=0.2),
                rnn.VariationalDropoutLSTM(4, 4, dropout_input=0.2, dropout_state=0.2),
                rnn.WeightDrop(rnn.LSTM(4, 4), ["weight_hh_l0"], dropout=0.3),
            ]
        )
        self.min_gru = rnn.MinGRU(4, 4, batch_first=False)
        self.min_lstm = rnn.MinLSTM(4, 4, num_layers=2, batch_first=False, mode="sequential")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x, _ = layer(x)  # (T, B, ·)
        x, _ = self.min_gru(x)
        x, _ = self.min_lstm(x)
        return x


def _round_trip(model: nn.Module, path, user_classes=()) -> nn.Module:
    torch.save(model, path)
    with torch.serialization.safe_globals(list(user_classes)):
        return torch.load(path, weights_only=True)


@pytest.mark.parametrize("use_fused", [True, False])
def test_a_model_of_drop_ins_cells_and_attention_reloads_weights_only(tmp_path, use_fused):
    torch.manual_seed(0)
    model = Tagger().eval()
    for m in model.modules():
        if isinstance(m, rnn.RNNBase):
            m.use_fused = use_fused
    x = torch.randn(2, 6, 3)
    expected = model(x)  # a forward first: nothing it leaves on the modules may block the pickle
    loaded = _round_trip(model, tmp_path / "tagger.pt", [Tagger])
    assert type(loaded) is Tagger and type(loaded.lstm) is rnn.LSTM
    assert all(m.use_fused is use_fused for m in loaded.modules() if isinstance(m, rnn.RNNBase))
    assert_close(loaded(x), expected, rtol=0, atol=0)
    for (name, p), (name_loaded, q) in zip(model.named_parameters(), loaded.named_parameters(), strict=True):
        assert name == name_loaded and torch.equal(p, q)


def test_a_model_of_variants_reloads_weights_only(tmp_path):
    torch.manual_seed(1)
    model = VariantStack()
    x = torch.randn(5, 2, 3)
    model.train()
    model(x).sum().backward()  # a training step first, as a program would before saving
    model.eval()
    expected = model(x)
    loaded = _round_trip(model, tmp_path / "variants.pt", [VariantStack]).eval()
    assert [type(m) for m in loaded.layers] == [type(m) for m in model.layers]
    assert_close(loaded(x), expected, rtol=0, atol=0)
    torch.manual_seed(2)  # the regularizers still draw their masks in training, the same way
    a = model.train()(x)
    torch.manual_seed(2)
    assert_close(loaded.train()(x), a, rtol=0, atol=0)


def test_the_users_own_class_is_the_only_one_to_allow_list(tmp_path):
    path = tmp_path / "tagger.pt"
    torch.save(Tagger(), path)
    with pytest.raises(pickle.UnpicklingError, match="Unsupported global") as refused:
        torch.load(path)  # weights_only=True by default
    assert f"{__name__}.Tagger" in str(refused.value)  # torch names the first class it refuses
    assert "rnnlab.nn" not in str(refused.value).split("Unsupported global")[1].split("\n")[0]


def _every_class():
    return {
        "RNN": lambda: rnn.RNN(3, 4, 2, bidirectional=True),
        "LSTM": lambda: rnn.LSTM(3, 4, proj_size=2),
        "GRU": lambda: rnn.GRU(3, 4, batch_first=True),
        "RNNCell": lambda: rnn.RNNCell(3, 4, nonlinearity="relu"),
        "LSTMCell": lambda: rnn.LSTMCell(3, 4),
        "GRUCell": lambda: rnn.GRUCell(3, 4, bias=False),
        "LayerNormLSTMCell": lambda: rnn.LayerNormLSTMCell(3, 4),
        "LayerNormGRUCell": lambda: rnn.LayerNormGRUCell(3, 4),
        "PeepholeLSTMCell": lambda: rnn.PeepholeLSTMCell(3, 4),
        "ZoneoutLSTMCell": lambda: rnn.ZoneoutLSTMCell(3, 4, zoneout_h=0.5),
        "MinGRUCell": lambda: rnn.MinGRUCell(3, 4),
        "MinLSTMCell": lambda: rnn.MinLSTMCell(3, 4),
        "LayerNormLSTM": lambda: rnn.LayerNormLSTM(3, 4),
        "MinGRU": lambda: rnn.MinGRU(3, 4),
    }


@pytest.mark.parametrize("name", list(_every_class()))
def test_every_layer_and_cell_reloads_on_its_own(tmp_path, name):
    torch.manual_seed(3)
    module = _every_class()[name]().eval()
    x = torch.randn(2, 3) if "Cell" in name else torch.randn(5, 2, 3)
    loaded = _round_trip(module, tmp_path / f"{name}.pt")
    assert type(loaded) is type(module)
    assert repr(loaded) == repr(module)
    expected, got = module(x), loaded(x)
    expected, got = (expected, got) if isinstance(expected, tuple) else ((expected,), (got,))
    flat = [t for part in expected for t in (part if isinstance(part, tuple) else (part,))]
    flat_got = [t for part in got for t in (part if isinstance(part, tuple) else (part,))]
    for e, g in zip(flat, flat_got, strict=True):
        assert_close(g, e, rtol=0, atol=0)
