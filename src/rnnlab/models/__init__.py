"""Task architectures, built only from :mod:`rnnlab.nn` layers.

* :mod:`~rnnlab.models.classifier`: embedding -> (bi)RNN / LSTM / GRU -> pooling -> linear.
"""

from rnnlab.models.classifier import ENCODERS, POOLINGS, ClassifierConfig, RecurrentClassifier

__all__ = ["ClassifierConfig", "RecurrentClassifier", "ENCODERS", "POOLINGS"]
