"""rnnlab.nn: recurrent layers and attention, used exactly like torch.nn.

``import rnnlab.nn as rnn``, then ``rnn.LSTM`` wherever you would use ``torch.nn.LSTM``.
Attention modules share one contract: ``context, weights = attn(query, keys, values=None, mask=None)``
with a bool mask where **True means attend** (see :mod:`rnnlab.nn.attention`).

Layout: ``functional`` (one step of each cell) and ``cells``; ``_loop`` (the readable time loop) and
``fused`` (the fast path), both run per layer and direction by ``recurrent``; ``_stack`` (layers,
directions, inter-layer dropout: the one stack every recurrent layer runs on) and ``_checks`` (the
argument checks at every door); ``_variant_base``, ``variants``, ``regularizers`` and ``scan`` (what
torch.nn lacks); ``attention`` and ``masking``.

Whole models saved with ``torch.save(model, path)`` reload with ``torch.load(path)`` (weights-only) once
the program has allow-listed its own classes: every class here is registered with torch's safe globals.
"""

import torch
from torch import nn as _torch_nn

from rnnlab.nn import functional
from rnnlab.nn.attention import (
    ATTENTION,
    AdditiveAttention,
    AttentionPooling,
    Attn,
    ConcatAttention,
    DotAttention,
    GeneralAttention,
    MultiHeadAttention,
    ScaledDotProductAttention,
    build_attention,
)
from rnnlab.nn.cells import GRUCell, LSTMCell, RNNCell, RNNCellBase
from rnnlab.nn.cho_gru import ChoGRU, ChoGRUCell
from rnnlab.nn.masking import lengths_to_mask, masked_softmax
from rnnlab.nn.recurrent import GRU, LSTM, RNN, RNNBase
from rnnlab.nn.regularizers import VariationalDropoutLSTM, WeightDrop, ZoneoutLSTM, ZoneoutLSTMCell
from rnnlab.nn.scan import MinGRU, MinGRUCell, MinLSTM, MinLSTMCell, parallel_scan_log
from rnnlab.nn.variants import (
    VARIANTS,
    LayerNormGRU,
    LayerNormGRUCell,
    LayerNormLSTM,
    LayerNormLSTMCell,
    PeepholeLSTM,
    PeepholeLSTMCell,
    lstm_with_cell_states,
)

__all__ = [
    "functional",
    # torch.nn drop-ins
    "RNNBase",
    "RNN",
    "LSTM",
    "GRU",
    "RNNCellBase",
    "RNNCell",
    "LSTMCell",
    "GRUCell",
    # attention
    "AdditiveAttention",
    "DotAttention",
    "GeneralAttention",
    "ConcatAttention",
    "ScaledDotProductAttention",
    "MultiHeadAttention",
    "AttentionPooling",
    "Attn",
    "ATTENTION",
    "build_attention",
    # masking
    "lengths_to_mask",
    "masked_softmax",
    # what torch.nn lacks
    "LayerNormLSTMCell",
    "LayerNormLSTM",
    "LayerNormGRUCell",
    "LayerNormGRU",
    "ChoGRUCell",
    "ChoGRU",
    "ZoneoutLSTMCell",
    "ZoneoutLSTM",
    "PeepholeLSTMCell",
    "PeepholeLSTM",
    "VariationalDropoutLSTM",
    "WeightDrop",
    "lstm_with_cell_states",
    "VARIANTS",
    "MinGRUCell",
    "MinLSTMCell",
    "MinGRU",
    "MinLSTM",
    "parallel_scan_log",
]

# Weights-only loading (torch.load's default since torch 2.6) refuses every class it was not told is safe.
# This is rnnlab.nn's one import-time side effect: allow-list its layers, cells, variants and attention
# modules, and the torch.nn building blocks they contain (ModuleList, Linear, LayerNorm), so that a whole
# model saved with torch.save reloads under weights_only=True as one made of torch.nn layers does. These
# are plain module classes (every class in __all__): unpickling one only restores its attributes.
torch.serialization.add_safe_globals(
    [globals()[name] for name in __all__ if isinstance(globals()[name], type)]
    + [_torch_nn.ModuleList, _torch_nn.Linear, _torch_nn.LayerNorm]
)
