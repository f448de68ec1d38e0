"""minGRU and minLSTM: recurrences without h in their gates, so all T steps run as one parallel scan.

Feng et al. (2024) drop the previous hidden state from every gate of the GRU and the LSTM. What is left
is a linear recurrence ``h_t = a_t * h_{t-1} + b_t`` whose coefficients depend on ``x_t`` only, and such a
recurrence can be computed for all t at once with cumulative sums instead of a loop over time. Working in
log space (Heinsen 2023) keeps the products of many gates ``a_1 a_2 ... a_t`` from underflowing.

Each model has two forms that compute the same numbers (tested to float64 tolerance):

* ``mode="sequential"``: the equations, one step at a time (this is also what :meth:`step` runs, for
  decoding one token at a time);
* ``mode="parallel"``: :func:`parallel_scan_log` over the whole sequence.

Dimension legend (shared across rnnlab): ``B`` batch, ``T`` time, ``H_in`` input size, ``H`` hidden size,
``L`` layers.

References:
    Feng, Tung, Ahmed, Bengio & Hajimirsadeghi (2024), Were RNNs all we needed? (minGRU, minLSTM, g).
    Heinsen (2023), Efficient parallelization of a ubiquitous sequential computation (the log-space scan).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as TF

__all__ = ["g", "log_g", "parallel_scan_log", "MinGRUCell", "MinLSTMCell", "MinGRU", "MinLSTM"]

MODES = ("parallel", "sequential")


def g(x: Tensor) -> Tensor:
    r"""The paper's positive activation for the candidate state (in place of tanh).

    .. math::
        g(x) = x + \tfrac12 \ \text{if } x \ge 0, \qquad g(x) = \sigma(x) \ \text{otherwise}

    Continuous (both sides give 1/2 at 0) and always > 0, so :math:`\log g(x)` exists.
    """
    return torch.where(x >= 0, x + 0.5, torch.sigmoid(x))


def log_g(x: Tensor) -> Tensor:
    r""":math:`\log g(x)` computed without forming ``g(x)``: :math:`\log(x + \tfrac12)` for
    :math:`x \ge 0`, :math:`\log\sigma(x) = -\mathrm{softplus}(-x)` otherwise.

    ``relu`` keeps the unused branch of ``torch.where`` finite, so its gradient is not NaN.
    """
    return torch.where(x >= 0, torch.log(TF.relu(x) + 0.5), -TF.softplus(-x))


def parallel_scan_log(log_a: Tensor, log_b: Tensor, h0: Tensor | None = None) -> Tensor:
    r"""All steps of :math:`h_t = a_t \odot h_{t-1} + b_t` (t = 1..T) at once, from :math:`\log a_t` and
    :math:`\log b_t` (so :math:`a_t, b_t > 0`).

    Unrolling the recurrence,

    .. math::
        a^*_t &= \textstyle\sum_{s \le t} \log a_s \\
        h_t &= e^{a^*_t} h_0 + \textstyle\sum_{s \le t} e^{a^*_t - a^*_s} b_s
             = e^{a^*_t} h_0 + \exp\big(a^*_t + \operatorname{logcumsumexp}_{s \le t}(\log b_s - a^*_s)\big)

    ``cumsum`` gives :math:`a^*` and ``logcumsumexp`` the sum, both over time in :math:`O(\log T)` depth.
    Heinsen (2023) puts :math:`\log h_0` in front of :math:`\log b`, which needs :math:`h_0 > 0`; here
    :math:`h_0` enters linearly, outside the logs, so it may have any sign (and ``None`` means zeros).

    Shapes: ``log_a``, ``log_b`` (B, T, H); ``h0`` (B, H) or None -> ``h`` (B, T, H).
    """
    if log_a.shape != log_b.shape or log_a.dim() != 3:
        raise ValueError(
            f"parallel_scan_log: log_a and log_b must both be (B, T, H), got {tuple(log_a.shape)} "
            f"and {tuple(log_b.shape)}"
        )
    a_star = torch.cumsum(log_a, dim=1)  # (B, T, H)
    h = torch.exp(a_star + torch.logcumsumexp(log_b - a_star, dim=1))  # (B, T, H)
    if h0 is not None:
        h = h + torch.exp(a_star) * h0.unsqueeze(1)  # (B, T, H) + (B, T, H) * (B, 1, H)
    return h


def _check_size(owner: str, name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{owner}: {name} must be an int >= 1, got {value!r}")


class _MinCell(nn.Module):
    """Sizes, checks and the two forms shared by the minGRU and minLSTM cells."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        owner = type(self).__name__
        _check_size(owner, "input_size", input_size)
        _check_size(owner, "hidden_size", hidden_size)
        self.input_size = input_size
        self.hidden_size = hidden_size

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}"

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        """One step: ``input`` (B, H_in), ``hx`` (B, H) (zeros if None) -> ``h`` (B, H)."""
        owner = type(self).__name__
        if input.dim() != 2 or input.shape[1] != self.input_size:
            raise ValueError(
                f"{owner}: input must be (B, H_in={self.input_size}), got shape {tuple(input.shape)}"
            )
        expected = (input.shape[0], self.hidden_size)
        if hx is None:
            hx = input.new_zeros(expected)
        elif tuple(hx.shape) != expected:
            raise ValueError(f"{owner}: hx must have shape {expected} (B, H), got {tuple(hx.shape)}")
        return self._step(input, hx)

    def sequential(self, x: Tensor, h0: Tensor | None = None) -> Tensor:
        """The recurrence as a loop: ``x`` (B, T, H_in), ``h0`` (B, H) or None -> ``h`` (B, T, H)."""
        h = x.new_zeros(x.shape[0], self.hidden_size) if h0 is None else h0  # (B, H)
        outputs = []
        for t in range(x.shape[1]):
            h = self._step(x[:, t], h)
            outputs.append(h)
        return torch.stack(outputs, dim=1)  # T x (B, H) -> (B, T, H)

    def _step(self, x: Tensor, h_prev: Tensor) -> Tensor:
        raise NotImplementedError

    def parallel(self, x: Tensor, h0: Tensor | None = None) -> Tensor:
        raise NotImplementedError


class MinGRUCell(_MinCell):
    r"""One minGRU layer (Feng et al. 2024): a GRU whose gates do not see :math:`h_{t-1}`.

    .. math::
        z_t &= \sigma(\mathrm{Linear}_z(x_t)) \\
        \tilde h_t &= g(\mathrm{Linear}_h(x_t)) \\
        h_t &= (1 - z_t) \odot h_{t-1} + z_t \odot \tilde h_t

    In log space (for :meth:`parallel`): :math:`\log(1 - z_t) = -\mathrm{softplus}(k_t)`,
    :math:`\log z_t = -\mathrm{softplus}(-k_t)` with :math:`k_t = \mathrm{Linear}_z(x_t)`, and
    :math:`\log \tilde h_t = \log g(\cdot)`, so :math:`a_t = 1 - z_t`, :math:`b_t = z_t \tilde h_t`.

    Note the paper's convention: :math:`z_t` weighs the *new* candidate (torch.nn's GRU weighs the old state).

    ``forward(x (B, H_in), hx (B, H)=None) -> h (B, H)`` is one step; :meth:`sequential` and
    :meth:`parallel` run a whole sequence (B, T, H_in) -> (B, T, H).
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True) -> None:
        super().__init__(input_size, hidden_size)
        self.linear_z = nn.Linear(input_size, hidden_size, bias=bias)
        self.linear_h = nn.Linear(input_size, hidden_size, bias=bias)

    def _step(self, x: Tensor, h_prev: Tensor) -> Tensor:
        z = torch.sigmoid(self.linear_z(x))
        h_tilde = g(self.linear_h(x))
        return (1 - z) * h_prev + z * h_tilde

    def parallel(self, x: Tensor, h0: Tensor | None = None) -> Tensor:
        """All steps by :func:`parallel_scan_log`: ``x`` (B, T, H_in), ``h0`` (B, H) -> ``h`` (B, T, H)."""
        k = self.linear_z(x)  # (B, T, H)
        log_z = -TF.softplus(-k)
        log_one_minus_z = -TF.softplus(k)
        log_h_tilde = log_g(self.linear_h(x))  # (B, T, H)
        return parallel_scan_log(log_one_minus_z, log_z + log_h_tilde, h0)


class MinLSTMCell(_MinCell):
    r"""One minLSTM layer (Feng et al. 2024): an LSTM whose gates do not see :math:`h_{t-1}`, with the
    forget and input gates normalised to sum to one and no separate cell state.

    .. math::
        f_t &= \sigma(\mathrm{Linear}_f(x_t)), \quad i_t = \sigma(\mathrm{Linear}_i(x_t)) \\
        \tilde h_t &= g(\mathrm{Linear}_h(x_t)) \\
        f'_t &= \frac{f_t}{f_t + i_t}, \quad i'_t = \frac{i_t}{f_t + i_t} \\
        h_t &= f'_t \odot h_{t-1} + i'_t \odot \tilde h_t

    In log space (for :meth:`parallel`), with :math:`d_t = \log i_t - \log f_t
    = \mathrm{softplus}(-k^f_t) - \mathrm{softplus}(-k^i_t)`:
    :math:`\log f'_t = -\mathrm{softplus}(d_t)` and :math:`\log i'_t = -\mathrm{softplus}(-d_t)`.

    ``forward(x (B, H_in), hx (B, H)=None) -> h (B, H)`` is one step; :meth:`sequential` and
    :meth:`parallel` run a whole sequence (B, T, H_in) -> (B, T, H).
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True) -> None:
        super().__init__(input_size, hidden_size)
        self.linear_f = nn.Linear(input_size, hidden_size, bias=bias)
        self.linear_i = nn.Linear(input_size, hidden_size, bias=bias)
        self.linear_h = nn.Linear(input_size, hidden_size, bias=bias)

    def _step(self, x: Tensor, h_prev: Tensor) -> Tensor:
        f = torch.sigmoid(self.linear_f(x))
        i = torch.sigmoid(self.linear_i(x))
        h_tilde = g(self.linear_h(x))
        f_prime = f / (f + i)
        i_prime = i / (f + i)
        return f_prime * h_prev + i_prime * h_tilde

    def parallel(self, x: Tensor, h0: Tensor | None = None) -> Tensor:
        """All steps by :func:`parallel_scan_log`: ``x`` (B, T, H_in), ``h0`` (B, H) -> ``h`` (B, T, H)."""
        d = TF.softplus(-self.linear_f(x)) - TF.softplus(-self.linear_i(x))  # log i - log f, (B, T, H)
        log_f_prime = -TF.softplus(d)
        log_i_prime = -TF.softplus(-d)
        log_h_tilde = log_g(self.linear_h(x))  # (B, T, H)
        return parallel_scan_log(log_f_prime, log_i_prime + log_h_tilde, h0)


class _MinRNN(nn.Module):
    """A stack of min cells: the layer API shared by :class:`MinGRU` and :class:`MinLSTM`."""

    _cell: type[_MinCell] = _MinCell

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = True,
        dropout: float = 0.0,
        mode: str = "parallel",
    ) -> None:
        super().__init__()
        owner = type(self).__name__
        _check_size(owner, "input_size", input_size)
        _check_size(owner, "hidden_size", hidden_size)
        _check_size(owner, "num_layers", num_layers)
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout <= 1:
            raise ValueError(f"{owner}: dropout must be a probability in [0, 1], got {dropout!r}")
        if mode not in MODES:
            raise ValueError(f"{owner}: mode must be one of {MODES}, got {mode!r}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.mode = mode
        sizes = [input_size] + [hidden_size] * (num_layers - 1)
        self.cells = nn.ModuleList(self._cell(n_in, hidden_size, bias) for n_in in sizes)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}"
        return s + f", batch_first={self.batch_first}, dropout={self.dropout}, mode={self.mode!r}"

    def _check_state(self, h: Tensor | None, batch_size: int, ref: Tensor) -> Tensor:
        expected = (self.num_layers, batch_size, self.hidden_size)
        if h is None:
            return ref.new_zeros(expected)
        if tuple(h.shape) != expected:
            raise ValueError(
                f"{type(self).__name__}: h0 must have shape {expected} (L, B, H), got {tuple(h.shape)}"
            )
        return h

    def _between_layers(self, x: Tensor, layer: int) -> Tensor:
        # As torch.nn: dropout on every layer's output except the last.
        if layer < self.num_layers - 1 and self.dropout > 0 and self.training:
            x = TF.dropout(x, self.dropout, training=True)
        return x

    def forward(self, input: Tensor, h0: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Run the sequence in ``self.mode``.

        Shapes: ``input`` (B, T, H_in) if ``batch_first`` (the default) else (T, B, H_in); ``h0``
        (L, B, H) or None (zeros) -> ``output`` (B, T, H) (or (T, B, H)), ``h_n`` (L, B, H).
        """
        owner = type(self).__name__
        if not isinstance(input, Tensor):
            raise TypeError(
                f"{owner} takes a padded Tensor, not {type(input).__name__} (PackedSequence is not supported)"
            )
        if input.dim() != 3 or input.shape[2] != self.input_size:
            layout = "(B, T, H_in)" if self.batch_first else "(T, B, H_in)"
            raise ValueError(
                f"{owner}: input must be {layout} with H_in={self.input_size}, got shape {tuple(input.shape)}"
            )
        x = input if self.batch_first else input.transpose(0, 1)  # (T, B, H_in) -> (B, T, H_in)
        h0 = self._check_state(h0, x.shape[0], x)  # (L, B, H)
        finals = []
        for layer, cell in enumerate(self.cells):
            run = cell.parallel if self.mode == "parallel" else cell.sequential
            x = run(x, h0[layer])  # (B, T, H)
            finals.append(x[:, -1])
            x = self._between_layers(x, layer)
        output = x if self.batch_first else x.transpose(0, 1)  # (B, T, H) -> (T, B, H)
        return output, torch.stack(finals)  # (L, B, H)

    def step(self, x_t: Tensor, h_prev: Tensor | None = None) -> Tensor:
        """One time step through all layers, for decoding a token at a time.

        Shapes: ``x_t`` (B, H_in), ``h_prev`` (L, B, H) or None (zeros) -> ``h`` (L, B, H); the top
        layer's output is ``h[-1]``.
        """
        if x_t.dim() != 2 or x_t.shape[1] != self.input_size:
            raise ValueError(
                f"{type(self).__name__}.step: x_t must be (B, H_in={self.input_size}), got {tuple(x_t.shape)}"
            )
        h_prev = self._check_state(h_prev, x_t.shape[0], x_t)
        states, x = [], x_t
        for layer, cell in enumerate(self.cells):
            x = cell._step(x, h_prev[layer])  # (B, H)
            states.append(x)
            x = self._between_layers(x, layer)
        return torch.stack(states)  # (L, B, H)


class MinGRU(_MinRNN):
    r"""A stack of :class:`MinGRUCell` layers (Feng et al. 2024), batch-first by default.

    Per layer, :math:`h_t = (1 - z_t) \odot h_{t-1} + z_t \odot g(\mathrm{Linear}_h(x_t))` with
    :math:`z_t = \sigma(\mathrm{Linear}_z(x_t))`; layer :math:`l > 0` reads layer :math:`l-1`'s outputs
    (with ``dropout`` between layers in training, as torch.nn). The paper's deeper models add residual
    connections, normalisation and MLPs around these layers; that is left to the model that uses them.

    Args:
        input_size: H_in. hidden_size: H. num_layers: L. bias: biases in the linear maps.
        batch_first: input/output (B, T, ·) if True (default), else (T, B, ·).
        dropout: on each layer's output except the last, in training.
        mode: ``"parallel"`` (log-space scan, default) or ``"sequential"`` (a loop over time); same numbers.

    ``forward(input, h0=None) -> (output, h_n)``: output (B, T, H), h_n (L, B, H).
    ``step(x_t (B, H_in), h_prev (L, B, H)=None) -> h (L, B, H)`` for decoding.
    Not supported: bidirectional (these are causal models), PackedSequence, unbatched input.

    Example::

        >>> import torch
        >>> model = MinGRU(8, 16, num_layers=2)
        >>> x = torch.randn(3, 5, 8)
        >>> output, h_n = model(x)
        >>> output.shape, h_n.shape
        (torch.Size([3, 5, 16]), torch.Size([2, 3, 16]))
        >>> h = None
        >>> for t in range(5):
        ...     h = model.step(x[:, t], h)
        >>> torch.allclose(h, h_n, atol=1e-5)
        True
    """

    _cell = MinGRUCell


class MinLSTM(_MinRNN):
    r"""A stack of :class:`MinLSTMCell` layers (Feng et al. 2024), batch-first by default.

    Per layer, :math:`h_t = f'_t \odot h_{t-1} + i'_t \odot g(\mathrm{Linear}_h(x_t))` with the normalised
    gates :math:`f'_t = f_t / (f_t + i_t)`, :math:`i'_t = i_t / (f_t + i_t)`; there is no cell state, so
    the state is ``h`` alone (L, B, H). Arguments, shapes and what is not supported are as :class:`MinGRU`.

    Example::

        >>> import torch
        >>> model = MinLSTM(8, 16, mode="sequential")
        >>> output, h_n = model(torch.randn(3, 5, 8))
        >>> torch.equal(output[:, -1], h_n[0])
        True
    """

    _cell = MinLSTMCell
