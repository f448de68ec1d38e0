"""``step("LSTM")``: one time step of a tiny layer, the equations of ``rnnlab/nn/functional.py`` in numbers.

Every number printed is computed here, in plain Python floats, from the layer's own weights: matrix-vector
products as sums of products, then the gate activations. Nothing comes from :mod:`rnnlab.nn.functional`, so
the last line, the comparison with the layer's own output, checks the layer against arithmetic a learner
can follow by hand.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

import rnnlab.nn as rnn

__all__ = ["StepExplanation", "step"]

TOLERANCE = 1e-5  # float32 layer against float64 arithmetic: agreement to ~1e-7 is expected
Vector = list[float]


@dataclass
class StepExplanation:
    """What :func:`step` returns; ``print`` it. The values are plain lists of floats, shape (H,)."""

    mode: str
    layer: nn.Module
    inputs: dict[str, Vector]  # x, h_prev (and c_prev for an LSTM)
    gates: dict[str, Vector]  # i, f, g, o | r, z, n | (none for RNN)
    h: Vector
    c: Vector | None
    layer_h: Vector  # the layer's own h_n
    layer_c: Vector | None
    max_difference: float
    lines: list[str] = field(repr=False, default_factory=list)

    @property
    def matches(self) -> bool:
        return self.max_difference <= TOLERANCE

    def __str__(self) -> str:
        return "\n".join(self.lines)


def _matvec(W: list[Vector], v: Vector) -> Vector:
    return [sum(w * x for w, x in zip(row, v, strict=True)) for row in W]


def _add(*vectors: Vector) -> Vector:
    return [sum(values) for values in zip(*vectors, strict=True)]


def _mul(a: Vector, b: Vector) -> Vector:
    return [x * y for x, y in zip(a, b, strict=True)]


def _sigmoid(v: Vector) -> Vector:
    return [1.0 / (1.0 + math.exp(-x)) for x in v]


def _tanh(v: Vector) -> Vector:
    return [math.tanh(x) for x in v]


def _relu(v: Vector) -> Vector:
    return [max(0.0, x) for x in v]


def vec(v: Vector) -> str:
    """A vector as printed: four decimals, signs aligned."""
    return "[" + ", ".join(f"{x: .4f}" for x in v) + "]"


def _mat(W: list[Vector]) -> str:
    return "[" + ", ".join(vec(row) for row in W) + "]"


class _Gates:
    """The stacked weights of one layer cut into torch.nn's gate blocks (rows k*H to (k+1)*H - 1)."""

    def __init__(self, layer: nn.Module, hidden_size: int):
        self.H = hidden_size
        self.W_ih = layer.weight_ih_l0.tolist()
        self.W_hh = layer.weight_hh_l0.tolist()
        self.b_ih = layer.bias_ih_l0.tolist()
        self.b_hh = layer.bias_hh_l0.tolist()

    def block(self, k: int) -> tuple[list[Vector], list[Vector], Vector, Vector]:
        rows = slice(k * self.H, (k + 1) * self.H)
        return self.W_ih[rows], self.W_hh[rows], self.b_ih[rows], self.b_hh[rows]

    def rows(self, k: int) -> str:
        return f"rows {k * self.H}-{(k + 1) * self.H - 1}"


def _gate(
    out: list[str], weights: _Gates, k: int, g: str, what: str, x: Vector, h_prev: Vector, activation: str
) -> Vector:
    """An ``activation(W_i? x + b_i? + W_h? h_prev + b_h?)`` gate, printed term by term; returns its value."""
    W_i, W_h, b_i, b_h = weights.block(k)
    Wx, Wh = _matvec(W_i, x), _matvec(W_h, h_prev)
    total = _add(Wx, b_i, Wh, b_h)
    value = _sigmoid(total) if activation == "sigmoid" else _tanh(total)
    w = len(f"W_h{g} h_prev")
    out += [
        f"{g} = {activation}(W_i{g} x + b_i{g} + W_h{g} h_prev + b_h{g})    {what}, {weights.rows(k)}",
        f"    {f'W_i{g}':<{w}} = {_mat(W_i)}",
        f"    {f'W_h{g}':<{w}} = {_mat(W_h)}",
        f"    {f'W_i{g} x':<{w}} = {vec(Wx)}",
        f"  + {f'b_i{g}':<{w}} = {vec(b_i)}",
        f"  + {f'W_h{g} h_prev':<{w}} = {vec(Wh)}",
        f"  + {f'b_h{g}':<{w}} = {vec(b_h)}",
        f"  = {'sum':<{w}} = {vec(total)}",
        f"  {g} = {activation}(sum) = {vec(value)}",
        "",
    ]
    return value


def _gru_candidate(out: list[str], weights: _Gates, x: Vector, h_prev: Vector, r: Vector) -> Vector:
    W_in, W_hn, b_in, b_hn = weights.block(2)
    Wx, Wh = _matvec(W_in, x), _matvec(W_hn, h_prev)
    inner = _add(Wh, b_hn)
    reset = _mul(r, inner)
    total = _add(Wx, b_in, reset)
    n = _tanh(total)
    w = len("r * (W_hn h_prev + b_hn)")
    out += [
        f"n = tanh(W_in x + b_in + r * (W_hn h_prev + b_hn))    candidate state, {weights.rows(2)}",
        f"    {'W_in':<{w}} = {_mat(W_in)}",
        f"    {'W_hn':<{w}} = {_mat(W_hn)}",
        f"    {'W_in x':<{w}} = {vec(Wx)}",
        f"  + {'b_in':<{w}} = {vec(b_in)}",
        f"    {'W_hn h_prev + b_hn':<{w}} = {vec(inner)}",
        f"  + {'r * (W_hn h_prev + b_hn)':<{w}} = {vec(reset)}",
        "      ^ the reset gate multiplies here, AFTER the product W_hn h_prev and its bias: torch.nn's GRU",
        "        (and cuDNN's). Cho et al. (2014) apply it before the product: W_hn (r * h_prev).",
        f"  = {'sum':<{w}} = {vec(total)}",
        f"  n = tanh(sum) = {vec(n)}",
        "",
    ]
    return n


def step(
    mode: str, input_size: int = 2, hidden_size: int = 3, seed: int = 0, nonlinearity: str = "tanh"
) -> StepExplanation:
    """One time step of ``rnnlab.nn.<mode>(input_size, hidden_size)`` worked out in numbers.

    The layer, ``x`` (H_in,), ``h_prev`` (H,) and ``c_prev`` (H,) are drawn from ``seed`` (the global random
    state is left as it was). The step is computed from the layer's weights, then compared with what the
    layer itself returns for the same inputs.

    Args:
        mode: ``"LSTM"``, ``"GRU"`` or ``"RNN"``.
        nonlinearity: ``"tanh"`` or ``"relu"``, for ``"RNN"`` only.
    """
    if mode not in ("LSTM", "GRU", "RNN"):
        raise ValueError(f"step: mode must be 'LSTM', 'GRU' or 'RNN', got {mode!r}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        kwargs = {"nonlinearity": nonlinearity} if mode == "RNN" else {}
        layer = getattr(rnn, mode)(input_size, hidden_size, **kwargs)
        x_t = torch.randn(1, 1, input_size)  # (T=1, B=1, H_in)
        h0 = torch.randn(1, 1, hidden_size)  # (D*L=1, B=1, H)
        c0 = torch.randn(1, 1, hidden_size) if mode == "LSTM" else None
    with torch.no_grad():
        _, state = layer(x_t, (h0, c0) if mode == "LSTM" else h0)
    layer_h, layer_c = (state[0], state[1]) if mode == "LSTM" else (state, None)

    x, h_prev = x_t[0, 0].tolist(), h0[0, 0].tolist()
    inputs = {"x": x, "h_prev": h_prev}
    weights = _Gates(layer, hidden_size)
    gates: dict[str, Vector] = {}
    c = None
    function = {"LSTM": "lstm", "GRU": "gru", "RNN": f"rnn_{nonlinearity}"}[mode]
    stacked = {"LSTM": "4*H", "GRU": "3*H", "RNN": "H"}[mode]
    order = "" if mode == "RNN" else f",\n  the gates stacked in the order {', '.join(_ORDER[mode])}"
    out = [
        f"{mode}: one time step of rnnlab.nn.{layer!r}, seed {seed} "
        f"(H_in = {input_size}, H = {hidden_size}, one sequence: B = 1)",
        f"The equations of rnnlab/nn/functional.py, {function}(), with the numbers substituted.",
        '"W x" is a matrix-vector product, "*" multiplies element by element.',
        f"The weights are the layer's own: weight_ih_l0 ({stacked}, H_in) and weight_hh_l0 ({stacked}, H)"
        f"{order}.",
        "",
        f"x      = {vec(x)}    (H_in = {input_size})",
        f"h_prev = {vec(h_prev)}    (H = {hidden_size})",
    ]
    if mode == "LSTM":
        c_prev = c0[0, 0].tolist()
        inputs["c_prev"] = c_prev
        out += [f"c_prev = {vec(c_prev)}    (H = {hidden_size})", ""]
        for k, (g, what, activation) in enumerate(_LSTM_GATES):
            gates[g] = _gate(out, weights, k, g, what, x, h_prev, activation)
        i, f, g, o = (gates[n] for n in "ifgo")
        c = _add(_mul(f, c_prev), _mul(i, g))
        tanh_c = _tanh(c)
        h = _mul(o, tanh_c)
        out += [
            "c = f * c_prev + i * g    the new cell state",
            f"    f * c_prev = {vec(f)} * {vec(c_prev)} = {vec(_mul(f, c_prev))}",
            f"  + i * g      = {vec(i)} * {vec(g)} = {vec(_mul(i, g))}",
            f"  c            = {vec(c)}",
            "",
            "h = o * tanh(c)    the new hidden state",
            f"    tanh(c)    = {vec(tanh_c)}",
            f"  h = o * tanh(c) = {vec(o)} * {vec(tanh_c)} = {vec(h)}",
        ]
    elif mode == "GRU":
        out.append("")
        gates["r"] = _gate(out, weights, 0, "r", "reset gate", x, h_prev, "sigmoid")
        gates["z"] = _gate(out, weights, 1, "z", "update gate", x, h_prev, "sigmoid")
        gates["n"] = n = _gru_candidate(out, weights, x, h_prev, gates["r"])
        z = gates["z"]
        h = _add(_mul([1.0 - v for v in z], n), _mul(z, h_prev))
        keep = [1.0 - v for v in z]
        out += [
            "h = (1 - z) * n + z * h_prev    the new hidden state",
            f"    (1 - z) * n = {vec(keep)} * {vec(n)} = {vec(_mul(keep, n))}",
            f"  + z * h_prev  = {vec(z)} * {vec(h_prev)} = {vec(_mul(z, h_prev))}",
            f"  h             = {vec(h)}",
        ]
    else:
        W_ih, W_hh, b_ih, b_hh = weights.block(0)
        Wx, Wh = _matvec(W_ih, x), _matvec(W_hh, h_prev)
        total = _add(Wx, b_ih, Wh, b_hh)
        h = _tanh(total) if nonlinearity == "tanh" else _relu(total)
        out += [
            "",
            f"h = {nonlinearity}(W_ih x + b_ih + W_hh h_prev + b_hh)    the new hidden state",
            f"    W_ih        = {_mat(W_ih)}",
            f"    W_hh        = {_mat(W_hh)}",
            f"    W_ih x      = {vec(Wx)}",
            f"  + b_ih        = {vec(b_ih)}",
            f"  + W_hh h_prev = {vec(Wh)}",
            f"  + b_hh        = {vec(b_hh)}",
            f"  = sum         = {vec(total)}",
            f"  h = {nonlinearity}(sum) = {vec(h)}",
        ]
    ours_h, ours_c = layer_h[0, 0].tolist(), None if layer_c is None else layer_c[0, 0].tolist()
    pairs = list(zip(h, ours_h, strict=True)) + ([] if c is None else list(zip(c, ours_c, strict=True)))
    difference = max(abs(a - b) for a, b in pairs)
    call = "(x, (h_prev, c_prev))" if mode == "LSTM" else "(x, h_prev)"
    out += ["", f"the layer itself, {layer!r}{call}:", f"  h_n = {vec(ours_h)}"]
    if ours_c is not None:
        out.append(f"  c_n = {vec(ours_c)}")
    verdict = "matches" if difference <= TOLERANCE else "DOES NOT match"
    compared = "h and c" if c is not None else "h"
    out.append(f"{verdict} the layer's output: max |difference| = {difference:.2e} (over {compared})")
    return StepExplanation(mode, layer, inputs, gates, h, c, ours_h, ours_c, difference, out)


_ORDER = {"LSTM": ("i", "f", "g", "o"), "GRU": ("r", "z", "n")}
_LSTM_GATES = (
    ("i", "input gate", "sigmoid"),
    ("f", "forget gate", "sigmoid"),
    ("g", "candidate cell state", "tanh"),
    ("o", "output gate", "sigmoid"),
)
