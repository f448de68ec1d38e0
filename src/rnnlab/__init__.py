"""rnnlab: RNN, LSTM, GRU and attention from first principles, on PyTorch.

``import rnnlab.nn as rnn`` gives drop-ins for torch.nn's recurrent layers plus attention and the variants
torch.nn lacks; :mod:`rnnlab.tasks` trains ready models on real data.
"""

__version__ = "0.1.0"
