"""The machinery every recurrent variant shares: checks at the door, the time walk of a cell's step
(run on the one layer stack of :mod:`rnnlab.nn._stack`), and the cell and layer base classes.

Cells are ``cell(x, state) -> state``; a cell's math lives in its ``_step``. Layers are used like
torch.nn's::

    output, h_n = layer(input, hx)             # GRU-like
    output, (h_n, c_n) = layer(input, (h_0, c_0))  # LSTM-like

with ``input`` (T, B, H_in), or (B, T, H_in) if ``batch_first``, or unbatched (T, H_in); ``output``
(T, B, D*H) laid out like the input; ``h_n``, ``c_n`` (L*D, B, H). A layer checks its arguments once, in
:func:`_prepare`, walks time with :func:`_run_steps` (never validating inside the loop; layers,
directions and inter-layer dropout are :func:`rnnlab.nn._stack.run_stack`'s) and hands the result back
in the caller's layout with :func:`_finish`. PackedSequence is not supported and raises a TypeError.

The public variants built on this live in :mod:`rnnlab.nn.variants` (layer norm, peepholes, every-step
cell states) and :mod:`rnnlab.nn.regularizers` (zoneout, variational dropout, weight drop).

Dimension legend (shared across rnnlab): ``B`` batch, ``T`` time, ``H_in`` input size, ``H`` hidden size,
``L`` layers, ``D`` directions (2 if bidirectional), ``P`` projection size.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from rnnlab.nn._checks import check_dropout, check_flag, check_sequence_length, check_size
from rnnlab.nn._stack import run_stack, zero_state

# Package-internal: the sibling modules import these; users import the variants from rnnlab.nn.
__all__ = [
    "State",
    "Step",
    "_hidden",
    "_prepare",
    "_to_caller_layout",
    "_finish",
    "_run_steps",
    "_uniform_",
    "_VariantCell",
    "_TorchLSTMParams",
    "_StackedRecurrent",
    "_CellStack",
]

State = Tensor | tuple[Tensor, Tensor]  # h (B, H), or (h, c) for LSTM-like cells
Step = Callable[[Tensor, State], State]


# ---------------------------------------------------------------------------------------------------
# Checks at the door, and the time walk of a cell's step
# ---------------------------------------------------------------------------------------------------


def _hidden(state: State) -> Tensor:
    return state[0] if isinstance(state, tuple) else state


def _prepare(
    owner: str,
    input: Tensor,
    hx: State | None,
    *,
    input_size: int,
    hidden_size: int,
    num_states: int,
    batch_first: bool,
    has_cell_state: bool,
    proj_size: int = 0,
) -> tuple[Tensor, tuple[Tensor, ...], bool]:
    """Check a layer's arguments and bring them to the stack's layout.

    Returns ``x`` (T, B, H_in), the initial state as a tuple ``(h_0,)`` or ``(h_0, c_0)`` with ``h_0``
    (L*D, B, P) and ``c_0`` (L*D, B, H) (``P = proj_size or H``), and whether the input was unbatched.
    """
    if isinstance(input, PackedSequence):
        raise TypeError(
            f"{owner} does not support PackedSequence input; pass a padded Tensor (T, B, H_in) "
            "(or (B, T, H_in) with batch_first=True)"
        )
    if not isinstance(input, Tensor):
        raise TypeError(f"{owner}: input must be a Tensor, got {type(input).__name__}")
    if input.dim() not in (2, 3):
        raise ValueError(
            f"{owner}: input must be 3-D (T, B, H_in) (or (B, T, H_in) with batch_first) or unbatched "
            f"2-D (T, H_in), got shape {tuple(input.shape)}"
        )
    if input.shape[-1] != input_size:
        raise ValueError(f"{owner}: input.size(-1) must equal input_size={input_size}, got {input.shape[-1]}")
    unbatched = input.dim() == 2
    if unbatched:
        x = input.unsqueeze(1)  # (T, H_in) -> (T, 1, H_in)
    elif batch_first:
        x = input.transpose(0, 1)  # (B, T, H_in) -> (T, B, H_in)
    else:
        x = input
    batch_size, h_size = x.shape[1], proj_size or hidden_size
    sizes = (h_size, hidden_size) if has_cell_state else (h_size,)
    if hx is None:
        check_sequence_length(x.shape[0])
        return x, zero_state(num_states, batch_size, sizes, x), unbatched
    if has_cell_state:
        if not (isinstance(hx, (tuple, list)) and len(hx) == 2):
            raise TypeError(f"{owner}: hx must be a tuple (h_0, c_0), got {type(hx).__name__}")
        parts = [("h_0", hx[0]), ("c_0", hx[1])]
    else:
        if not isinstance(hx, Tensor):
            raise TypeError(f"{owner}: hx must be a Tensor h_0, got {type(hx).__name__}")
        parts = [("h_0", hx)]
    checked = []
    for (name, t), size in zip(parts, sizes, strict=True):
        expected = (num_states, size) if unbatched else (num_states, batch_size, size)
        if tuple(t.shape) != expected:
            raise ValueError(f"{owner}: {name} must have shape {expected} (L*D, B, H), got {tuple(t.shape)}")
        checked.append(t.unsqueeze(1) if unbatched else t)  # (L*D, H) -> (L*D, 1, H)
    check_sequence_length(x.shape[0])  # after the state, as torch.nn
    return x, tuple(checked), unbatched


def _to_caller_layout(t: Tensor, batch_first: bool, unbatched: bool) -> Tensor:
    if unbatched:
        return t.squeeze(1)  # (T, 1, F) -> (T, F)
    return t.transpose(0, 1) if batch_first else t  # (T, B, F) -> (B, T, F)


def _finish(
    output: Tensor, final: tuple[Tensor, ...], *, batch_first: bool, unbatched: bool
) -> tuple[Tensor, State]:
    """``output`` (T, B, D*H) back to the caller's layout; the final state ``(h_n,)`` or ``(h_n, c_n)``,
    each (L*D, B, H), as the caller's ``h_n`` or ``(h_n, c_n)``."""
    if unbatched:
        final = tuple(s.squeeze(1) for s in final)  # (L*D, 1, H) -> (L*D, H)
    state = (final[0], final[1]) if len(final) == 2 else final[0]
    return _to_caller_layout(output, batch_first, unbatched), state


def _run_steps(
    steps: Sequence[Step],
    x: Tensor,
    hx: tuple[Tensor, ...],
    num_directions: int,
    dropout: float,
    training: bool,
    per_step: dict[tuple[int, int], list[State]] | None = None,
) -> tuple[Tensor, tuple[Tensor, ...]]:
    """The variants' direction runner on the one stack (:func:`rnnlab.nn._stack.run_stack`).

    ``steps[k]`` is the step of layer ``k // D``, direction ``k % D`` (torch.nn's order); it maps
    ``(x_t (B, H_in), state)`` to the next state, ``h`` or ``(h, c)``. ``x`` (T, B, H_in); ``hx`` as
    :func:`_prepare` returns it. Returns the last layer's output (T, B, D*H) and the final states (for
    direction 1, the state after reading ``x_0``, as torch.nn). If ``per_step`` is a dict, it receives
    every layer's and direction's state at each step, in time order, under ``(layer, direction)``.
    """
    has_cell_state = len(hx) == 2

    def run(layer: int, direction: int, x: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, tuple]:
        step = steps[layer * num_directions + direction]
        current: State = (state[0], state[1]) if has_cell_state else state[0]
        xs = x.unbind(0)  # T x (B, H_in); unbind, not x[t], keeps the backward linear in T
        seq: list[State] = [current] * len(xs)
        for t in reversed(range(len(xs))) if direction == 1 else range(len(xs)):
            current = step(xs[t], current)
            seq[t] = current
        if per_step is not None:
            per_step[(layer, direction)] = seq
        final = current if isinstance(current, tuple) else (current,)
        return torch.stack([_hidden(s) for s in seq]), final  # T x (B, H) -> (T, B, H)

    return run_stack(run, x, hx, len(steps) // num_directions, num_directions, dropout, training)


def _uniform_(params: Sequence[nn.Parameter | None], hidden_size: int) -> None:
    """torch.nn's recurrent init: U(-1/sqrt(H), 1/sqrt(H)), drawn in the order given."""
    stdv = 1.0 / math.sqrt(hidden_size)
    for p in params:
        if p is not None:
            nn.init.uniform_(p, -stdv, stdv)


# ---------------------------------------------------------------------------------------------------
# Cell and layer base classes
# ---------------------------------------------------------------------------------------------------


class _VariantCell(nn.Module):
    """Sizes and the checked ``forward(input, hx=None)`` shared by the cells; ``_step`` holds the math
    (the layers call ``_step`` directly: checks happen once at the layer's door, not at every step)."""

    _has_cell_state = True

    def __init__(self, input_size: int, hidden_size: int, bias: bool) -> None:
        super().__init__()
        check_size("input_size", input_size)
        check_size("hidden_size", hidden_size)
        check_flag("bias", bias)
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")

    def forward(self, input: Tensor, hx: State | None = None) -> State:
        """One step. ``input`` (B, H_in) or unbatched (H_in,); ``hx`` h (B, H), or (h, c) for the LSTM
        cells, zeros if None -> the next state, batched like the input."""
        owner = type(self).__name__
        if input.dim() not in (1, 2) or input.shape[-1] != self.input_size:
            raise ValueError(
                f"{owner}: input must be (B, H_in) or (H_in,) with H_in = input_size = {self.input_size}, "
                f"got shape {tuple(input.shape)}"
            )
        unbatched = input.dim() == 1
        x = input.unsqueeze(0) if unbatched else input  # (H_in,) -> (1, H_in)
        expected = (self.hidden_size,) if unbatched else (x.shape[0], self.hidden_size)
        if hx is None:
            zeros = x.new_zeros(x.shape[0], self.hidden_size)  # (B, H)
            state: State = (zeros, zeros) if self._has_cell_state else zeros
        else:
            if self._has_cell_state and not (isinstance(hx, (tuple, list)) and len(hx) == 2):
                raise TypeError(f"{owner}: hx must be a tuple (h, c), got {type(hx).__name__}")
            if not self._has_cell_state and not isinstance(hx, Tensor):
                raise TypeError(f"{owner}: hx must be a Tensor, got {type(hx).__name__}")
            named = list(zip(("h", "c"), hx, strict=True)) if self._has_cell_state else [("hx", hx)]
            for name, part in named:
                if tuple(part.shape) != expected:
                    raise ValueError(f"{owner}: {name} must have shape {expected}, got {tuple(part.shape)}")
            parts = [part.unsqueeze(0) if unbatched else part for _, part in named]  # (H,) -> (1, H)
            state = (parts[0], parts[1]) if self._has_cell_state else parts[0]
        state = self._step(x, state)
        if unbatched:  # (1, H) -> (H,)
            state = (
                (state[0].squeeze(0), state[1].squeeze(0)) if isinstance(state, tuple) else state.squeeze(0)
            )
        return state

    def _step(self, x: Tensor, state: State) -> State:
        raise NotImplementedError


class _TorchLSTMParams(_VariantCell):
    """An LSTM cell's parameters under torch.nn.LSTMCell's names, shapes, order and init."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool, num_gates: int = 4) -> None:
        super().__init__(input_size, hidden_size, bias)
        self.weight_ih = nn.Parameter(torch.empty(num_gates * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(num_gates * hidden_size, hidden_size))
        for name in ("bias_ih", "bias_hh"):
            self.register_parameter(
                name, nn.Parameter(torch.empty(num_gates * hidden_size)) if bias else None
            )

    def reset_parameters(self) -> None:
        _uniform_(list(self.parameters()), self.hidden_size)


class _StackedRecurrent(nn.Module):
    """torch.nn's layer interface over :func:`_run_steps`; subclasses say which step each
    (layer, direction) applies in ``_steps``."""

    _has_cell_state = True

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int,
        batch_first: bool,
        dropout: float,
        bidirectional: bool,
    ) -> None:
        super().__init__()
        check_dropout(dropout, num_layers)  # torch.nn.RNNBase's checks, in its order, then bidirectional
        check_flag("batch_first", batch_first)
        check_size("input_size", input_size)
        check_size("hidden_size", hidden_size)
        check_size("num_layers", num_layers)
        check_flag("bidirectional", bidirectional)
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.batch_first, self.dropout, self.bidirectional = batch_first, float(dropout), bidirectional
        self.num_directions = 2 if bidirectional else 1

    def _layer_input_size(self, layer: int) -> int:
        return self.input_size if layer == 0 else self.num_directions * self.hidden_size

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        for name, default in (
            ("num_layers", 1),
            ("batch_first", False),
            ("dropout", 0.0),
            ("bidirectional", False),
        ):
            if getattr(self, name) != default:
                s += f", {name}={getattr(self, name)}"
        return s

    def _steps(self, x: Tensor) -> list[Step]:
        raise NotImplementedError

    def forward(self, input: Tensor, hx: State | None = None) -> tuple[Tensor, State]:
        """``input`` (T, B, H_in) / batch_first (B, T, H_in) / unbatched (T, H_in); ``hx`` h_0 (L*D, B, H),
        or (h_0, c_0) for LSTM-like layers, zeros if None -> ``(output, h_n)`` or ``(output, (h_n, c_n))``."""
        x, hx, unbatched = _prepare(
            type(self).__name__,
            input,
            hx,
            input_size=self.input_size,
            hidden_size=self.hidden_size,
            num_states=self.num_layers * self.num_directions,
            batch_first=self.batch_first,
            has_cell_state=self._has_cell_state,
        )
        output, final = _run_steps(self._steps(x), x, hx, self.num_directions, self.dropout, self.training)
        return _finish(output, final, batch_first=self.batch_first, unbatched=unbatched)


class _CellStack(_StackedRecurrent):
    """A layer made of one cell per (layer, direction), ``cells[layer * D + direction]``, each
    ``_cell(n_in, hidden_size, bias, **cell_kwargs)``: torch.nn.LSTM's arguments (no ``proj_size``), and
    keywords beyond them (``coupled``, ``zoneout_h``, ...) go to every cell. A variant layer is then
    only its cell class."""

    _cell: type[_VariantCell]

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        **cell_kwargs,
    ) -> None:
        super().__init__(input_size, hidden_size, num_layers, batch_first, dropout, bidirectional)
        num_cells = num_layers * self.num_directions
        self.cells = nn.ModuleList(
            self._cell(self._layer_input_size(k // self.num_directions), hidden_size, bias, **cell_kwargs)
            for k in range(num_cells)
        )
        self._has_cell_state = self._cell._has_cell_state

    def reset_parameters(self) -> None:
        for cell in self.cells:
            cell.reset_parameters()

    def _steps(self, x: Tensor) -> list[Step]:
        return [cell._step for cell in self.cells]
