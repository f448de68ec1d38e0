"""Training: the task-agnostic loop, atomic checkpoints, strict-JSON file writing and evaluation metrics.

``from rnnlab.training import Trainer, TrainerConfig, save_checkpoint, load_checkpoint, accuracy, ...``
"""

from rnnlab.training.checkpoint import (
    Checkpoint,
    CheckpointError,
    get_rng_state,
    load_checkpoint,
    save_checkpoint,
    set_rng_state,
)
from rnnlab.training.files import atomic_write_bytes, atomic_write_json, atomic_write_text, dumps_json
from rnnlab.training.metrics import (
    accuracy,
    bits_per_char,
    confusion_matrix,
    corpus_bleu,
    exact_match,
    f1_per_class,
    macro_f1,
    mae,
    mape,
    mase,
    perplexity,
    rmse,
    token_accuracy,
)
from rnnlab.training.trainer import FitResult, Trainer, TrainerConfig, lr_factor, write_metrics_csv

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "dumps_json",
    "get_rng_state",
    "load_checkpoint",
    "save_checkpoint",
    "set_rng_state",
    "accuracy",
    "bits_per_char",
    "confusion_matrix",
    "corpus_bleu",
    "exact_match",
    "f1_per_class",
    "macro_f1",
    "mae",
    "mape",
    "mase",
    "perplexity",
    "rmse",
    "token_accuracy",
    "FitResult",
    "Trainer",
    "TrainerConfig",
    "lr_factor",
    "write_metrics_csv",
]
