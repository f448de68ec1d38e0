"""Recurrent variants torch.nn lacks: layer-normalised and peephole / coupled-gate cells and layers, an
LSTM run that returns every cell state, and :data:`VARIANTS`, the registry of every variant layer by name.

The regularizers (zoneout, variational dropout, weight drop) live in :mod:`rnnlab.nn.regularizers` and
are re-exported here; the parallel-scan models (minGRU, minLSTM) live in :mod:`rnnlab.nn.scan`, and
Cho et al.'s GRU (reset gate before the recurrent product; torch.nn.GRU's parameters, PackedSequence
supported) in :mod:`rnnlab.nn.cho_gru`.

Cells are ``cell(x, state) -> state`` and layers are used like torch.nn's::

    output, h_n = layer(input, hx)             # GRU-like
    output, (h_n, c_n) = layer(input, (h_0, c_0))  # LSTM-like

with ``input`` (T, B, H_in), or (B, T, H_in) if ``batch_first``, or unbatched (T, H_in); ``output``
(T, B, D*H) laid out like the input; ``h_n``, ``c_n`` (L*D, B, H). Every layer takes ``num_layers``,
``batch_first``, ``bidirectional`` and ``dropout`` (between layers, as torch.nn). PackedSequence is not
supported and raises a TypeError: pass a padded tensor and use the lengths where the output is read.

All layers run on the one layer stack of :mod:`rnnlab.nn._stack`, as torch.nn's drop-ins do; each cell's
step walks time in :func:`rnnlab.nn._variant_base._run_steps`, and the layers differ only in that step.
Dimension legend (shared across rnnlab): ``B`` batch, ``T`` time, ``H_in`` input size, ``H`` hidden size,
``L`` layers, ``D`` directions (2 if bidirectional).

References:
    Ba, Kiros & Hinton (2016), Layer normalization.
    Gers, Schmidhuber & Cummins (2000), Learning to forget: continual prediction with LSTM.
    Gers, Schraudolph & Schmidhuber (2002), Learning precise timing with LSTM recurrent networks.
    Greff et al. (2017), LSTM: a search space odyssey (the coupled input-forget gate, CIFG).
"""

from __future__ import annotations

from functools import partial

import torch
from torch import Tensor, nn

from rnnlab.nn import functional as F
from rnnlab.nn._checks import check_flag
from rnnlab.nn._stack import param_suffix, run_stack
from rnnlab.nn._variant_base import (
    State,
    Step,
    _CellStack,
    _finish,
    _prepare,
    _run_steps,
    _to_caller_layout,
    _TorchLSTMParams,
    _uniform_,
    _VariantCell,
)
from rnnlab.nn.cho_gru import ChoGRU
from rnnlab.nn.fused import _layernorm_lstm as _ln_fused
from rnnlab.nn.regularizers import VariationalDropoutLSTM, WeightDrop, ZoneoutLSTM, ZoneoutLSTMCell
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


# ---------------------------------------------------------------------------------------------------
# Cells
# ---------------------------------------------------------------------------------------------------


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
        check_flag("coupled", coupled)
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


class LayerNormLSTM(_CellStack):
    """A stack of :class:`LayerNormLSTMCell` (Ba, Kiros & Hinton 2016), used like torch.nn.LSTM.

    Args as torch.nn.LSTM: ``input_size``, ``hidden_size``, ``num_layers=1``, ``bias=True``,
    ``batch_first=False``, ``dropout=0.0`` (between layers), ``bidirectional=False``. Not supported:
    ``proj_size``, PackedSequence. Cell ``k = layer * D + direction`` is ``cells[k]``.
    ``forward(input, (h_0, c_0)=None) -> (output, (h_n, c_n))`` with the shapes in the module docstring.

    The fused path: on CUDA tensors (when ``triton`` imports; on CPU tensors too under
    ``RNNLAB_FUSED_BACKEND=triton``, which runs the kernels under Triton's interpreter) in float32,
    float64, bfloat16 or float16 (the state and gate math in float32), every direction runs
    :mod:`rnnlab.nn.fused._triton_layernorm`: the input side of all steps as one product and one row-wise
    LayerNorm launch, then per step one product :math:`h_{t-1} W_{hh}^T` and *one* Triton kernel for
    LN_hh, the gates, LN_c and :math:`h_t`, and a hand-written backward with one kernel per step. Same
    outputs, states and gradients as the readable walk of the cells' ``_step`` (tested under the
    interpreter), which runs everywhere else: CPU tensors, LayerNorms without a gain or shift, autocast,
    torch.func transforms, forward-mode AD, ``torch.compile`` tracing, and when ``use_fused`` is False
    (an attribute, default True). A double backward (``create_graph=True``) through the fused path
    differentiates the readable equations, at their cost. The choice is made once per call, for every
    layer and direction.
    """

    _cell = LayerNormLSTMCell
    use_fused = True  # set on an instance to False for the readable path everywhere

    def forward(self, input: Tensor, hx: State | None = None) -> tuple[Tensor, State]:
        """As :meth:`_StackedRecurrent.forward`; the fused path where it applies (see the class)."""
        x, state, unbatched = _prepare(
            type(self).__name__,
            input,
            hx,
            input_size=self.input_size,
            hidden_size=self.hidden_size,
            num_states=self.num_layers * self.num_directions,
            batch_first=self.batch_first,
            has_cell_state=True,
        )
        D = self.num_directions
        if self.use_fused and _ln_fused.supports(x, (state[0], state[1]), self.cells):

            def run(layer: int, direction: int, x: Tensor, s: tuple[Tensor, ...]) -> tuple[Tensor, tuple]:
                return _ln_fused.run_direction(self.cells[layer * D + direction], x, s, direction == 1)

            output, final = run_stack(run, x, state, self.num_layers, D, self.dropout, self.training)
        else:
            output, final = _run_steps(self._steps(x), x, state, D, self.dropout, self.training)
        return _finish(output, final, batch_first=self.batch_first, unbatched=unbatched)


class LayerNormGRU(_CellStack):
    """A stack of :class:`LayerNormGRUCell`, used like torch.nn.GRU.

    Args as torch.nn.GRU (``input_size``, ``hidden_size``, ``num_layers``, ``bias``, ``batch_first``,
    ``dropout``, ``bidirectional``). Not supported: PackedSequence.
    ``forward(input, h_0=None) -> (output, h_n)`` with the shapes in the module docstring.
    """

    _cell = LayerNormGRUCell


class PeepholeLSTM(_CellStack):
    """A stack of :class:`PeepholeLSTMCell` (Gers et al. 2000, 2002), used like torch.nn.LSTM.

    Args as torch.nn.LSTM plus the keyword ``coupled=False`` (input gate = 1 - forget gate, Greff et al.
    2017), given to every cell. Not supported: ``proj_size``, PackedSequence.
    """

    _cell = PeepholeLSTMCell

    @property
    def coupled(self) -> bool:
        return self.cells[0].coupled


# ---------------------------------------------------------------------------------------------------
# Every-step cell states of any LSTM (rnnlab's or torch.nn's), and the registry
# ---------------------------------------------------------------------------------------------------


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
    x, hx, unbatched = _prepare(
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
            suffix = param_suffix(layer, direction)
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
    per_step: dict[tuple[int, int], list[State]] = {}
    output, final = _run_steps(steps, x, hx, num_directions, dropout, lstm.training, per_step)
    last = lstm.num_layers - 1
    c_all = torch.cat(
        [torch.stack([c for _, c in per_step[(last, d)]]) for d in range(num_directions)], dim=2
    )  # D x (T, B, H) -> (T, B, D*H)
    output, state = _finish(output, final, batch_first=lstm.batch_first, unbatched=unbatched)
    return output, state, _to_caller_layout(c_all, lstm.batch_first, unbatched)


# Layers by name, for configs (WeightDrop wraps any of these; it is not a layer of its own).
VARIANTS: dict[str, type[nn.Module]] = {
    "layernorm_lstm": LayerNormLSTM,
    "layernorm_gru": LayerNormGRU,
    "cho_gru": ChoGRU,
    "zoneout_lstm": ZoneoutLSTM,
    "peephole_lstm": PeepholeLSTM,
    "variational_dropout_lstm": VariationalDropoutLSTM,
    "min_gru": MinGRU,
    "min_lstm": MinLSTM,
}
