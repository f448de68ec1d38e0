"""Constructor argument checks shared by every rnnlab layer and cell, and the zero-length check at the door.

torch.nn's own types and messages are the contract: where torch.nn.RNNBase checks an argument, the
check here raises the same exception type with the same words (``LSTM(10, "4")`` and
``LayerNormLSTM(10, "4")`` both raise ``TypeError("hidden_size should be of type int, got: str")``).
Arguments torch.nn does not check (its cells check nothing; ``num_layers`` and ``proj_size`` get no
type check) follow the same rule: TypeError for a wrong type, ValueError for a bad value, in the same
words, so a wrong type is named instead of failing later inside ``torch.empty`` or ``range``. What
torch.nn accepts stays accepted: a cell of hidden size 0, ``bidirectional=1`` on the drop-in layers
(rnnlab's own layers want a bool there).

Like torch.nn, ``bool`` counts as an ``int`` here (``LSTM(True, 4)`` builds a layer of input size 1).
"""

from __future__ import annotations

import numbers
import warnings

__all__ = [
    "check_size",
    "check_flag",
    "check_dropout",
    "check_probability",
    "check_proj_size",
    "check_choice",
    "check_nonlinearity",
    "check_sequence_length",
]

_DROPOUT_MESSAGE = (
    "dropout should be a number in range [0, 1] representing the probability of an element being zeroed"
)
_SEQUENCE_LENGTH_MESSAGE = "Expected sequence length to be larger than 0 in RNN"


def check_size(name: str, value: object, *, allow_zero: bool = False) -> None:
    """A size (``input_size``, ``hidden_size``, ``num_layers``, ...): an int greater than zero, or at
    least zero with ``allow_zero`` (torch.nn's cells run with a hidden size of 0, so rnnlab's do too)."""
    if not isinstance(value, int):
        raise TypeError(f"{name} should be of type int, got: {type(value).__name__}")
    if allow_zero and value < 0:
        raise ValueError(f"{name} must be zero or greater, got {value}")
    if not allow_zero and value <= 0:
        raise ValueError(f"{name} must be greater than zero")


def check_flag(name: str, value: object) -> None:
    """A switch (``bias``, ``batch_first``, ...): a bool."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} should be of type bool, got: {type(value).__name__}")


def check_dropout(dropout: object, num_layers: object) -> None:
    """The dropout between stacked layers, as torch.nn.RNNBase checks it: ValueError for anything but a
    number in [0, 1] (a string included: torch's contract), and the same warning when there is no layer
    after which it could apply."""
    if not isinstance(dropout, numbers.Number) or isinstance(dropout, bool) or not 0 <= dropout <= 1:
        raise ValueError(_DROPOUT_MESSAGE)
    if dropout > 0 and num_layers == 1:
        warnings.warn(
            "dropout option adds dropout after all but last recurrent layer, so non-zero dropout expects "
            f"num_layers greater than 1, but got dropout={dropout} and num_layers={num_layers}",
            stacklevel=3,
        )


def check_probability(name: str, value: object, *, below_one: bool = False) -> None:
    """Any other probability (``zoneout_h``, ``dropout_state``, ...): a number in [0, 1], or [0, 1)."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise TypeError(f"{name} should be a number, got: {type(value).__name__}")
    if not (0 <= value < 1 if below_one else 0 <= value <= 1):
        interval = "[0, 1)" if below_one else "[0, 1]"
        raise ValueError(f"{name} should be a number in range {interval}, got {value!r}")


def check_proj_size(proj_size: object, hidden_size: int) -> None:
    """torch.nn.LSTM's ``proj_size``: an int in [0, hidden_size)."""
    if not isinstance(proj_size, int):
        raise TypeError(f"proj_size should be of type int, got: {type(proj_size).__name__}")
    if proj_size < 0:
        raise ValueError("proj_size should be a positive integer or zero to disable projections")
    if proj_size >= hidden_size:
        raise ValueError("proj_size has to be smaller than hidden_size")


def check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    """One of a few names (minGRU's ``mode``)."""
    if value not in choices:
        raise ValueError(f"{name} should be one of {choices}, got {value!r}")


def check_nonlinearity(nonlinearity: object) -> None:
    """RNN's ``nonlinearity``, with torch.nn.RNN's message."""
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")


def check_sequence_length(T: int) -> None:
    """torch.nn's error for an input with no time steps (any layout; a zero *batch* is fine)."""
    if T == 0:
        raise RuntimeError(_SEQUENCE_LENGTH_MESSAGE)
