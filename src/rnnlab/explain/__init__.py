"""For learners: the shapes a recurrent layer takes and returns, and one time step worked out in numbers.

* :func:`shapes` ``(module, input, hx=None)``: a printable table of every parameter, expected input and state,
  and returned tensor, found by running the module on zeros; a wrong shape becomes one sentence
  (:class:`ShapeError`).
* :func:`step` ``("LSTM")``: one time step of a tiny layer as the equations of :mod:`rnnlab.nn.functional`
  with the numbers substituted, checked against the layer's own output.
* :func:`packed` ``("GRU", [3, 1, 2])``: which steps of a packed batch are computed, and the proof that
  padding never is.

``--lang zh`` (or a ``zh`` locale) prints them in Chinese: :func:`translate` rewrites the words of the English
text and never its numbers.

On the command line (``rnnlab shapes ...``, ``rnnlab explain ...``, or ``python -m rnnlab.explain``) through
:func:`add_subcommands` / :func:`main`. Importing this package does not import torch: the functions above are
loaded on first use, so that building the command line's parser stays fast.
"""

from __future__ import annotations

from importlib import import_module

from rnnlab.explain._commands import add_subcommands, main
from rnnlab.explain._zh import translate

__all__ = [
    "shapes",
    "ShapeTable",
    "ShapeError",
    "step",
    "StepExplanation",
    "packed",
    "PackedExplanation",
    "add_subcommands",
    "main",
    "translate",
]

# Public name -> the private module that defines it (imported, with torch, on first access).
_LAZY = {
    "shapes": "_shapes",
    "ShapeTable": "_shapes",
    "ShapeError": "_shapes",
    "step": "_step",
    "StepExplanation": "_step",
    "packed": "_packed",
    "PackedExplanation": "_packed",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(f"rnnlab.explain.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'rnnlab.explain' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
