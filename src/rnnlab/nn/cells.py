"""RNNCell, LSTMCell and GRUCell: drop-ins for torch.nn's cells.

Each cell owns its parameters (registered under torch.nn's names and in its order, initialised the same
way, so the same ``torch.manual_seed`` gives the same weights) and applies one step from
:mod:`rnnlab.nn.functional`, where the equations live.

Shapes (legend: B batch, H_in input size, H hidden size):

* input ``(B, H_in)`` or unbatched ``(H_in,)``
* hidden ``(B, H)`` or ``(H,)``; defaults to zeros
* output: the next hidden state (and, for the LSTM, the next cell state), batched like the input
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as torch_F
from torch import Tensor, nn
from torch.nn import Parameter, init

from rnnlab.nn import functional as F
from rnnlab.nn._checks import check_size

__all__ = ["RNNCellBase", "RNNCell", "LSTMCell", "GRUCell"]


class RNNCellBase(nn.Module):
    """Parameters and checks shared by the three cells (torch.nn's ``RNNCellBase``)."""

    __constants__ = ["input_size", "hidden_size", "bias"]

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool, num_chunks: int, device=None, dtype=None
    ) -> None:
        factory_kwargs = {"device": device, "dtype": dtype}
        super().__init__()
        # torch.nn's cells check nothing here; a wrong type or a negative size is named, a size of 0 and
        # any truthy bias stay accepted (torch's own tests build RNNCell(10, 20, "relu"): bias="relu").
        check_size("input_size", input_size, allow_zero=True)
        check_size("hidden_size", hidden_size, allow_zero=True)
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        # Registration order is part of the contract: reset_parameters() draws from the RNG in this order.
        self.weight_ih = Parameter(torch.empty((num_chunks * hidden_size, input_size), **factory_kwargs))
        self.weight_hh = Parameter(torch.empty((num_chunks * hidden_size, hidden_size), **factory_kwargs))
        if bias:
            self.bias_ih = Parameter(torch.empty(num_chunks * hidden_size, **factory_kwargs))
            self.bias_hh = Parameter(torch.empty(num_chunks * hidden_size, **factory_kwargs))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def extra_repr(self) -> str:
        s = "{input_size}, {hidden_size}"
        if "bias" in self.__dict__ and self.bias is not True:
            s += ", bias={bias}"
        if "nonlinearity" in self.__dict__ and self.nonlinearity != "tanh":
            s += ", nonlinearity={nonlinearity}"
        return s.format(**self.__dict__)

    def reset_parameters(self) -> None:
        """Every weight and bias from U(-1/sqrt(H), 1/sqrt(H)), as torch.nn does."""
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for weight in self.parameters():
            init.uniform_(weight, -stdv, stdv)

    # -- validation at the door: torch's checks, in torch's order, with its types and messages ----------
    # torch.nn checks the dimensions in Python, then (in ATen's check_rnn_cell_forward_input/_hidden)
    # the input size, each state's batch and hidden size; a dtype mismatch surfaces last, from the first
    # matrix product (h's, then x's). The dimensions are checked on the caller's tensors, the sizes after
    # an unbatched input (and its state) gained a batch dimension, as torch does.
    def _check_dims(self, input: Tensor, hx: Sequence[Tensor] | Tensor | None, labels: Sequence[str]) -> None:
        name = type(self).__name__
        if input.dim() not in (1, 2):
            raise ValueError(f"{name}: Expected input to be 1D or 2D, got {input.dim()}D instead")
        if hx is not None:
            for label, value in zip(labels, hx, strict=True):
                if value.dim() not in (1, 2):
                    raise ValueError(f"{name}: Expected {label} to be 1D or 2D, got {value.dim()}D instead")

    def _check_forward(self, input: Tensor, hx: Sequence[Tensor]) -> None:
        """``input`` (B, H_in) and each state (B, H), batched already; ``hx[k]`` is torch's hidden{k}."""
        if input.size(1) != self.input_size:
            raise RuntimeError(
                f"input has inconsistent input_size: got {input.size(1)} expected {self.input_size}"
            )
        for k, h in enumerate(hx):
            if input.size(0) != h.size(0):
                raise RuntimeError(
                    f"Input batch size {input.size(0)} doesn't match hidden{k} batch size {h.size(0)}"
                )
            if h.size(1) != self.hidden_size:
                raise RuntimeError(
                    f"hidden{k} has inconsistent hidden_size: got {h.size(1)}, expected {self.hidden_size}"
                )
        if torch.is_autocast_enabled(input.device.type):
            return
        for x, weight, bias in ((hx[0], self.weight_hh, self.bias_hh), (input, self.weight_ih, self.bias_ih)):
            if x.dtype != weight.dtype:
                # torch's own message comes from its matrix product (addmm or mm): run that on empty slices.
                torch_F.linear(x[:0], weight[:0], None if bias is None else bias[:0])
                raise RuntimeError(
                    f"expected the same dtype, got {x.dtype} and {weight.dtype}"
                )  # not reached

    def _forward_h(self, step, input: Tensor, hx: Tensor | None) -> Tensor:
        """The checked forward of a cell whose state is ``h`` alone (RNNCell, GRUCell)."""
        self._check_dims(input, None if hx is None else (hx,), ["hidden"])
        is_batched = input.dim() == 2
        if not is_batched:
            input = input.unsqueeze(0)  # (H_in,) -> (1, H_in)
        hx = self._zeros(input) if hx is None else (hx if is_batched else hx.unsqueeze(0))
        self._check_forward(input, (hx,))
        h = step(input, hx, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        return h if is_batched else h.squeeze(0)

    def _zeros(self, input: Tensor) -> Tensor:
        return torch.zeros(input.size(0), self.hidden_size, dtype=input.dtype, device=input.device)


class RNNCell(RNNCellBase):
    r"""An Elman RNN cell with tanh or ReLU non-linearity.

    .. math::
        h' = \tanh(W_{ih} x + b_{ih} + W_{hh} h + b_{hh})

    (``nonlinearity='relu'`` uses ReLU in place of tanh.)

    Args:
        input_size: features of the input ``x`` (H_in).
        hidden_size: features of the hidden state ``h`` (H).
        bias: if False, no ``b_ih``/``b_hh`` (registered as None).
        nonlinearity: ``'tanh'`` or ``'relu'``.

    Shapes: input ``(B, H_in)`` or ``(H_in,)``; hidden ``(B, H)`` or ``(H,)`` -> ``h'`` of the same batching.

    Example::

        >>> import torch, rnnlab.nn as rnn
        >>> cell = rnn.RNNCell(10, 20)
        >>> h = torch.zeros(3, 20)
        >>> for x_t in torch.randn(6, 3, 10):
        ...     h = cell(x_t, h)
        >>> h.shape
        torch.Size([3, 20])
    """

    __constants__ = ["input_size", "hidden_size", "bias", "nonlinearity"]

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: str = "tanh",
        device=None,
        dtype=None,
    ) -> None:
        super().__init__(input_size, hidden_size, bias, num_chunks=1, device=device, dtype=dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        steps = {"tanh": F.rnn_tanh, "relu": F.rnn_relu}
        if self.nonlinearity not in steps:  # torch.nn checks it here, not in __init__
            raise RuntimeError(f"Unknown nonlinearity: {self.nonlinearity}")
        return self._forward_h(steps[self.nonlinearity], input, hx)


class LSTMCell(RNNCellBase):
    r"""A long short-term memory (LSTM) cell.

    .. math::
        i &= \sigma(W_{ii} x + b_{ii} + W_{hi} h + b_{hi}) \\
        f &= \sigma(W_{if} x + b_{if} + W_{hf} h + b_{hf}) \\
        g &= \tanh(W_{ig} x + b_{ig} + W_{hg} h + b_{hg}) \\
        o &= \sigma(W_{io} x + b_{io} + W_{ho} h + b_{ho}) \\
        c' &= f \odot c + i \odot g \\
        h' &= o \odot \tanh(c')

    ``weight_ih`` is ``[W_ii | W_if | W_ig | W_io]`` stacked: ``(4H, H_in)``; ``weight_hh`` is ``(4H, H)``.

    Shapes: input ``(B, H_in)`` or ``(H_in,)``; ``hx = (h, c)`` each ``(B, H)`` or ``(H,)``, zeros by default
    -> ``(h', c')`` batched like the input.

    Example (the fifth seed's loop)::

        >>> import torch, rnnlab.nn as rnn
        >>> cell = rnn.LSTMCell(10, 20)
        >>> hx, cx = torch.randn(3, 20), torch.randn(3, 20)
        >>> output = []
        >>> for x_t in torch.randn(2, 3, 10):
        ...     hx, cx = cell(x_t, (hx, cx))
        ...     output.append(hx)
        >>> torch.stack(output).shape
        torch.Size([2, 3, 20])
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None) -> None:
        super().__init__(input_size, hidden_size, bias, num_chunks=4, device=device, dtype=dtype)

    def forward(self, input: Tensor, hx: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
        self._check_dims(input, hx, [] if hx is None else [f"hx[{k}]" for k in range(len(hx))])
        is_batched = input.dim() == 2
        if not is_batched:
            input = input.unsqueeze(0)  # (H_in,) -> (1, H_in)
        if hx is None:
            zeros = self._zeros(input)
            hx = (zeros, zeros)
        elif not is_batched:
            hx = (hx[0].unsqueeze(0), hx[1].unsqueeze(0))  # (H,) -> (1, H)
        if not isinstance(hx, (tuple, list)) or not all(isinstance(h, Tensor) for h in hx):
            raise TypeError(
                f"lstm_cell(): argument 'hx' (position 2) must be tuple of Tensors, not {type(hx).__name__}"
            )
        if len(hx) != 2:
            raise RuntimeError("lstm_cell expects two hidden states")
        self._check_forward(input, hx)
        h, c = F.lstm(input, (hx[0], hx[1]), self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        return (h, c) if is_batched else (h.squeeze(0), c.squeeze(0))


class GRUCell(RNNCellBase):
    r"""A gated recurrent unit (GRU) cell, as torch.nn computes it.

    .. math::
        r &= \sigma(W_{ir} x + b_{ir} + W_{hr} h + b_{hr}) \\
        z &= \sigma(W_{iz} x + b_{iz} + W_{hz} h + b_{hz}) \\
        n &= \tanh(W_{in} x + b_{in} + r \odot (W_{hn} h + b_{hn})) \\
        h' &= (1 - z) \odot n + z \odot h

    The reset gate multiplies ``W_hn h + b_hn`` (after the product), not ``h`` as in Cho et al. (2014);
    see :func:`rnnlab.nn.functional.gru`.

    Shapes: input ``(B, H_in)`` or ``(H_in,)``; hidden ``(B, H)`` or ``(H,)`` -> ``h'`` of the same batching.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None) -> None:
        super().__init__(input_size, hidden_size, bias, num_chunks=3, device=device, dtype=dtype)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        return self._forward_h(F.gru, input, hx)
