"""rnnlab.nn: recurrent layers and attention, used exactly like torch.nn.

``import rnnlab.nn as rnn`` then ``rnn.LSTM(...)`` where you would write ``torch.nn.LSTM(...)``.
"""

from rnnlab.nn import functional
from rnnlab.nn.cells import GRUCell, LSTMCell, RNNCell, RNNCellBase
from rnnlab.nn.recurrent import GRU, LSTM, RNN, RNNBase

__all__ = [
    "functional",
    "RNNBase",
    "RNN",
    "LSTM",
    "GRU",
    "RNNCellBase",
    "RNNCell",
    "LSTMCell",
    "GRUCell",
]
