"""Regularizers for recurrent networks: zoneout, recurrent (variational) dropout and weight drop.

- :class:`ZoneoutLSTMCell`, :class:`ZoneoutLSTM`: each unit of h and c may keep its previous value
  (Krueger et al. 2017).
- :class:`VariationalDropoutLSTM`: one dropout mask per sequence on the input and recurrent connections,
  shared by every time step (Gal & Ghahramani 2016).
- :class:`WeightDrop`: DropConnect on chosen recurrent weights of any module, AWD-LSTM's weight-dropped
  LSTM (Merity, Keskar & Socher 2017; DropConnect: Wan et al. 2013).

Layers are used like torch.nn.LSTM: ``output, (h_n, c_n) = layer(input, (h_0, c_0))`` with the shapes
of :mod:`rnnlab.nn._variant_base`, on the one layer stack of :mod:`rnnlab.nn._stack`. In eval every
regularizer here is deterministic, and with zero probabilities each layer is torch.nn.LSTM. Also
importable from :mod:`rnnlab.nn.variants` and :mod:`rnnlab.nn`.

Dimension legend (shared across rnnlab): ``B`` batch, ``T`` time, ``H_in`` input size, ``H`` hidden size,
``L`` layers, ``D`` directions (2 if bidirectional).

References:
    Krueger et al. (2017), Zoneout: regularizing RNNs by randomly preserving hidden activations.
    Gal & Ghahramani (2016), A theoretically grounded application of dropout in recurrent neural networks.
    Merity, Keskar & Socher (2017), Regularizing and optimizing LSTM language models (AWD-LSTM).
    Wan et al. (2013), Regularization of neural networks using DropConnect.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from functools import partial

import torch
from torch import Tensor, nn
from torch.func import functional_call
from torch.nn import functional as TF

from rnnlab.nn import functional as F
from rnnlab.nn._checks import check_flag, check_probability
from rnnlab.nn._stack import param_suffix
from rnnlab.nn._variant_base import (
    State,
    Step,
    _CellStack,
    _StackedRecurrent,
    _TorchLSTMParams,
    _uniform_,
)

__all__ = [
    "ZoneoutLSTMCell",
    "ZoneoutLSTM",
    "VariationalDropoutLSTM",
    "WeightDrop",
]


# ---------------------------------------------------------------------------------------------------
# Zoneout (Krueger et al. 2017)
# ---------------------------------------------------------------------------------------------------


class ZoneoutLSTMCell(_TorchLSTMParams):
    r"""LSTM cell with zoneout (Krueger et al. 2017): each unit of h and c may keep its previous value.

    .. math::
        (h^{new}_t, c^{new}_t) &= \mathrm{LSTM}(x_t, (h_{t-1}, c_{t-1}))
            \quad \text{(torch.nn's LSTMCell equations)} \\
        c_t &= d^c_t \odot c_{t-1} + (1 - d^c_t) \odot c^{new}_t \\
        h_t &= d^h_t \odot h_{t-1} + (1 - d^h_t) \odot h^{new}_t

    In training :math:`d^c_t \sim \mathrm{Bernoulli}(p_c)`, :math:`d^h_t \sim \mathrm{Bernoulli}(p_h)`, a
    fresh mask per unit, example and step (a zoned-out unit keeps its previous value exactly). In eval the
    masks are replaced by their expectations: :math:`c_t = p_c c_{t-1} + (1 - p_c) c^{new}_t` (likewise h).
    As in the paper, :math:`h^{new}_t = o_t \odot \tanh(c^{new}_t)` uses the cell state before zoneout.

    Args: ``zoneout_h`` = :math:`p_h`, ``zoneout_c`` = :math:`p_c`, probabilities in [0, 1].
    Parameters as torch.nn.LSTMCell (``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh``), so its
    state_dict loads into / from an LSTMCell with ``strict=True``.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        zoneout_h: float = 0.0,
        zoneout_c: float = 0.0,
    ) -> None:
        super().__init__(input_size, hidden_size, bias)
        check_probability("zoneout_h", zoneout_h)
        check_probability("zoneout_c", zoneout_c)
        self.zoneout_h, self.zoneout_c = float(zoneout_h), float(zoneout_c)
        self.reset_parameters()

    def extra_repr(self) -> str:
        return super().extra_repr() + f", zoneout_h={self.zoneout_h}, zoneout_c={self.zoneout_c}"

    def _zoneout(self, prev: Tensor, new: Tensor, p: float) -> Tensor:
        if p == 0:
            return new
        if self.training:
            d = torch.rand_like(new) < p  # True: this unit keeps its previous value
            return torch.where(d, prev, new)
        return p * prev + (1 - p) * new

    def _step(self, x: Tensor, state: State) -> State:
        h_prev, c_prev = state
        h_new, c_new = F.lstm(x, (h_prev, c_prev), self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        c = self._zoneout(c_prev, c_new, self.zoneout_c)
        h = self._zoneout(h_prev, h_new, self.zoneout_h)
        return h, c


class ZoneoutLSTM(_CellStack):
    """A stack of :class:`ZoneoutLSTMCell` (Krueger et al. 2017), used like torch.nn.LSTM.

    Args as torch.nn.LSTM plus the keywords ``zoneout_h=0.0``, ``zoneout_c=0.0`` (probabilities a unit
    of h / c keeps its previous value; fresh masks every step in training, expectations in eval), given
    to every cell. With both 0 this is torch.nn.LSTM. Not supported: ``proj_size``, PackedSequence.
    """

    _cell = ZoneoutLSTMCell

    @property
    def zoneout_h(self) -> float:
        return self.cells[0].zoneout_h

    @property
    def zoneout_c(self) -> float:
        return self.cells[0].zoneout_c


# ---------------------------------------------------------------------------------------------------
# Variational (recurrent) dropout (Gal & Ghahramani 2016)
# ---------------------------------------------------------------------------------------------------


def _variational_lstm_step(
    x: Tensor, state: State, *, weights: tuple[Tensor | None, ...], m_x: Tensor | None, m_h: Tensor | None
) -> State:
    """torch.nn's LSTM step on the masked input and the masked recurrent input (the carried state is not
    masked: Gal & Ghahramani drop the *connections*, not the memory)."""
    h_prev, c_prev = state
    x_in = x if m_x is None else x * m_x  # (B, H_in)
    h_in = h_prev if m_h is None else h_prev * m_h  # (B, H)
    return F.lstm(x_in, (h_in, c_prev), *weights)


class VariationalDropoutLSTM(_StackedRecurrent):
    r"""An LSTM with recurrent (variational) dropout (Gal & Ghahramani 2016).

    In training, one mask per sequence, shared by every time step, drops each layer's input :math:`x_t` and
    the recurrent input :math:`h_{t-1}` (one pair of masks per example, layer and direction):

    .. math::
        m_x &\sim \mathrm{Bernoulli}(1 - p_x)^{H_{in}} / (1 - p_x), \quad
        m_h \sim \mathrm{Bernoulli}(1 - p_h)^{H} / (1 - p_h) \\
        (h_t, c_t) &= \mathrm{LSTM}(m_x \odot x_t, (m_h \odot h_{t-1}, c_{t-1}))

    (torch.nn's LSTM equations, :func:`rnnlab.nn.functional.lstm`). Only the connections are dropped:
    the output :math:`h_t` and the carried :math:`c_t` are not masked. In eval there are no masks and this
    is exactly torch.nn.LSTM.

    Args as torch.nn.LSTM (``input_size``, ``hidden_size``, ``num_layers``, ``bias``, ``batch_first``,
    ``bidirectional``) plus ``dropout_input`` = :math:`p_x` and ``dropout_state`` = :math:`p_h` in [0, 1).
    There is no per-step ``dropout`` between layers: ``dropout_input`` already drops every layer's input,
    per sequence. Not supported: ``proj_size``, PackedSequence.

    Parameters carry torch.nn.LSTM's names, shapes, order and init (``weight_ih_l0``, ``weight_hh_l0``,
    ``bias_ih_l0``, ``bias_hh_l0``, ``..._reverse``), so state_dicts load both ways with ``strict=True``.
    The masks of a call are those of :meth:`sample_masks`, drawn first, before anything else.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        bidirectional: bool = False,
        dropout_input: float = 0.0,
        dropout_state: float = 0.0,
    ) -> None:
        super().__init__(input_size, hidden_size, num_layers, batch_first, 0.0, bidirectional)
        check_flag("bias", bias)
        check_probability("dropout_input", dropout_input, below_one=True)
        check_probability("dropout_state", dropout_state, below_one=True)
        self.bias, self.dropout_input, self.dropout_state = bias, float(dropout_input), float(dropout_state)
        self._suffixes = []
        for layer in range(num_layers):
            for direction in range(self.num_directions):
                suffix = param_suffix(layer, direction)
                self._suffixes.append(suffix)
                n_in = self._layer_input_size(layer)
                self.register_parameter(
                    f"weight_ih{suffix}", nn.Parameter(torch.empty(4 * hidden_size, n_in))
                )
                self.register_parameter(
                    f"weight_hh{suffix}", nn.Parameter(torch.empty(4 * hidden_size, hidden_size))
                )
                for name in (f"bias_ih{suffix}", f"bias_hh{suffix}"):
                    self.register_parameter(
                        name, nn.Parameter(torch.empty(4 * hidden_size)) if bias else None
                    )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _uniform_(list(self.parameters()), self.hidden_size)

    def extra_repr(self) -> str:
        return (
            super().extra_repr() + f", dropout_input={self.dropout_input}, dropout_state={self.dropout_state}"
        )

    def sample_masks(
        self, batch_size: int, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> list[tuple[Tensor | None, Tensor | None]]:
        """Draw one sequence's masks: ``(m_x (B, H_in of that layer), m_h (B, H))`` for each layer and
        direction (index ``layer * D + direction``), scaled by 1/(1-p); None where p = 0."""

        def draw(p: float, size: int) -> Tensor | None:
            if p == 0:
                return None
            keep = torch.full((batch_size, size), 1 - p, device=device, dtype=dtype)  # (B, size)
            return torch.bernoulli(keep) / (1 - p)

        masks = []
        for k in range(self.num_layers * self.num_directions):
            n_in = self._layer_input_size(k // self.num_directions)
            masks.append((draw(self.dropout_input, n_in), draw(self.dropout_state, self.hidden_size)))
        return masks

    def _steps(self, x: Tensor) -> list[Step]:
        n = self.num_layers * self.num_directions
        masks = self.sample_masks(x.shape[1], x.device, x.dtype) if self.training else [(None, None)] * n
        steps: list[Step] = []
        for suffix, (m_x, m_h) in zip(self._suffixes, masks, strict=True):
            weights = tuple(
                getattr(self, f"{name}{suffix}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
            )
            steps.append(partial(_variational_lstm_step, weights=weights, m_x=m_x, m_h=m_h))
        return steps


# ---------------------------------------------------------------------------------------------------
# Weight drop (Merity et al. 2017): a wrapper that works on any recurrent module
# ---------------------------------------------------------------------------------------------------

# cuDNN warns on every call whose weights are not views into its one flat buffer. WeightDrop hands the
# module a new dropped matrix each call by design, so that copy is the expected cost, not a mistake.
_CUDNN_FLAT_WEIGHTS_WARNING = "RNN module weights are not part of single contiguous chunk of memory"


class WeightDrop(nn.Module):
    r"""DropConnect on chosen weights of a wrapped module: AWD-LSTM's weight-dropped LSTM (Merity et al.
    2017; DropConnect: Wan et al. 2013).

    Each training forward draws one mask per chosen weight (so the same dropped matrix serves every time
    step of the call) and runs the module with

    .. math::
        W' = M \odot W / (1 - p), \quad M_{jk} \sim \mathrm{Bernoulli}(1 - p)

    In eval the raw :math:`W` is used. Works on torch.nn's RNN / LSTM / GRU and on rnnlab's layers.

    How: the raw weight moves from the module to this wrapper as the parameter ``<name>_raw`` (e.g.
    ``weight_hh_l0_raw``; dots in nested names become underscores), so optimisers and ``state_dict`` see
    it once; each forward calls the module through :func:`torch.func.functional_call` with the dropped
    tensor in its place. The naive version, assigning the dropped tensor to ``module.weight_hh_l0``,
    fails on torch.nn's RNNs: the name is a Parameter slot, and the module reads its weights from a cache
    (``_flat_weights``; on CUDA one flat cuDNN buffer) that the assignment bypasses or leaves stale.
    functional_call goes through the module's own ``__setattr__``, which updates that cache; after the
    call the cache is rebuilt without the dropped tensor. Call the wrapper, not ``wrapper.module``
    (which no longer owns the weight, and says so with an error rather than using a stale one).

    Args:
        module: the recurrent module to wrap.
        weights: names of the module's parameters to drop (default the first layer's ``weight_hh_l0``);
            nested names work too, e.g. ``"cells.0.weight_hh"`` for
            :class:`rnnlab.nn.variants.LayerNormLSTM`.
        dropout: the probability :math:`p` of dropping each entry, in [0, 1].

    Example::

        >>> import torch
        >>> lstm = WeightDrop(torch.nn.LSTM(4, 8), ["weight_hh_l0"], dropout=0.5)
        >>> [name for name, _ in lstm.named_parameters()][:2]
        ['weight_hh_l0_raw', 'module.weight_ih_l0']
        >>> output, (h_n, c_n) = lstm(torch.randn(5, 2, 4))
        >>> output.shape
        torch.Size([5, 2, 8])
    """

    def __init__(
        self, module: nn.Module, weights: Sequence[str] = ("weight_hh_l0",), dropout: float = 0.5
    ) -> None:
        super().__init__()
        owner = type(self).__name__
        if not isinstance(module, nn.Module):
            raise TypeError(f"{owner}: module must be an nn.Module, got {type(module).__name__}")
        weights = [weights] if isinstance(weights, str) else list(weights)
        available = dict(module.named_parameters())
        if not weights or any(name not in available for name in weights):
            raise ValueError(
                f"{owner}: weights must name parameters of the module, got {weights!r}; "
                f"the module has {sorted(available)}"
            )
        check_probability("dropout", dropout)
        self.module, self.weights, self.dropout = module, weights, float(dropout)
        self._raw_names = {name: name.replace(".", "_") + "_raw" for name in weights}
        for name in weights:
            prefix, _, leaf = name.rpartition(".")
            raw = module.get_submodule(prefix)._parameters.pop(leaf)  # the module no longer owns it ...
            self.register_parameter(self._raw_names[name], raw)  # ... the wrapper does
        self._refresh_cache()

    def extra_repr(self) -> str:
        return f"weights={self.weights}, dropout={self.dropout}"

    def _refresh_cache(self) -> None:
        # torch.nn.RNNBase keeps its weights in a list; rebuild it from the module's current attributes.
        for m in self.module.modules():
            if isinstance(m, nn.RNNBase):
                m._init_flat_weights()

    def forward(self, *args, **kwargs):
        """Call the module with the dropped weights; arguments and results are the module's own."""
        dropped = {}
        for name in self.weights:
            raw = getattr(self, self._raw_names[name])
            dropped[name] = (
                TF.dropout(raw, self.dropout, training=True) if self.training and self.dropout else raw
            )
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=_CUDNN_FLAT_WEIGHTS_WARNING)
                return functional_call(self.module, dropped, args, kwargs)
        finally:
            self._refresh_cache()
