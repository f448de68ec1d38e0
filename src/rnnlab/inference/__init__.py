"""Using trained runs: :class:`Predictor` loads a classifier's checkpoint alone and labels texts;
:func:`greedy_decode` and :func:`beam_search` decode with a :class:`rnnlab.models.Seq2Seq`.

``Predictor.from_checkpoint("runs/main").predict(["这个东西很好用"])``
"""

from rnnlab.inference.decoding import Decoded, beam_search, greedy_decode
from rnnlab.inference.predictor import Predictor, encode_texts, resolve_checkpoint

__all__ = ["Predictor", "encode_texts", "resolve_checkpoint", "Decoded", "greedy_decode", "beam_search"]
