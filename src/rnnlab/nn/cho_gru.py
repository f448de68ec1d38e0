r"""The GRU as Cho et al. (2014) wrote it: the reset gate applied *before* the recurrent product.

.. math::
    r_t &= \sigma(W_{ir} x_t + b_{ir} + W_{hr} h_{t-1} + b_{hr}) \\
    z_t &= \sigma(W_{iz} x_t + b_{iz} + W_{hz} h_{t-1} + b_{hz}) \\
    n_t &= \tanh(W_{in} x_t + b_{in} + W_{hn} (r_t \odot h_{t-1}) + b_{hn}) \\
    h_t &= (1 - z_t) \odot n_t + z_t \odot h_{t-1}

torch.nn.GRU (and cuDNN) computes :math:`n_t = \tanh(W_{in} x_t + b_{in} + r_t \odot (W_{hn} h_{t-1} +
b_{hn}))` instead (see :func:`rnnlab.nn.functional.gru`): the reset gate scales the product and its bias,
so all three recurrent products are one matrix multiply. The two agree when :math:`r_t = 1`, or when
:math:`h_{t-1} = 0` and :math:`b_{hn} = 0`, and differ otherwise. Keras calls this form
``GRU(reset_after=False)``, ONNX's GRU operator ``linear_before_reset=0``; Baidu's LAC tagger (shipped in
jieba, :mod:`rnnlab.models.lac`) was trained with it (Paddle's ``dynamic_gru``).

:class:`ChoGRUCell` and :class:`ChoGRU` keep torch.nn.GRUCell's and torch.nn.GRU's contract: the same
constructor, parameter names (``weight_ih_l0``, ``bias_hh_l1_reverse``, ...), shapes, gate order (r, z, n),
registration order and init, input forms (batched, ``batch_first``, unbatched, PackedSequence) and return
structure; only the step differs, so a torch.nn.GRU ``state_dict`` loads into a ChoGRU with ``strict=True``
(and computes the other formula). The layer runs on the readable loop
(:func:`rnnlab.nn._loop.run_direction_readable`) and the one stack (:mod:`rnnlab.nn._stack`); there is no
fused path for it. ONNX export: :mod:`rnnlab.export.onnx_layers` (ONNX's own ``GRU`` node).

Dimension legend: ``B`` batch, ``T`` time, ``H_in`` input size, ``H`` hidden size, ``L`` layers,
``D`` directions.

Reference:
    Cho et al. (2014), Learning phrase representations using RNN encoder-decoder for statistical machine
    translation, equations (5) to (8).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rnnlab.nn import functional as F
from rnnlab.nn._loop import State, run_direction_readable
from rnnlab.nn._stack import run_stack
from rnnlab.nn._variant_base import _uniform_, _VariantCell
from rnnlab.nn.recurrent import RNNBase, _reject_extra_kwargs

__all__ = ["cho_gru", "ChoGRUCell", "ChoGRU"]


def cho_gru(
    x: Tensor,
    h_prev: Tensor,
    W_ih: Tensor,
    W_hh: Tensor,
    b_ih: Tensor | None = None,
    b_hh: Tensor | None = None,
) -> Tensor:
    r"""One step of Cho et al.'s GRU (the module docstring's equations).

    Weights as torch.nn.GRU stores them, gates stacked (r, z, n) along dim 0: ``W_ih = [W_ir | W_iz | W_in]``
    (3H, H_in), ``W_hh = [W_hr | W_hz | W_hn]`` (3H, H), ``b_ih``, ``b_hh`` (3H,) or None.

    Shapes: ``x`` (B, H_in), ``h_prev`` (B, H) -> ``h`` (B, H).
    """
    H = h_prev.shape[-1]
    W_hrz, W_hn = W_hh.split([2 * H, H], dim=0)  # (2H, H), (H, H)
    b_hrz, b_hn = (None, None) if b_hh is None else b_hh.split([2 * H, H])  # (2H,), (H,)
    x_r, x_z, x_n = F.linear(x, W_ih, b_ih).chunk(3, dim=1)  # 3 x (B, H)
    h_r, h_z = F.linear(h_prev, W_hrz, b_hrz).chunk(2, dim=1)  # 2 x (B, H)
    r = torch.sigmoid(x_r + h_r)
    z = torch.sigmoid(x_z + h_z)
    n = torch.tanh(x_n + F.linear(r * h_prev, W_hn, b_hn))  # reset gate before the product (Cho et al.)
    h = (1 - z) * n + z * h_prev
    return h


class ChoGRUCell(_VariantCell):
    """One step of :func:`cho_gru`, with torch.nn.GRUCell's parameters: ``weight_ih`` (3H, H_in),
    ``weight_hh`` (3H, H), ``bias_ih``, ``bias_hh`` (3H,), gates (r, z, n), all from U(-1/sqrt(H), 1/sqrt(H)).

    Shapes: ``input`` (B, H_in) or (H_in,); ``hx`` (B, H) or (H,), zeros if None -> ``h'`` like ``hx``.

    Example::

        >>> import torch
        >>> cell = ChoGRUCell(3, 4)
        >>> cell(torch.randn(2, 3)).shape
        torch.Size([2, 4])
    """

    _has_cell_state = False

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True) -> None:
        super().__init__(input_size, hidden_size, bias)
        self.weight_ih = nn.Parameter(torch.empty(3 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(3 * hidden_size, hidden_size))
        for name in ("bias_ih", "bias_hh"):
            self.register_parameter(name, nn.Parameter(torch.empty(3 * hidden_size)) if bias else None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _uniform_([self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh], self.hidden_size)

    def _step(self, x: Tensor, h_prev: Tensor) -> Tensor:
        return cho_gru(x, h_prev, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)


class ChoGRU(RNNBase):
    """A multi-layer GRU with Cho et al.'s step (:func:`cho_gru`), used exactly like torch.nn.GRU.

    Args (as torch.nn.GRU, same positional order): ``input_size``, ``hidden_size``, ``num_layers=1``,
    ``bias=True``, ``batch_first=False``, ``dropout=0.0`` (between layers, training only),
    ``bidirectional=False``, ``device=None``, ``dtype=None``.

    ``forward(input, h_0=None) -> (output, h_n)``: ``input`` (T, B, H_in), (B, T, H_in) with ``batch_first``,
    unbatched (T, H_in) or a PackedSequence; ``h_0`` and ``h_n`` (L*D, B, H); ``output`` (T, B, D*H) laid
    out like the input. ``mode`` is ``"GRU"`` (the parameters are a GRU's); the class, not the mode, says
    which step runs. ``use_fused`` is accepted and ignored: this layer always runs the readable loop.

    Example::

        >>> import torch
        >>> gru = ChoGRU(3, 4, num_layers=2, bidirectional=True, batch_first=True)
        >>> output, h_n = gru(torch.randn(2, 5, 3))
        >>> output.shape, h_n.shape
        (torch.Size([2, 5, 8]), torch.Size([4, 2, 4]))
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

    def _run_stack(self, x: Tensor, batch_sizes: list[int] | None, hx: State) -> tuple[Tensor, State]:
        """As :meth:`RNNBase._run_stack`, with :func:`cho_gru` as every direction's step."""

        def run(layer: int, direction: int, x: Tensor, state: State) -> tuple[Tensor, State]:
            weights = self._layer_weights(layer, direction)
            return run_direction_readable(self.mode, x, batch_sizes, state, weights, direction == 1, cho_gru)

        num_directions = 2 if self.bidirectional else 1
        return run_stack(run, x, hx, self.num_layers, num_directions, self.dropout, self.training)
