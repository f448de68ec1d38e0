"""Using trained runs: :class:`Predictor` loads a checkpoint alone and labels texts.

``Predictor.from_checkpoint("runs/main").predict(["这个东西很好用"])``
"""

from rnnlab.inference.predictor import Predictor, encode_texts, resolve_checkpoint

__all__ = ["Predictor", "encode_texts", "resolve_checkpoint"]
