"""Recurrent variants torch.nn lacks: layer-normalised, zoneout and peephole / coupled-gate cells and
layers, recurrent (variational) dropout, weight drop, and an LSTM run that returns every cell state.

Cells are ``cell(x, state) -> state`` and layers are used like torch.nn's::

    output, h_n = layer(input, hx)             # GRU-like
    output, (h_n, c_n) = layer(input, (h_0, c_0))  # LSTM-like

with ``input`` (T, B, H_in), or (B, T, H_in) if ``batch_first``, or unbatched (T, H_in); ``output``
(T, B, D*H) laid out like the input; ``h_n``, ``c_n`` (L*D, B, H). Every layer takes ``num_layers``,
``batch_first``, ``bidirectional`` and ``dropout`` (between layers, as torch.nn). PackedSequence is not
supported and raises a TypeError: pass a padded tensor and use the lengths where the output is read.

All layers walk time with one loop, :func:`_run_layers`; they differ only in the step each cell applies.
The parallel-scan models (minGRU, minLSTM) live in :mod:`rnnlab.nn.scan`.

Dimension legend (shared across rnnlab): ``B`` batch, ``T`` time, ``H_in`` input size, ``H`` hidden size,
``L`` layers, ``D`` directions (2 if bidirectional).

References:
    Ba, Kiros & Hinton (2016), Layer normalization.
    Gal & Ghahramani (2016), A theoretically grounded application of dropout in recurrent neural networks.
    Krueger et al. (2017), Zoneout: regularizing RNNs by randomly preserving hidden activations.
    Wan et al. (2013), Regularization of neural networks using DropConnect.
    Merity, Keskar & Socher (2017), Regularizing and optimizing LSTM language models (AWD-LSTM).
    Gers, Schmidhuber & Cummins (2000), Learning to forget: continual prediction with LSTM.
    Gers, Schraudolph & Schmidhuber (2002), Learning precise timing with LSTM recurrent networks.
    Greff et al. (2017), LSTM: a search space odyssey (the coupled input-forget gate, CIFG).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from functools import partial

import torch
from torch import Tensor, nn
from torch.func import functional_call
from torch.nn import functional as TF
from torch.nn.utils.rnn import PackedSequence

from rnnlab.nn import functional as F
from rnnlab.nn.scan import MinGRU, MinLSTM

__all__ = [
    "LayerNormLSTMCell",
    "LayerNormLSTM",
    "LayerNormGRUCell",
    "LayerNormGRU",
    "ZoneoutLSTMCell",
    "ZoneoutLSTM",
    "PeepholeLSTMCell",
    "PeepholeLSTM",
    "VariationalDropoutLSTM",
    "WeightDrop",
    "lstm_with_cell_states",
    "VARIANTS",
]

State = Tensor | tuple[Tensor, Tensor]  # h (B, H), or (h, c) for LSTM-like cells
Step = Callable[[Tensor, State], State]


# ---------------------------------------------------------------------------------------------------
# Checks at the door, and the one time loop
# ---------------------------------------------------------------------------------------------------


def _check_size(owner: str, name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{owner}: {name} must be an int >= 1, got {value!r}")


def _check_prob(owner: str, name: str, value: object, *, below_one: bool = False) -> None:
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not is_number or not (0 <= value < 1 if below_one else 0 <= value <= 1):
        interval = "[0, 1)" if below_one else "[0, 1]"
        raise ValueError(f"{owner}: {name} must be a probability in {interval}, got {value!r}")


def _check_flag(owner: str, name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{owner}: {name} must be a bool, got {value!r}")


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
) -> tuple[Tensor, list[State], bool]:
    """Check a layer's arguments and bring them to the loop's layout.

    Returns ``x`` (T, B, H_in), one state per layer and direction (``h`` (B, P), or ``(h, c)`` with ``c``
    (B, H); ``P = proj_size or H``), and whether the input was unbatched.
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
    if x.shape[0] == 0:
        raise ValueError(f"{owner}: input has no time steps (T = 0), got shape {tuple(input.shape)}")
    batch_size, h_size = x.shape[1], proj_size or hidden_size
    if hx is None:
        h = x.new_zeros(num_states, batch_size, h_size)  # (L*D, B, P)
        c = x.new_zeros(num_states, batch_size, hidden_size)  # (L*D, B, H)
        return x, [(h[k], c[k]) if has_cell_state else h[k] for k in range(num_states)], unbatched
    if has_cell_state:
        if not (isinstance(hx, (tuple, list)) and len(hx) == 2):
            raise TypeError(f"{owner}: hx must be a tuple (h_0, c_0), got {type(hx).__name__}")
        parts = [("h_0", hx[0], h_size), ("c_0", hx[1], hidden_size)]
    else:
        if not isinstance(hx, Tensor):
            raise TypeError(f"{owner}: hx must be a Tensor h_0, got {type(hx).__name__}")
        parts = [("h_0", hx, hidden_size)]
    checked = []
    for name, t, size in parts:
        expected = (num_states, size) if unbatched else (num_states, batch_size, size)
        if tuple(t.shape) != expected:
            raise ValueError(f"{owner}: {name} must have shape {expected} (L*D, B, H), got {tuple(t.shape)}")
        checked.append(t.unsqueeze(1) if unbatched else t)  # (L*D, H) -> (L*D, 1, H)
    states = [tuple(t[k] for t in checked) if has_cell_state else checked[0][k] for k in range(num_states)]
    return x, states, unbatched


def _to_caller_layout(t: Tensor, batch_first: bool, unbatched: bool) -> Tensor:
    if unbatched:
        return t.squeeze(1)  # (T, 1, F) -> (T, F)
    return t.transpose(0, 1) if batch_first else t  # (T, B, F) -> (B, T, F)


def _finish(
    output: Tensor, finals: list[State], *, batch_first: bool, unbatched: bool, has_cell_state: bool
) -> tuple[Tensor, State]:
    """``output`` (T, B, D*H) back to the caller's layout; the final states stacked to (L*D, B, H)."""
    parts = list(zip(*finals, strict=True)) if has_cell_state else [finals]
    stacked = [torch.stack(list(p)) for p in parts]  # each (L*D, B, H)
    if unbatched:
        stacked = [s.squeeze(1) for s in stacked]  # (L*D, 1, H) -> (L*D, H)
    state = (stacked[0], stacked[1]) if has_cell_state else stacked[0]
    return _to_caller_layout(output, batch_first, unbatched), state


def _run_layers(
    steps: Sequence[Step],
    x: Tensor,
    states: Sequence[State],
    num_directions: int,
    dropout: float,
    training: bool,
) -> tuple[Tensor, list[State], list[list[State]]]:
    """The one time loop: each layer forward (direction 0) and backward (direction 1) through time.

    ``steps[k]`` and ``states[k]`` belong to layer ``k // D``, direction ``k % D`` (torch.nn's order).
    ``x`` (T, B, H_in). Returns the last layer's output (T, B, D*H); the final state of every layer and
    direction (for direction 1, the state after reading ``x_0``, as torch.nn); and the last layer's state
    at every step, per direction, in time order.
    """
    T, num_layers = x.shape[0], len(steps) // num_directions
    finals: list[State] = []
    per_step: list[list[State]] = []
    for layer in range(num_layers):
        if layer > 0 and dropout > 0 and training:
            x = TF.dropout(x, dropout, training=True)  # torch.nn: between layers, not after the last
        outputs, per_step = [], []
        for direction in range(num_directions):
            k = layer * num_directions + direction
            step, state = steps[k], states[k]
            seq: list[State] = [state] * T
            for t in reversed(range(T)) if direction == 1 else range(T):
                state = step(x[t], state)
                seq[t] = state
            finals.append(state)
            per_step.append(seq)
            outputs.append(torch.stack([_hidden(s) for s in seq]))  # T x (B, H) -> (T, B, H)
        x = torch.cat(outputs, dim=2)  # D x (T, B, H) -> (T, B, D*H)
    return x, finals, per_step


def _uniform_(params: Sequence[nn.Parameter | None], hidden_size: int) -> None:
    """torch.nn's recurrent init: U(-1/sqrt(H), 1/sqrt(H)), drawn in the order given."""
    stdv = 1.0 / math.sqrt(hidden_size)
    for p in params:
        if p is not None:
            nn.init.uniform_(p, -stdv, stdv)


# ---------------------------------------------------------------------------------------------------
# Cells
# ---------------------------------------------------------------------------------------------------


class _VariantCell(nn.Module):
    """Sizes and the checked ``forward(input, hx=None)`` shared by the cells; ``_step`` holds the math
    (the layers call ``_step`` directly: checks happen once at the layer's door, not at every step)."""

    _has_cell_state = True

    def __init__(self, input_size: int, hidden_size: int, bias: bool) -> None:
        super().__init__()
        owner = type(self).__name__
        _check_size(owner, "input_size", input_size)
        _check_size(owner, "hidden_size", hidden_size)
        _check_flag(owner, "bias", bias)
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


class LayerNormLSTMCell(_VariantCell):
    r"""LSTM cell with layer normalisation (Ba, Kiros & Hinton 2016, section 3.1).

    .. math::
        (i, f, g, o) &= \mathrm{LN}(W_{ih} x_t; \alpha_{ih}, \beta_{ih})
                       + \mathrm{LN}(W_{hh} h_{t-1}; \alpha_{hh}, \beta_{hh}) + b \\
        c_t &= \sigma(f) \odot c_{t-1} + \sigma(i) \odot \tanh(g) \\
        h_t &= \sigma(o) \odot \tanh(\mathrm{LN}(c_t; \alpha_c, \beta_c))

    with :math:`\mathrm{LN}(a; \alpha, \beta) = \alpha \odot (a - \mu) / \sqrt{\sigma^2 + \epsilon} + \beta`,
    :math:`\mu, \sigma^2` the mean and variance over the features of one example. As in the paper, each LN
    normalises all four gates' pre-activations together (4H features); gate order is torch.nn's (i, f, g, o).
    ``bias=False`` drops :math:`b` (the LN shifts :math:`\beta` remain, they are part of the method).

    Parameters: ``weight_ih`` (4H, H_in), ``weight_hh`` (4H, H), ``gate_bias`` (4H,) = :math:`b`;
    ``ln_ih``, ``ln_hh`` (LayerNorm(4H)) and ``ln_c`` (LayerNorm(H)) hold :math:`\alpha` (init 1) and
    :math:`\beta` (init 0).

    Shapes: ``input`` (B, H_in) or (H_in,); ``hx = (h, c)`` each (B, H), zeros if None -> ``(h', c')``.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True) -> None:
        super().__init__(input_size, hidden_size, bias)
        self.weight_ih = nn.Parameter(torch.empty(4 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(4 * hidden_size, hidden_size))
        self.register_parameter("gate_bias", nn.Parameter(torch.empty(4 * hidden_size)) if bias else None)
        self.ln_ih = nn.LayerNorm(4 * hidden_size)
        self.ln_hh = nn.LayerNorm(4 * hidden_size)
        self.ln_c = nn.LayerNorm(hidden_size)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _uniform_([self.weight_ih, self.weight_hh, self.gate_bias], self.hidden_size)
        for ln in (self.ln_ih, self.ln_hh, self.ln_c):
            ln.reset_parameters()

    def _step(self, x: Tensor, state: State) -> State:
        h_prev, c_prev = state
        gates = self.ln_ih(F.linear(x, self.weight_ih, None)) + self.ln_hh(
            F.linear(h_prev, self.weight_hh, None)
        )
        if self.gate_bias is not None:
            gates = gates + self.gate_bias  # (B, 4H)
        ingate, forgetgate, cellgate, outgate = gates.chunk(4, dim=1)  # 4 x (B, H)
        c = torch.sigmoid(forgetgate) * c_prev + torch.sigmoid(ingate) * torch.tanh(cellgate)
        h = torch.sigmoid(outgate) * torch.tanh(self.ln_c(c))
        return h, c


class LayerNormGRUCell(_VariantCell):
    r"""GRU cell with layer normalisation, Ba, Kiros & Hinton's (2016) recipe on torch.nn's GRU.

    .. math::
        (r, z) &= \sigma\big(\mathrm{LN}(W_{i\{r,z\}} x_t) + b_{i\{r,z\}}
                            + \mathrm{LN}(W_{h\{r,z\}} h_{t-1}) + b_{h\{r,z\}}\big) \\
        n_t &= \tanh\big(\mathrm{LN}(W_{in} x_t) + b_{in}
                         + r \odot (\mathrm{LN}(W_{hn} h_{t-1}) + b_{hn})\big) \\
        h_t &= (1 - z) \odot n_t + z \odot h_{t-1}

    Each matrix product is normalised before its bias, the two gates (r, z) together (2H features, like
    the paper's LSTM gates) and the candidate's term alone (H features), each LN with its own gain and
    shift. The reset gate multiplies after the product, as in torch.nn (see :func:`rnnlab.nn.functional.gru`),
    so with every LN replaced by the identity this is exactly torch.nn.GRUCell.

    Parameters: ``weight_ih`` (3H, H_in), ``weight_hh`` (3H, H), ``bias_ih``, ``bias_hh`` (3H,) as
    torch.nn.GRUCell; ``ln_ih_rz``, ``ln_hh_rz`` (LayerNorm(2H)), ``ln_ih_n``, ``ln_hh_n`` (LayerNorm(H)).

    Shapes: ``input`` (B, H_in) or (H_in,); ``hx`` (B, H), zeros if None -> ``h'`` (B, H).
    """

    _has_cell_state = False

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True) -> None:
        super().__init__(input_size, hidden_size, bias)
        self.weight_ih = nn.Parameter(torch.empty(3 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(3 * hidden_size, hidden_size))
        for name in ("bias_ih", "bias_hh"):
            self.register_parameter(name, nn.Parameter(torch.empty(3 * hidden_size)) if bias else None)
        self.ln_ih_rz = nn.LayerNorm(2 * hidden_size)
        self.ln_hh_rz = nn.LayerNorm(2 * hidden_size)
        self.ln_ih_n = nn.LayerNorm(hidden_size)
        self.ln_hh_n = nn.LayerNorm(hidden_size)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _uniform_([self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh], self.hidden_size)
        for ln in (self.ln_ih_rz, self.ln_hh_rz, self.ln_ih_n, self.ln_hh_n):
            ln.reset_parameters()

    def _step(self, x: Tensor, h_prev: State) -> State:
        H = self.hidden_size
        x_rz, x_n = F.linear(x, self.weight_ih, None).split([2 * H, H], dim=1)  # (B, 2H), (B, H)
        h_rz, h_n = F.linear(h_prev, self.weight_hh, None).split([2 * H, H], dim=1)  # (B, 2H), (B, H)
        gi = torch.cat([self.ln_ih_rz(x_rz), self.ln_ih_n(x_n)], dim=1)  # (B, 3H)
        gh = torch.cat([self.ln_hh_rz(h_rz), self.ln_hh_n(h_n)], dim=1)  # (B, 3H)
        if self.bias_ih is not None:
            gi, gh = gi + self.bias_ih, gh + self.bias_hh
        i_r, i_z, i_n = gi.chunk(3, dim=1)  # 3 x (B, H)
        h_r, h_z, h_n = gh.chunk(3, dim=1)  # 3 x (B, H)
        r = torch.sigmoid(i_r + h_r)
        z = torch.sigmoid(i_z + h_z)
        n = torch.tanh(i_n + r * h_n)  # reset gate after the (normalised) product, as torch.nn
        return (1 - z) * n + z * h_prev


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
        _check_prob(type(self).__name__, "zoneout_h", zoneout_h)
        _check_prob(type(self).__name__, "zoneout_c", zoneout_c)
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


class PeepholeLSTMCell(_TorchLSTMParams):
    r"""LSTM cell with peephole connections (Gers & Schmidhuber 2000; Gers, Schraudolph & Schmidhuber 2002):
    the gates also see the cell state, through diagonal weights :math:`p_i, p_f, p_o`.

    .. math::
        i_t &= \sigma(W_{ii} x_t + b_{ii} + W_{hi} h_{t-1} + b_{hi} + p_i \odot c_{t-1}) \\
        f_t &= \sigma(W_{if} x_t + b_{if} + W_{hf} h_{t-1} + b_{hf} + p_f \odot c_{t-1}) \\
        g_t &= \tanh(W_{ig} x_t + b_{ig} + W_{hg} h_{t-1} + b_{hg}) \\
        c_t &= f_t \odot c_{t-1} + i_t \odot g_t \\
        o_t &= \sigma(W_{io} x_t + b_{io} + W_{ho} h_{t-1} + b_{ho} + p_o \odot c_t) \\
        h_t &= o_t \odot \tanh(c_t)

    The output gate looks at the *new* cell state :math:`c_t`, the other two at :math:`c_{t-1}`.

    ``coupled=True`` couples the input and forget gates, :math:`i_t = 1 - f_t` (CIFG, Greff et al. 2017,
    who write :math:`f_t = 1 - i_t`; since :math:`1 - \sigma(a) = \sigma(-a)` the two parametrise the same
    cells). There is then no input gate to learn: the gates are (f, g, o), ``weight_ih`` is (3H, H_in),
    ``weight_hh`` (3H, H), the biases (3H,), and there is no ``weight_ci``.

    Parameters: ``weight_ih`` (4H, H_in), ``weight_hh`` (4H, H), ``bias_ih``, ``bias_hh`` (4H,) in torch.nn's
    gate order (i, f, g, o); ``weight_ci``, ``weight_cf``, ``weight_co`` (H,) = :math:`p_i, p_f, p_o`. All
    from U(-1/sqrt(H), 1/sqrt(H)). With zero peephole weights this is torch.nn.LSTMCell.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, coupled: bool = False) -> None:
        _check_flag(type(self).__name__, "coupled", coupled)
        super().__init__(input_size, hidden_size, bias, num_gates=3 if coupled else 4)
        self.coupled = coupled
        self.register_parameter("weight_ci", None if coupled else nn.Parameter(torch.empty(hidden_size)))
        self.weight_cf = nn.Parameter(torch.empty(hidden_size))
        self.weight_co = nn.Parameter(torch.empty(hidden_size))
        self.reset_parameters()

    def extra_repr(self) -> str:
        return super().extra_repr() + (", coupled=True" if self.coupled else "")

    def _step(self, x: Tensor, state: State) -> State:
        h_prev, c_prev = state
        gates = F.linear(x, self.weight_ih, self.bias_ih) + F.linear(h_prev, self.weight_hh, self.bias_hh)
        if self.coupled:
            forgetgate, cellgate, outgate = gates.chunk(3, dim=1)  # 3 x (B, H)
            f = torch.sigmoid(forgetgate + self.weight_cf * c_prev)
            i = 1 - f
        else:
            ingate, forgetgate, cellgate, outgate = gates.chunk(4, dim=1)  # 4 x (B, H)
            i = torch.sigmoid(ingate + self.weight_ci * c_prev)
            f = torch.sigmoid(forgetgate + self.weight_cf * c_prev)
        g = torch.tanh(cellgate)
        c = f * c_prev + i * g
        o = torch.sigmoid(outgate + self.weight_co * c)
        h = o * torch.tanh(c)
        return h, c


# ---------------------------------------------------------------------------------------------------
# Layers
# ---------------------------------------------------------------------------------------------------


class _StackedRecurrent(nn.Module):
    """torch.nn's layer interface over :func:`_run_layers`; subclasses say which step each
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
        owner = type(self).__name__
        _check_size(owner, "input_size", input_size)
        _check_size(owner, "hidden_size", hidden_size)
        _check_size(owner, "num_layers", num_layers)
        _check_flag(owner, "batch_first", batch_first)
        _check_flag(owner, "bidirectional", bidirectional)
        _check_prob(owner, "dropout", dropout)
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
        x, states, unbatched = _prepare(
            type(self).__name__,
            input,
            hx,
            input_size=self.input_size,
            hidden_size=self.hidden_size,
            num_states=self.num_layers * self.num_directions,
            batch_first=self.batch_first,
            has_cell_state=self._has_cell_state,
        )
        output, finals, _ = _run_layers(
            self._steps(x), x, states, self.num_directions, self.dropout, self.training
        )
        return _finish(
            output,
            finals,
            batch_first=self.batch_first,
            unbatched=unbatched,
            has_cell_state=self._has_cell_state,
        )


class _CellStack(_StackedRecurrent):
    """A layer made of one cell per (layer, direction): ``cells[layer * D + direction]``."""

    def __init__(
        self,
        make_cell: Callable[[int], _VariantCell],
        input_size: int,
        hidden_size: int,
        num_layers: int,
        batch_first: bool,
        dropout: float,
        bidirectional: bool,
    ) -> None:
        super().__init__(input_size, hidden_size, num_layers, batch_first, dropout, bidirectional)
        num_cells = num_layers * self.num_directions
        self.cells = nn.ModuleList(
            make_cell(self._layer_input_size(k // self.num_directions)) for k in range(num_cells)
        )

    def reset_parameters(self) -> None:
        for cell in self.cells:
            cell.reset_parameters()

    def _steps(self, x: Tensor) -> list[Step]:
        return [cell._step for cell in self.cells]


class LayerNormLSTM(_CellStack):
    """A stack of :class:`LayerNormLSTMCell` (Ba, Kiros & Hinton 2016), used like torch.nn.LSTM.

    Args as torch.nn.LSTM: ``input_size``, ``hidden_size``, ``num_layers=1``, ``bias=True``,
    ``batch_first=False``, ``dropout=0.0`` (between layers), ``bidirectional=False``. Not supported:
    ``proj_size``, PackedSequence. Cell ``k = layer * D + direction`` is ``cells[k]``.
    ``forward(input, (h_0, c_0)=None) -> (output, (h_n, c_n))`` with the shapes in the module docstring.
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
    ) -> None:
        def make_cell(n_in: int) -> _VariantCell:
            return LayerNormLSTMCell(n_in, hidden_size, bias)

        super().__init__(make_cell, input_size, hidden_size, num_layers, batch_first, dropout, bidirectional)


class LayerNormGRU(_CellStack):
    """A stack of :class:`LayerNormGRUCell`, used like torch.nn.GRU.

    Args as torch.nn.GRU (``input_size``, ``hidden_size``, ``num_layers``, ``bias``, ``batch_first``,
    ``dropout``, ``bidirectional``). Not supported: PackedSequence.
    ``forward(input, h_0=None) -> (output, h_n)`` with the shapes in the module docstring.
    """

    _has_cell_state = False

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
    ) -> None:
        def make_cell(n_in: int) -> _VariantCell:
            return LayerNormGRUCell(n_in, hidden_size, bias)

        super().__init__(make_cell, input_size, hidden_size, num_layers, batch_first, dropout, bidirectional)


class ZoneoutLSTM(_CellStack):
    """A stack of :class:`ZoneoutLSTMCell` (Krueger et al. 2017), used like torch.nn.LSTM.

    Args as torch.nn.LSTM plus ``zoneout_h``, ``zoneout_c`` (probabilities a unit of h / c keeps its
    previous value; fresh masks every step in training, expectations in eval). With both 0 this is
    torch.nn.LSTM. Not supported: ``proj_size``, PackedSequence.
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
        zoneout_h: float = 0.0,
        zoneout_c: float = 0.0,
    ) -> None:
        def make_cell(n_in: int) -> _VariantCell:
            return ZoneoutLSTMCell(n_in, hidden_size, bias, zoneout_h, zoneout_c)

        super().__init__(make_cell, input_size, hidden_size, num_layers, batch_first, dropout, bidirectional)
        self.zoneout_h, self.zoneout_c = float(zoneout_h), float(zoneout_c)


class PeepholeLSTM(_CellStack):
    """A stack of :class:`PeepholeLSTMCell` (Gers et al. 2000, 2002), used like torch.nn.LSTM.

    Args as torch.nn.LSTM plus ``coupled`` (input gate = 1 - forget gate, Greff et al. 2017). Not
    supported: ``proj_size``, PackedSequence.
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
        coupled: bool = False,
    ) -> None:
        def make_cell(n_in: int) -> _VariantCell:
            return PeepholeLSTMCell(n_in, hidden_size, bias, coupled)

        super().__init__(make_cell, input_size, hidden_size, num_layers, batch_first, dropout, bidirectional)
        self.coupled = coupled


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
        owner = type(self).__name__
        _check_flag(owner, "bias", bias)
        _check_prob(owner, "dropout_input", dropout_input, below_one=True)
        _check_prob(owner, "dropout_state", dropout_state, below_one=True)
        self.bias, self.dropout_input, self.dropout_state = bias, float(dropout_input), float(dropout_state)
        self._suffixes = []
        for layer in range(num_layers):
            for direction in range(self.num_directions):
                suffix = f"_l{layer}" + ("_reverse" if direction else "")
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
# Wrappers and helpers that work on any LSTM (rnnlab's or torch.nn's)
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
            nested names work too, e.g. ``"cells.0.weight_hh"`` for :class:`LayerNormLSTM`.
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
        _check_prob(owner, "dropout", dropout)
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


def lstm_with_cell_states(
    lstm: nn.Module, input: Tensor, hx: State | None = None
) -> tuple[Tensor, State, Tensor]:
    """Run an LSTM module's own weights step by step and also return the cell state of every step.

    torch.nn.LSTM returns ``c_n`` only; this steps ``rnnlab.nn.functional.lstm`` with the module's
    ``weight_ih_l{k}``, ``weight_hh_l{k}``, ``bias_*``, ``weight_hr_l{k}`` (projections), in the module's
    own ``batch_first``, so ``output`` and ``(h_n, c_n)`` equal the module's own call. Works on torch.nn.LSTM
    and rnnlab.nn.recurrent.LSTM (and :class:`VariationalDropoutLSTM` in eval).

    Returns ``(output, (h_n, c_n), c_all)``: ``output`` and ``(h_n, c_n)`` as the module returns them, and
    ``c_all`` the *last layer's* cell states at every step, laid out like ``output``: (T, B, D*H), or
    (B, T, D*H) if ``batch_first``, or (T, D*H) unbatched. With ``bidirectional=True`` the last ``H``
    features are the reverse direction's state at each position, so ``c_all[-1, :, :H]`` is the forward
    direction's ``c_n`` and ``c_all[0, :, H:]`` the reverse one's (time-major layout).

    Not supported: PackedSequence. In training with ``dropout > 0`` between layers the dropout masks are
    drawn here, so they differ from the module's own call's.

    Example::

        >>> import torch
        >>> lstm = torch.nn.LSTM(4, 8, batch_first=True)
        >>> output, (h_n, c_n), c_all = lstm_with_cell_states(lstm, torch.randn(2, 5, 4))
        >>> c_all.shape
        torch.Size([2, 5, 8])
        >>> torch.allclose(c_all[:, -1], c_n[0])
        True
    """
    owner = "lstm_with_cell_states"
    if (
        not isinstance(lstm, nn.Module)
        or getattr(lstm, "mode", "LSTM") != "LSTM"
        or not hasattr(lstm, "weight_ih_l0")
    ):
        raise TypeError(
            f"{owner}: lstm must be an LSTM module (torch.nn.LSTM or rnnlab's), got {type(lstm).__name__}"
        )
    num_directions = 2 if lstm.bidirectional else 1
    proj_size = getattr(lstm, "proj_size", 0)
    x, states, unbatched = _prepare(
        owner,
        input,
        hx,
        input_size=lstm.input_size,
        hidden_size=lstm.hidden_size,
        num_states=lstm.num_layers * num_directions,
        batch_first=lstm.batch_first,
        has_cell_state=True,
        proj_size=proj_size,
    )
    steps: list[Step] = []
    for layer in range(lstm.num_layers):
        for direction in range(num_directions):
            suffix = f"_l{layer}" + ("_reverse" if direction else "")
            steps.append(
                partial(
                    F.lstm,
                    W_ih=getattr(lstm, f"weight_ih{suffix}"),
                    W_hh=getattr(lstm, f"weight_hh{suffix}"),
                    b_ih=getattr(lstm, f"bias_ih{suffix}", None),
                    b_hh=getattr(lstm, f"bias_hh{suffix}", None),
                    W_hr=getattr(lstm, f"weight_hr{suffix}") if proj_size else None,
                )
            )
    dropout = float(getattr(lstm, "dropout", 0.0))
    output, finals, per_step = _run_layers(steps, x, states, num_directions, dropout, lstm.training)
    c_all = torch.cat(
        [torch.stack([c for _, c in seq]) for seq in per_step], dim=2
    )  # D x (T, B, H) -> (T, B, D*H)
    output, state = _finish(
        output, finals, batch_first=lstm.batch_first, unbatched=unbatched, has_cell_state=True
    )
    return output, state, _to_caller_layout(c_all, lstm.batch_first, unbatched)


# Layers by name, for configs (WeightDrop wraps any of these; it is not a layer of its own).
VARIANTS: dict[str, type[nn.Module]] = {
    "layernorm_lstm": LayerNormLSTM,
    "layernorm_gru": LayerNormGRU,
    "zoneout_lstm": ZoneoutLSTM,
    "peephole_lstm": PeepholeLSTM,
    "variational_dropout_lstm": VariationalDropoutLSTM,
    "min_gru": MinGRU,
    "min_lstm": MinLSTM,
}
