"""Task architectures, built only from :mod:`rnnlab.nn` layers.

* :mod:`~rnnlab.models.classifier`: embedding -> (bi)RNN / LSTM / GRU -> pooling -> linear.
* :mod:`~rnnlab.models.seq2seq`: encoder -> decoder with attention (any of :mod:`rnnlab.nn.attention`'s).
"""

from rnnlab.models.classifier import ENCODERS, POOLINGS, ClassifierConfig, RecurrentClassifier
from rnnlab.models.seq2seq import ATTENTION_CHOICES, Seq2Seq, Seq2SeqConfig, sequence_loss

__all__ = [
    "ClassifierConfig",
    "RecurrentClassifier",
    "ENCODERS",
    "POOLINGS",
    "Seq2SeqConfig",
    "Seq2Seq",
    "ATTENTION_CHOICES",
    "sequence_loss",
]
