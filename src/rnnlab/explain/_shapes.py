"""``shapes(module, input, hx=None)``: every shape a recurrent layer takes and returns, found by running it.

The shapes in the table are never computed from a formula: the parameters' shapes are read from the module,
the expected state shapes are the states the layer returns when run on zeros without one (a layer returns
``h_n`` in exactly the shape it expects for ``h0``), and the returned shapes are those of the real outputs.
Only the *names* of the dimensions come from the layout the README's legend describes (``T``, ``B``,
``H_in``, ``H``, ``P``, ``D*L`` ...), and each name's value is checked against the real size it labels.

When the layer rejects a shape, its own error (a RuntimeError or ValueError) is caught and turned into one
sentence that names the dimension and what it should be, by comparing the given shape with the expected one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

__all__ = ["Dim", "Row", "ShapeError", "ShapeTable", "shapes"]

# What each legend name means, as the error sentences and the table's legend say it.
MEANING = {
    "T": "T = time steps",
    "B": "B = batch",
    "H_in": "H_in = input_size",
    "H": "H = hidden_size",
    "P": "P = proj_size",
    "D*L": "D*L = num_layers * directions",
    "D*H": "D*H = directions * hidden_size",
    "D*P": "D*P = directions * proj_size",
    "3*H": "3*H = the three GRU gates stacked",
    "4*H": "4*H = the four LSTM gates stacked",
}
_GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}


class ShapeError(ValueError):
    """A tensor of the wrong shape, said in one sentence: which tensor, which dimension, what it should be."""

    def __init__(self, message: str, argument: str, dimension: int | None = None):
        super().__init__(message)
        self.argument = argument
        self.dimension = dimension


@dataclass(frozen=True)
class Dim:
    """One dimension: its legend name (``"D*L"``) and its real size."""

    name: str
    size: int
    expected: int | None = None  # what the legend name's value is; equal to ``size`` unless rnnlab has a bug

    def __str__(self) -> str:
        if not self.name:
            return str(self.size)
        if self.expected is not None and self.expected != self.size:
            return f"{self.size} (not {self.name}={self.expected}!)"
        return f"{self.name}={self.size}"


@dataclass(frozen=True)
class Row:
    """A named tensor and its dimensions."""

    name: str
    dims: tuple[Dim, ...]

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(d.size for d in self.dims)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.dims)

    def __str__(self) -> str:
        inner = ", ".join(str(d) for d in self.dims)
        return f"({inner},)" if len(self.dims) == 1 else f"({inner})"


@dataclass
class ShapeTable:
    """What :func:`shapes` returns; ``print(table)`` shows it. Rows are looked up with :meth:`row`."""

    title: str
    legend: list[tuple[str, int, str]]  # (name, value, where it comes from)
    parameters: list[Row]
    expects: list[Row]
    returns: list[Row]
    notes: list[str] = field(default_factory=list)

    def row(self, name: str) -> Row:
        for row in (*self.parameters, *self.expects, *self.returns):
            if row.name == name:
                return row
        raise KeyError(f"no row named {name!r}")

    def __str__(self) -> str:
        width = max(len(r.name) for r in (*self.parameters, *self.expects, *self.returns)) + 4
        lines = [self.title, ""]
        lines += [f"  {name:<5} = {value:<4} {source}" for name, value, source in self.legend]
        for heading, rows in (
            ("parameters", self.parameters),
            ("expects", self.expects),
            ("returns", self.returns),
        ):
            lines += ["", heading]
            lines += [f"  {r.name:<{width}}{r}" for r in rows]
        if self.notes:
            lines += [""] + [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    __repr__ = __str__


@dataclass(frozen=True)
class _Spec:
    """The constructor arguments that name dimensions, read from a rnnlab.nn or torch.nn module."""

    kind: str  # "LSTM", "GRU" or "RNN"
    is_cell: bool
    input_size: int
    hidden_size: int
    proj_size: int = 0
    num_layers: int = 1
    directions: int = 1
    batch_first: bool = False

    @property
    def out(self) -> str:
        """Name of the last dimension of h: ``P`` with a projection, else ``H``."""
        return "P" if self.proj_size else "H"


def _spec(module: nn.Module) -> _Spec:
    if hasattr(module, "mode") and hasattr(module, "num_layers"):
        kind = "RNN" if str(module.mode).startswith("RNN") else str(module.mode)
        if kind in _GATES:
            return _Spec(
                kind,
                False,
                module.input_size,
                module.hidden_size,
                getattr(module, "proj_size", 0),
                module.num_layers,
                2 if module.bidirectional else 1,
                module.batch_first,
            )
    weight = getattr(module, "weight_ih", None)
    if isinstance(weight, Tensor) and hasattr(module, "hidden_size"):
        kinds = {gates: kind for kind, gates in _GATES.items()}
        kind = kinds.get(weight.shape[0] // module.hidden_size)
        if kind is not None:
            return _Spec(kind, True, module.input_size, module.hidden_size)
    raise TypeError(
        "shapes: module must be an RNN, LSTM or GRU layer or one of their cells (rnnlab.nn or torch.nn), "
        f"got {type(module).__name__}"
    )


def _values(spec: _Spec, time: int | None, batch: int | None) -> dict[str, int]:
    """The value of every legend name for this module and input."""
    h, p, d = spec.hidden_size, spec.proj_size or spec.hidden_size, spec.directions
    values = {"H_in": spec.input_size, "H": h, "P": p, "D*L": d * spec.num_layers, "D*H": d * h, "D*P": d * p}
    values.update({"3*H": 3 * h, "4*H": 4 * h})
    if time is not None:
        values["T"] = time
    if batch is not None:
        values["B"] = batch
    return values


def _gates_name(spec: _Spec) -> str:
    return {4: "4*H", 3: "3*H", 1: "H"}[_GATES[spec.kind]]


def _parameter_names(spec: _Spec, name: str) -> tuple[str, ...]:
    """Legend names of a parameter's dimensions, from torch.nn's naming (``weight_ih_l1_reverse``)."""
    found = re.fullmatch(r"(weight|bias)_(ih|hh|hr)(?:_l(\d+))?(?:_reverse)?", name)
    if found is None:
        return ()
    kind, which, layer = found.group(1), found.group(2), int(found.group(3) or 0)
    gates = _gates_name(spec)
    if kind == "bias":
        return (gates,)
    if which == "hr":
        return ("P", "H")
    if which == "hh":
        return (gates, "H" if spec.is_cell else spec.out)
    return (gates, "H_in" if layer == 0 else f"D*{spec.out}")


def _input_names(spec: _Spec, ndim: int) -> tuple[str, ...]:
    if spec.is_cell:
        return ("B", "H_in") if ndim == 2 else ("H_in",)
    if ndim == 2:  # one unbatched sequence; batch_first does not apply
        return ("T", "H_in")
    return ("B", "T", "H_in") if spec.batch_first else ("T", "B", "H_in")


def _output_names(spec: _Spec, ndim: int) -> tuple[str, ...]:
    return _input_names(spec, ndim)[:-1] + (f"D*{spec.out}",)


def _state_names(spec: _Spec, batched: bool, last: str) -> tuple[str, ...]:
    if spec.is_cell:
        return ("B", last) if batched else (last,)
    return ("D*L", "B", last) if batched else ("D*L", last)


def _row(name: str, shape: Sequence[int], names: Sequence[str], values: dict[str, int]) -> Row:
    names = tuple(names) if len(names) == len(shape) else ("",) * len(shape)
    return Row(name, tuple(Dim(n, int(s), values.get(n)) for n, s in zip(names, shape, strict=True)))


def _as_shape(value: Tensor | Sequence[int], argument: str) -> tuple[int, ...]:
    if isinstance(value, Tensor):
        return tuple(value.shape)
    if isinstance(value, Sequence) and all(isinstance(v, int) and v >= 0 for v in value):
        return tuple(value)
    raise TypeError(f"shapes: {argument} must be a Tensor or a shape (a sequence of sizes), got {value!r}")


def _zeros(module: nn.Module, shape: tuple[int, ...]) -> Tensor:
    like = next(module.parameters(), None)
    return torch.zeros(shape) if like is None else torch.zeros(shape, dtype=like.dtype, device=like.device)


def _mismatch(argument: str, given: tuple[int, ...], want: Row, time: int | None = None) -> ShapeError | None:
    """One sentence: the first dimension where ``given`` differs from the expected row (None if none does)."""
    if len(given) != len(want.dims):
        return ShapeError(
            f"{argument} has {len(given)} dimensions {given}, expected {len(want.dims)}: {want}", argument
        )
    for i, (got, dim) in enumerate(zip(given, want.dims, strict=True)):
        if got != dim.size:
            meaning = MEANING.get(dim.name, dim.name)
            sentence = f"{argument} has {got} in dimension {i} ({meaning}), expected {dim.size}"
            if dim.name == "B" and got == time:
                # The first study note's mistake: the number of time steps where the batch goes.
                sentence += (
                    f": {time} is the input's T (time steps), but {argument} holds one state per sequence, "
                    "not one per step"
                )
            return ShapeError(sentence, argument, i)
    return None


def _call(module: nn.Module, x: Tensor, hx):
    with torch.no_grad():
        return module(x) if hx is None else module(x, hx)


def _split(spec: _Spec, result) -> tuple[Tensor | None, list[tuple[str, Tensor]]]:
    """(output, [(state name, tensor)]) from what a layer or cell returned."""
    if spec.is_cell:
        states = list(result) if isinstance(result, tuple) else [result]
        return None, list(zip(("h'", "c'")[: len(states)], states, strict=True))
    output, state = result
    states = list(state) if isinstance(state, tuple) else [state]
    return output, list(zip(("h_n", "c_n")[: len(states)], states, strict=True))


def shapes(
    module: nn.Module, input: Tensor | Sequence[int], hx: Tensor | Sequence | None = None
) -> ShapeTable:
    """Every parameter, expected input and state, and returned tensor of ``module``, with its shape.

    Args:
        module: an RNN, LSTM or GRU layer or cell, from rnnlab.nn or torch.nn.
        input: a tensor or just its shape, e.g. ``(4, 2, 5)``; the layer runs on zeros of that shape.
        hx: the initial state as it would be passed to the module (a tensor, or ``(h0, c0)`` for an LSTM),
            as tensors or shapes; None runs without one.

    Returns:
        A :class:`ShapeTable`; ``print`` it. Each dimension is named with the README's legend letters.

    Raises:
        ShapeError: ``input`` or ``hx`` has a shape the module rejects; the message names the dimension and
            what it should be, e.g. ``h0 has 1 in dimension 0 (D*L = num_layers * directions), expected 2``.

    Example:
        >>> import rnnlab.nn as rnn
        >>> table = shapes(rnn.GRU(5, 6, num_layers=2), (4, 2, 5))
        >>> print(table.row("input"), table.row("h_n"))
        (T=4, B=2, H_in=5) (D*L=2, B=2, H=6)
        >>> shapes(rnn.GRU(5, 6, num_layers=2), (4, 2, 5), (1, 2, 6))
        Traceback (most recent call last):
        ...
        rnnlab.explain._shapes.ShapeError: h0 has 1 in dimension 0 (D*L = num_layers * directions), expected 2
    """
    spec = _spec(module)
    in_shape = _as_shape(input, "input")
    x = _zeros(module, in_shape)
    state_names = ("hx", "cx") if spec.is_cell else ("h0", "c0")
    given: list[tuple[int, ...]] = []
    if hx is not None:
        parts = list(hx) if isinstance(hx, (tuple, list)) and not _is_shape(hx) else [hx]
        if len(parts) != (2 if spec.kind == "LSTM" else 1):
            want = "(h0, c0)" if spec.kind == "LSTM" else "one tensor h0"
            raise ShapeError(f"hx must be {want} for {spec.kind}, got {len(parts)} tensors", "hx")
        given = [_as_shape(p, name) for p, name in zip(parts, state_names, strict=False)]
    # 1. Run without a state: the input is checked alone, and the states returned are the shapes expected.
    try:
        reference = _call(module, x, None)
    except (RuntimeError, ValueError) as err:
        raise _input_error(spec, in_shape, err) from err
    batched = x.dim() == (2 if spec.is_cell else 3)
    batch_dim = 0 if spec.is_cell or spec.batch_first else 1
    time = None if spec.is_cell else in_shape[1 if spec.batch_first and batched else 0]
    values = _values(spec, time, in_shape[batch_dim] if batched else None)
    _, ref_states = _split(spec, reference)
    last = {"h_n": spec.out, "c_n": "H", "h'": "H", "c'": "H"}
    expects = [_row("input", in_shape, _input_names(spec, x.dim()), values)]
    expects += [
        _row(state_names[i], tuple(t.shape), _state_names(spec, batched, last[name]), values)
        for i, (name, t) in enumerate(ref_states)
    ]
    # 2. Run with the state given: the returned shapes, or the layer's error translated.
    result = reference
    if given:
        try:
            states = [_zeros(module, shape) for shape in given]
            result = _call(module, x, tuple(states) if len(states) > 1 else states[0])
        except (RuntimeError, ValueError) as err:
            for shape, want in zip(given, expects[1:], strict=True):
                if (error := _mismatch(want.name, shape, want, time)) is not None:
                    raise error from err
            raise ShapeError(f"the layer rejected the state: {err}", "hx") from err
    output, states = _split(spec, result)
    returns = (
        []
        if output is None
        else [_row("output", tuple(output.shape), _output_names(spec, output.dim()), values)]
    )
    returns += [
        _row(name, tuple(t.shape), _state_names(spec, batched, last[name]), values) for name, t in states
    ]
    parameters = [
        _row(name, tuple(p.shape), _parameter_names(spec, name), values)
        for name, p in module.named_parameters()
    ]
    return ShapeTable(
        title=f"{type(module).__name__}({module.extra_repr()})",
        legend=_legend(spec, values, batched),
        parameters=parameters,
        expects=expects,
        returns=returns,
        notes=_notes(spec, batched, expects[1:]),
    )


def _is_shape(value) -> bool:
    return isinstance(value, (tuple, list)) and all(isinstance(v, int) for v in value)


def _input_error(spec: _Spec, shape: tuple[int, ...], err: Exception) -> ShapeError:
    allowed = (1, 2) if spec.is_cell else (2, 3)
    if len(shape) not in allowed:
        batched, single = _input_names(spec, allowed[1]), _input_names(spec, allowed[0])
        message = (
            f"input has {len(shape)} dimensions {shape}, expected {allowed[1]} ({', '.join(batched)}) "
            f"or {allowed[0]} for one unbatched {'sample' if spec.is_cell else 'sequence'} "
            f"({', '.join(single)})"
        )
        return ShapeError(message, "input")
    if shape[-1] != spec.input_size:
        last = len(shape) - 1
        message = f"input has {shape[-1]} in dimension {last} ({MEANING['H_in']}), expected {spec.input_size}"
        return ShapeError(message, "input", last)
    return ShapeError(f"the layer rejected an input of shape {shape}: {err}", "input")


def _legend(spec: _Spec, values: dict[str, int], batched: bool) -> list[tuple[str, int, str]]:
    legend = []
    if not spec.is_cell:
        where = "dimension 1" if spec.batch_first and batched else "dimension 0"
        legend.append(("T", values["T"], f"time steps (the input's {where})"))
    if "B" in values:
        where = "dimension 0" if spec.is_cell or spec.batch_first else "dimension 1"
        legend.append(("B", values["B"], f"batch (the input's {where})"))
    legend += [("H_in", spec.input_size, "input_size"), ("H", spec.hidden_size, "hidden_size")]
    if spec.proj_size:
        legend.append(("P", spec.proj_size, "proj_size"))
    if not spec.is_cell:
        legend.append(("D", spec.directions, "directions (2 if bidirectional)"))
        legend.append(("L", spec.num_layers, "num_layers"))
    return legend


def _notes(spec: _Spec, batched: bool, states: list[Row]) -> list[str]:
    if spec.is_cell:
        return ["a cell takes one time step: its input has no T dimension"]
    notes = []
    if batched and not spec.batch_first:
        notes.append(
            "batch_first=False: the input is (T, B, H_in), time first; batch_first=True: (B, T, H_in)"
        )
    if batched:
        layouts = " and ".join(f"{r.name} ({', '.join(r.names)})" for r in states)
        notes.append(f"{layouts}: one state per layer and direction for each sequence; no T dimension")
    else:
        notes.append("unbatched input (T, H_in): one sequence, so the states lose their B dimension too")
    return notes
