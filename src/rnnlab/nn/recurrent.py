"""RNN, LSTM and GRU layers: drop-ins for torch.nn's, built from the one-step functions.

The pieces, from the inside out (Cell -> time -> direction -> stack, as in torch's custom_lstms):

* a **step** from :mod:`rnnlab.nn.functional` holds the gate math;
* :func:`rnnlab.nn._loop.run_direction_readable` walks one direction of one layer through time, forward
  or reversed, over a padded ``(T, B, H_in)`` tensor or a PackedSequence's data (where the batch shrinks
  at each step);
* :func:`rnnlab.nn.fused.run_direction` computes the same direction faster where
  :func:`rnnlab.nn.fused.supports` says it applies (chosen once per layer and direction);
* :func:`rnnlab.nn._stack.run_stack`, the one stack of every rnnlab layer, walks layers and directions,
  applies inter-layer dropout and stacks the final states;
* :class:`RNNBase` checks its arguments (:mod:`rnnlab.nn._checks`) and the input, and handles the input
  forms (batched, batch_first, unbatched, PackedSequence sorted or not).

RNN, LSTM and GRU differ only in their step and in the state they carry ((h,) or (h, c)).

Dimension legend: T time steps, B batch, H_in input size, H hidden size, P = proj_size or H,
D directions (1 or 2), L layers.

Shapes (as torch.nn):

* input ``(T, B, H_in)``, or ``(B, T, H_in)`` with ``batch_first=True``, or unbatched ``(T, H_in)``,
  or a :class:`~torch.nn.utils.rnn.PackedSequence`;
* ``h_0`` ``(D*L, B, P)`` (unbatched: ``(D*L, P)``), ``c_0`` ``(D*L, B, H)``, zeros by default;
* output ``(T, B, D*P)`` (batch_first: ``(B, T, D*P)``), with ``h_n``/``c_n`` shaped like ``h_0``/``c_0``;
  rows of ``h_n`` are ordered ``layer * D + direction``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import Parameter, init
from torch.nn.utils.rnn import PackedSequence

from rnnlab.nn import fused as _fused
from rnnlab.nn._checks import (
    check_dropout,
    check_flag,
    check_nonlinearity,
    check_proj_size,
    check_sequence_length,
    check_size,
)
from rnnlab.nn._loop import State, Weights, run_direction_readable
from rnnlab.nn._stack import param_suffix, run_stack, zero_state

__all__ = ["RNNBase", "RNN", "LSTM", "GRU"]


class RNNBase(nn.Module):
    """The stack of layers and directions shared by :class:`RNN`, :class:`LSTM` and :class:`GRU`.

    Mirrors ``torch.nn.RNNBase``: same arguments, validation, parameter names and order, initialisation,
    checks and error messages. ``use_fused`` (default True) lets the fast path of
    :mod:`rnnlab.nn.fused` run where it applies; set it to False to run the readable loop.
    """

    __constants__ = [
        "mode", "input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout",
        "bidirectional", "proj_size",
    ]  # fmt: skip

    def __init__(
        self,
        mode: str,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device=None,
        dtype=None,
    ) -> None:
        factory_kwargs = {"device": device, "dtype": dtype}
        super().__init__()
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        self.use_fused = True
        num_directions = 2 if bidirectional else 1

        # The same checks, in the same order and with the same messages as torch.nn.RNNBase.
        check_dropout(dropout, num_layers)
        check_flag("bias", bias)
        check_flag("batch_first", batch_first)
        check_size("input_size", input_size)
        check_size("hidden_size", hidden_size)
        check_size("num_layers", num_layers)
        check_proj_size(proj_size, hidden_size)
        gate_sizes = {
            "LSTM": 4 * hidden_size,
            "GRU": 3 * hidden_size,
            "RNN_TANH": hidden_size,
            "RNN_RELU": hidden_size,
        }
        if mode not in gate_sizes:
            raise ValueError("Unrecognized RNN mode: " + mode)
        gate_size = gate_sizes[mode]

        # Registration order (layer, direction, then w_ih, w_hh, b_ih, b_hh, w_hr) is part of the contract:
        # reset_parameters() draws from the RNG in this order, so a seed gives torch.nn's exact weights.
        real_hidden_size = proj_size if proj_size > 0 else hidden_size
        self._flat_weights_names: list[str] = []
        self._all_weights: list[list[str]] = []
        for layer in range(num_layers):
            for direction in range(num_directions):
                layer_input_size = input_size if layer == 0 else real_hidden_size * num_directions
                params = {
                    "weight_ih": torch.empty((gate_size, layer_input_size), **factory_kwargs),
                    "weight_hh": torch.empty((gate_size, real_hidden_size), **factory_kwargs),
                }
                if bias:
                    params["bias_ih"] = torch.empty(gate_size, **factory_kwargs)
                    params["bias_hh"] = torch.empty(gate_size, **factory_kwargs)
                if proj_size > 0:
                    params["weight_hr"] = torch.empty((proj_size, hidden_size), **factory_kwargs)
                names = []
                for base, tensor in params.items():
                    name = base + param_suffix(layer, direction)
                    setattr(self, name, Parameter(tensor))
                    names.append(name)
                self._flat_weights_names.extend(names)
                self._all_weights.append(names)
        self.reset_parameters()

    # -- torch.nn API surface ------------------------------------------------------------------------
    def reset_parameters(self) -> None:
        """Every weight and bias from U(-1/sqrt(H), 1/sqrt(H)), as torch.nn does."""
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for weight in self.parameters():
            init.uniform_(weight, -stdv, stdv)

    def flatten_parameters(self) -> None:
        """A no-op kept for compatibility: rnnlab needs no contiguous weight buffer (torch's is for cuDNN)."""

    @property
    def _flat_weights(self) -> list[Tensor | None]:
        # Looked up on every access, so torch.func.functional_call and re-assigned weights just work.
        return [getattr(self, name, None) for name in self._flat_weights_names]

    @property
    def all_weights(self) -> list[list[Parameter]]:
        return [[getattr(self, name) for name in names] for names in self._all_weights]

    def extra_repr(self) -> str:
        s = "{input_size}, {hidden_size}"
        if self.proj_size != 0:
            s += ", proj_size={proj_size}"
        if self.num_layers != 1:
            s += ", num_layers={num_layers}"
        if self.bias is not True:
            s += ", bias={bias}"
        if self.batch_first is not False:
            s += ", batch_first={batch_first}"
        if self.dropout != 0:
            s += ", dropout={dropout}"
        if self.bidirectional is not False:
            s += ", bidirectional={bidirectional}"
        return s.format(**self.__dict__)

    # -- checks (same types and messages as torch.nn) ------------------------------------------------
    def check_input(self, input: Tensor, batch_sizes: Tensor | None) -> None:
        weight_dtype = self.weight_ih_l0.dtype
        if input.dtype != weight_dtype and not torch.is_autocast_enabled(input.device.type):
            raise ValueError(
                f"RNN input dtype ({input.dtype}) does not match weight dtype ({weight_dtype}). "
                f"Convert input: input.to({weight_dtype}), or convert model: model.to({input.dtype})"
            )
        expected_input_dim = 2 if batch_sizes is not None else 3
        if input.dim() != expected_input_dim:
            raise RuntimeError(f"input must have {expected_input_dim} dimensions, got {input.dim()}")
        if self.input_size != input.size(-1):
            raise RuntimeError(
                "input.size(-1) must be equal to input_size. "
                f"Expected {self.input_size}, got {input.size(-1)}"
            )

    def get_expected_hidden_size(self, input: Tensor, batch_sizes: Tensor | None) -> tuple[int, int, int]:
        if batch_sizes is not None:
            mini_batch = int(batch_sizes[0])
        else:
            mini_batch = input.size(0) if self.batch_first else input.size(1)
        num_directions = 2 if self.bidirectional else 1
        size = self.proj_size if self.proj_size > 0 else self.hidden_size
        return (self.num_layers * num_directions, mini_batch, size)

    def check_hidden_size(
        self,
        hx: Tensor,
        expected_hidden_size: tuple[int, int, int],
        msg: str = "Expected hidden size {}, got {}",
    ) -> None:
        if hx.size() != expected_hidden_size:
            raise RuntimeError(msg.format(expected_hidden_size, list(hx.size())))

    def check_forward_args(self, input: Tensor, hidden: Tensor, batch_sizes: Tensor | None) -> None:
        self.check_input(input, batch_sizes)
        self.check_hidden_size(hidden, self.get_expected_hidden_size(input, batch_sizes))

    def permute_hidden(self, hx: Tensor, permutation: Tensor | None) -> Tensor:
        return hx if permutation is None else hx.index_select(1, permutation)

    # -- the computation -----------------------------------------------------------------------------
    def _layer_weights(self, layer: int, direction: int) -> Weights:
        """``(W_ih, W_hh, b_ih, b_hh[, W_hr])`` of one layer and direction, None where absent."""
        names = ["weight_ih", "weight_hh", "bias_ih", "bias_hh"] + (
            ["weight_hr"] if self.mode == "LSTM" else []
        )
        suffix = param_suffix(layer, direction)
        return tuple(getattr(self, name + suffix, None) for name in names)

    def _run_stack(self, x: Tensor, batch_sizes: list[int] | None, hx: State) -> tuple[Tensor, State]:
        """All layers and directions over time-major ``x``; ``hx`` tensors are ``(D*L, B, ·)``.

        The fast path is chosen once per layer and direction (where it applies and ``use_fused`` is set),
        else the readable loop runs.
        """

        cast = self._autocast_dtype(x)

        def run(layer: int, direction: int, x: Tensor, state: State) -> tuple[Tensor, State]:
            weights = self._layer_weights(layer, direction)
            if cast is not None:
                weights = tuple(None if w is None else w.to(cast) for w in weights)
            fast = self.use_fused and _fused.supports(self.mode, x, state, weights)
            runner = _fused.run_direction if fast else run_direction_readable
            return runner(self.mode, x, batch_sizes, state, weights, direction == 1)

        num_directions = 2 if self.bidirectional else 1
        if cast is None:
            return run_stack(run, x, hx, self.num_layers, num_directions, self.dropout, self.training)
        with torch.autocast("cpu", enabled=False):  # the whole layer in one dtype, as torch's autocast op
            x, hx = x.to(cast), tuple(h.to(cast) for h in hx)
            return run_stack(run, x, hx, self.num_layers, num_directions, self.dropout, self.training)

    def _autocast_dtype(self, x: Tensor) -> torch.dtype | None:
        """The dtype the whole layer runs in under CPU autocast as torch.nn's does, or None to run as is.

        torch's CPU autocast lists ``aten::lstm``, ``aten::rnn_tanh`` and ``aten::rnn_relu`` as lower
        precision ops: the whole layer, state included, runs in bfloat16 (or float16) and returns it; only
        float32 tensors are lowered. ``aten::gru`` is on no list: its products autocast one by one and it
        returns float32, which is what rnnlab's GRU does by running under autocast unchanged (None).
        """
        if self.mode == "GRU" or x.device.type != "cpu" or not torch.is_autocast_enabled("cpu"):
            return None
        return torch.get_autocast_dtype("cpu") if x.dtype == torch.float32 else x.dtype

    def _zeros_state(self, batch: int, like: Tensor) -> State:
        num = self.num_layers * (2 if self.bidirectional else 1)
        h_size = self.proj_size if self.proj_size > 0 else self.hidden_size
        sizes = [h_size, self.hidden_size] if self.mode == "LSTM" else [h_size]
        return zero_state(num, batch, sizes, like)

    def forward(self, input, hx=None):
        is_lstm = self.mode == "LSTM"
        name = "RNN" if self.mode.startswith("RNN") else self.mode
        if isinstance(input, PackedSequence):
            data, batch_sizes_t, sorted_indices, unsorted_indices = input
            batch_sizes = [int(b) for b in batch_sizes_t]
            if hx is None:
                state = self._zeros_state(batch_sizes[0], data)
            else:
                state = (hx[0], hx[1]) if is_lstm else (hx,)
                if sorted_indices is not None:  # hx rows follow the caller's order: sort them like the data
                    state = tuple(s.index_select(1, sorted_indices) for s in state)
            self._check_state(data, state, batch_sizes_t)
            output, final = self._run_stack(data, batch_sizes, state)
            if unsorted_indices is not None:  # h_n back in the caller's order
                final = tuple(s.index_select(1, unsorted_indices) for s in final)
            packed = PackedSequence(output, batch_sizes_t, sorted_indices, unsorted_indices)
            return packed, (final if is_lstm else final[0])

        if input.dim() not in (2, 3):
            tail = " tensor instead" if name == "RNN" else " instead"
            raise ValueError(f"{name}: Expected input to be 2D or 3D, got {input.dim()}D{tail}")
        is_batched = input.dim() == 3
        batch_dim = 0 if self.batch_first else 1
        if not is_batched:
            input = input.unsqueeze(batch_dim)
        if hx is None:
            state = self._zeros_state(input.size(batch_dim), input)
        else:
            state = (hx[0], hx[1]) if is_lstm else (hx,)
            want = 3 if is_batched else 2
            if any(s.dim() != want for s in state):
                kind = "batched 3-D" if is_batched else "unbatched 2-D"
                if is_lstm:
                    dims = f"({state[0].dim()}-D, {state[1].dim()}-D) tensors"
                    raise RuntimeError(f"For {kind} input, hx and cx should also be {want}-D but got {dims}")
                raise RuntimeError(
                    f"For {kind} input, hx should also be {want}-D but got {state[0].dim()}-D tensor"
                )
            if not is_batched:
                state = tuple(s.unsqueeze(1) for s in state)
        self._check_state(input, state, None)
        check_sequence_length(input.size(1 if self.batch_first else 0))  # after the state, as torch.nn

        x = input.transpose(0, 1) if self.batch_first else input  # (T, B, H_in)
        output, final = self._run_stack(x, None, state)
        if self.batch_first:
            output = output.transpose(0, 1)  # (B, T, D*P)
        if not is_batched:
            output = output.squeeze(batch_dim)
            final = tuple(s.squeeze(1) for s in final)
        return output, (final if is_lstm else final[0])

    def _check_state(self, input: Tensor, state: State, batch_sizes: Tensor | None) -> None:
        if self.mode == "LSTM":
            self.check_forward_args(input, (state[0], state[1]), batch_sizes)  # type: ignore[arg-type]
        else:
            self.check_forward_args(input, state[0], batch_sizes)


def _reject_extra_kwargs(kwargs: dict, allow_proj_size: bool = False) -> None:
    """RNN and GRU take no ``proj_size`` (torch.nn's ValueError); no layer takes another extra keyword.

    The TypeError is worded as Python words it for torch.nn's layers, whose keywords all reach
    ``RNNBase.__init__``.
    """
    if "proj_size" in kwargs and not allow_proj_size:
        raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
    for key in kwargs:
        raise TypeError(f"RNNBase.__init__() got an unexpected keyword argument '{key}'")


class RNN(RNNBase):
    r"""A multi-layer Elman RNN with tanh or ReLU, a drop-in for :class:`torch.nn.RNN`.

    For each element of the input sequence, each layer computes

    .. math::
        h_t = \tanh(x_t W_{ih}^T + b_{ih} + h_{t-1} W_{hh}^T + b_{hh})

    (ReLU in place of tanh with ``nonlinearity='relu'``); the step is :func:`rnnlab.nn.functional.rnn_tanh`.

    Args (as torch.nn, same positional order; the 4th is ``nonlinearity``):
        input_size, hidden_size, num_layers=1, nonlinearity='tanh', bias=True, batch_first=False,
        dropout=0.0 (between layers, training only), bidirectional=False, device=None, dtype=None.

    Returns ``(output, h_n)``; see the module docstring for shapes.

    Example (the second seed's 4-layer RNN)::

        >>> import torch, rnnlab.nn as rnn
        >>> layer = rnn.RNN(input_size=100, hidden_size=20, num_layers=4)
        >>> out, h = layer(torch.randn(10, 3, 100), torch.zeros(4, 3, 20))
        >>> out.shape, h.shape
        (torch.Size([10, 3, 20]), torch.Size([4, 3, 20]))
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device=None,
        dtype=None,
        **kwargs,
    ) -> None:
        _reject_extra_kwargs(kwargs)
        self.nonlinearity = nonlinearity
        check_nonlinearity(nonlinearity)
        mode = "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"
        super().__init__(
            mode, input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, 0,
            device, dtype,
        )  # fmt: skip


class LSTM(RNNBase):
    r"""A multi-layer LSTM, optionally with projections (LSTMP), a drop-in for :class:`torch.nn.LSTM`.

    For each element of the input sequence, each layer computes

    .. math::
        i_t &= \sigma(W_{ii} x_t + b_{ii} + W_{hi} h_{t-1} + b_{hi}) \\
        f_t &= \sigma(W_{if} x_t + b_{if} + W_{hf} h_{t-1} + b_{hf}) \\
        g_t &= \tanh(W_{ig} x_t + b_{ig} + W_{hg} h_{t-1} + b_{hg}) \\
        o_t &= \sigma(W_{io} x_t + b_{io} + W_{ho} h_{t-1} + b_{ho}) \\
        c_t &= f_t \odot c_{t-1} + i_t \odot g_t \\
        h_t &= o_t \odot \tanh(c_t)

    and, with ``proj_size > 0``, :math:`h_t \leftarrow W_{hr} h_t` (Sak et al. 2014), so ``h`` has size P.
    Layer ``k > 0`` takes the previous layer's ``h_t`` as its input (after dropout in training).
    The step is :func:`rnnlab.nn.functional.lstm`.

    Args (as torch.nn, same positional order):
        input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
        bidirectional=False, proj_size=0, device=None, dtype=None.

    Returns ``(output, (h_n, c_n))``; see the module docstring for shapes.

    Example::

        >>> import torch, rnnlab.nn as rnn
        >>> lstm = rnn.LSTM(5, 6, 2)
        >>> output, (hn, cn) = lstm(torch.randn(1, 3, 5), (torch.randn(2, 3, 6), torch.randn(2, 3, 6)))
        >>> output.shape, hn.shape, cn.shape
        (torch.Size([1, 3, 6]), torch.Size([2, 3, 6]), torch.Size([2, 3, 6]))
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device=None,
        dtype=None,
        **kwargs,
    ) -> None:
        _reject_extra_kwargs(kwargs, allow_proj_size=True)
        super().__init__(
            "LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, proj_size,
            device, dtype,
        )  # fmt: skip

    def get_expected_cell_size(self, input: Tensor, batch_sizes: Tensor | None) -> tuple[int, int, int]:
        num_layers, mini_batch, _ = self.get_expected_hidden_size(input, batch_sizes)
        return (num_layers, mini_batch, self.hidden_size)

    def check_forward_args(
        self, input: Tensor, hidden: tuple[Tensor, Tensor], batch_sizes: Tensor | None
    ) -> None:  # type: ignore[override]
        self.check_input(input, batch_sizes)
        expected_h = self.get_expected_hidden_size(input, batch_sizes)
        self.check_hidden_size(hidden[0], expected_h, "Expected hidden[0] size {}, got {}")
        expected_c = self.get_expected_cell_size(input, batch_sizes)
        self.check_hidden_size(hidden[1], expected_c, "Expected hidden[1] size {}, got {}")

    def permute_hidden(self, hx: tuple[Tensor, Tensor], permutation: Tensor | None) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        if permutation is None:
            return hx
        return hx[0].index_select(1, permutation), hx[1].index_select(1, permutation)


class GRU(RNNBase):
    r"""A multi-layer GRU, a drop-in for :class:`torch.nn.GRU`.

    For each element of the input sequence, each layer computes

    .. math::
        r_t &= \sigma(W_{ir} x_t + b_{ir} + W_{hr} h_{t-1} + b_{hr}) \\
        z_t &= \sigma(W_{iz} x_t + b_{iz} + W_{hz} h_{t-1} + b_{hz}) \\
        n_t &= \tanh(W_{in} x_t + b_{in} + r_t \odot (W_{hn} h_{t-1} + b_{hn})) \\
        h_t &= (1 - z_t) \odot n_t + z_t \odot h_{t-1}

    The reset gate is applied after the product ``W_hn h + b_hn`` (torch's and cuDNN's choice, not Cho et
    al.'s); the step is :func:`rnnlab.nn.functional.gru`.

    Args (as torch.nn, same positional order):
        input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
        bidirectional=False, device=None, dtype=None.

    Returns ``(output, h_n)``; see the module docstring for shapes.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device=None,
        dtype=None,
        **kwargs,
    ) -> None:
        _reject_extra_kwargs(kwargs)
        super().__init__(
            "GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, 0,
            device, dtype,
        )  # fmt: skip
