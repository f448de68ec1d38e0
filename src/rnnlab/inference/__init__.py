"""Using trained runs: :class:`Predictor` loads a classifier's checkpoint alone and labels texts;
:func:`greedy_decode` and :func:`beam_search` decode with a :class:`rnnlab.models.Seq2Seq`.

``Predictor.from_checkpoint("runs/main").predict(["这个东西很好用"])``
"""

from rnnlab.inference.batch_sampler import BatchSampler
from rnnlab.inference.decoding import Decoded, beam_search, greedy_decode
from rnnlab.inference.forecaster import Forecaster
from rnnlab.inference.predictor import (
    UNKNOWN_SHARE_WARNING,
    Predictor,
    encode_texts,
    resolve_checkpoint,
    unknown_shares,
)
from rnnlab.inference.sampler import Sampler

__all__ = [
    "Sampler",
    "BatchSampler",
    "Forecaster",
    "Predictor",
    "UNKNOWN_SHARE_WARNING",
    "encode_texts",
    "resolve_checkpoint",
    "unknown_shares",
    "Decoded",
    "greedy_decode",
    "beam_search",
]
