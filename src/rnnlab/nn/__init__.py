"""rnnlab.nn: recurrent layers and attention, used exactly like torch.nn.

``import rnnlab.nn as rnn``, then ``rnn.LSTM`` wherever you would use ``torch.nn.LSTM``.
Attention modules share one contract: ``context, weights = attn(query, keys, values=None, mask=None)``
with a bool mask where **True means attend** (see :mod:`rnnlab.nn.attention`).
"""

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
