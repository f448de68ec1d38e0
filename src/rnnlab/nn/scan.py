"""minGRU and minLSTM: recurrences without h in their gates, so all T steps run as one chunked scan.

Feng et al. (2024) drop the previous hidden state from every gate of the GRU and the LSTM. What is left
is a linear recurrence ``h_t = a_t * h_{t-1} + b_t`` whose coefficients depend on ``x_t`` only, so the
gates of all T steps can be computed without waiting for h, and only the cheap update has to walk time.

Each model has two forms that compute the same numbers (tested to float64 tolerance):

* ``mode="sequential"``: the equations, one step at a time, after one matmul per gate for all T at once
  (:meth:`step` runs the same equations, for decoding one token at a time);
* ``mode="parallel"``: a chunked (two-level) scan, the blocked scan of a first-order linear recurrence
  (Blelloch 1990, sec. 1.4). Cut time into N chunks of C steps. (1) Run the recurrence from a zero state
  inside every chunk at once: C steps, each over all N chunks, with the gate products ``a_1 ... a_c``
  alongside. (2) Carry the state across chunks: N steps of one (B, H) update. (3) Add each chunk's start
  state, carried through its gate products, to every step of it. That is about 2 * sqrt(T) steps of
  wide tensor work instead of T steps of narrow work. Every number it forms is a step of the recurrence
  or a product of at most C gates in [0, 1], so it needs no log space: a product that underflows to 0
  stands for a start state that the loop, too, has decayed below float resolution.

Why not the log-space scan of Heinsen (2023), ``h = exp(a* + logcumsumexp(log b - a*))``, which this
module used before: its depth is O(log T), but on a CPU ``logcumsumexp`` does an exp and a log1p per
element, one element after another (0.31 s of CPU for one (64, 1024, 128) tensor, more than the whole
sequential forward), and the formula makes some ten full (B, T, H) temporaries. Measured with one
thread it was 2-4x *slower* than the loop at every T from 64 to 4096.
:func:`parallel_scan_log` keeps its signature and now runs the chunked scan on ``exp(log a), exp(log b)``.

Dimension legend (shared across rnnlab): ``B`` batch, ``T`` time, ``H_in`` input size, ``H`` hidden size,
``L`` layers; here also ``C`` chunk length and ``N = T // C`` chunks.

References:
    Feng, Tung, Ahmed, Bengio & Hajimirsadeghi (2024), Were RNNs all we needed? (minGRU, minLSTM, g).
    Blelloch (1990), Prefix sums and their applications, sec. 1.4 (linear recurrences as scans).
    Heinsen (2023), Efficient parallelization of a ubiquitous sequential computation (the log-space scan).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as TF

from rnnlab.nn._checks import check_choice, check_dropout, check_flag, check_sequence_length, check_size
from rnnlab.nn._stack import run_stack, zero_state

__all__ = ["g", "log_g", "parallel_scan_log", "MinGRUCell", "MinLSTMCell", "MinGRU", "MinLSTM"]

MODES = ("parallel", "sequential")

# Maps the inputs of one step (B, ·), or of one step of every chunk (B*N, ·), to that step's (a, b).
Gates = Callable[..., tuple[Tensor, Tensor]]


def g(x: Tensor) -> Tensor:
    r"""The paper's positive activation for the candidate state (in place of tanh).

    .. math::
        g(x) = x + \tfrac12 \ \text{if } x \ge 0, \qquad g(x) = \sigma(x) \ \text{otherwise}

    Continuous (both sides give 1/2 at 0) and always > 0, so :math:`\log g(x)` exists.

    Computed as :math:`\max(x, 0) + \sigma(\min(x, 0))`, the same numbers as the two branches (each side
    adds an exact 0 or :math:`\sigma(0) = \tfrac12`) at a third of the cost of ``torch.where`` on a CPU.
    At the kink :math:`x = 0` its gradient is the left derivative 1/4.
    """
    return TF.relu(x) + torch.sigmoid(x.clamp(max=0))


def log_g(x: Tensor) -> Tensor:
    r""":math:`\log g(x)` computed without forming ``g(x)``: :math:`\log(x + \tfrac12)` for
    :math:`x \ge 0`, :math:`\log\sigma(x) = -\mathrm{softplus}(-x)` otherwise. For callers of
    :func:`parallel_scan_log`; the cells need no logs.

    ``relu`` keeps the unused branch of ``torch.where`` finite, so its gradient is not NaN.
    """
    return torch.where(x >= 0, torch.log(TF.relu(x) + 0.5), -TF.softplus(-x))


def _check_chunk_size(chunk_size: int | None) -> None:
    if chunk_size is not None:
        check_size("chunk_size", chunk_size)


def _linear_step(a: Tensor, b: Tensor, h_prev: Tensor) -> Tensor:
    """``a * h_prev + b``, the recurrence's one update, as one fused op; every form runs this."""
    return torch.addcmul(b, a, h_prev)


def _default_chunk_size(T: int) -> int:
    # ceil(sqrt(T)): C steps in the inner loop, N ~ C in the outer. The inner steps do more ops, which
    # argues for smaller C, but their (B*N, H) tensors must stay cache-sized, which argues for larger;
    # at T=1024 (B=64, H=128, one thread) C = 16, 32 and 64 measured within noise of each other.
    return math.isqrt(T - 1) + 1 if T > 0 else 1


def _chunked_scan(
    gates: Gates, inputs: Sequence[Tensor], h0: Tensor | None, chunk_size: int | None = None
) -> Tensor:
    r"""All steps of :math:`h_t = a_t \odot h_{t-1} + b_t`, with :math:`(a_t, b_t)` =
    ``gates(*(u[:, t] for u in inputs))``, by the two-level scan described in the module docstring.

    ``gates`` is called on step c of every chunk at once, with (B*N, ·) rows in place of (B, ·), and on
    the last ``T mod C`` steps one at a time: it must treat rows independently (elementwise and linear
    maps do; 2-D rows make ``nn.Linear`` one ``addmm``). Computing the gates inside the loop keeps every
    temporary at (B*N, H). Full (B, T, H) temporaries were much of what made the log-space scan slow:
    glibc always mmaps blocks over 32 MiB (one (B, T, H) at T=1024, B=64, H=128) and unmaps them when
    they are freed, so each such temporary is fresh memory that the OS maps in page by page.

    Shapes: each of ``inputs`` (B, T, ·); ``h0`` (B, H) or None (zeros) -> ``h`` (B, T, H).
    """
    B, T = inputs[0].shape[:2]
    C = _default_chunk_size(T) if chunk_size is None else chunk_size
    N, rest = divmod(T, C)
    state = h0  # (B, H); None is zeros
    pieces = []
    if N > 0:
        # 1. Inside every chunk from a zero state, all chunks at once: C steps over (B*N, H).
        columns = [u[:, : N * C].unflatten(1, (N, C)).unbind(2) for u in inputs]  # C x (B, N, ·) each
        local: list[Tensor] = []  # h within the chunk, from zero: C x (B*N, H)
        decay: list[Tensor] = []  # a_1 a_2 ... a_c within the chunk: C x (B*N, H)
        for u_c in zip(*columns, strict=True):
            a, b = gates(*(u.flatten(0, 1) for u in u_c))  # (B, N, ·) -> (B*N, ·) -> (B*N, H) each
            local.append(_linear_step(a, b, local[-1]) if local else b)
            decay.append(decay[-1] * a if decay else a)
        # 2. Across chunks: each chunk's start state, N steps over (B, H).
        h_end = local[-1].unflatten(0, (B, N)).unbind(1)  # (B*N, H) -> (B, N, H) -> N x (B, H)
        a_end = decay[-1].unflatten(0, (B, N)).unbind(1)  # the same
        if state is None:
            state = torch.zeros_like(h_end[0])  # (B, H)
        starts = []
        for h_end_k, a_end_k in zip(h_end, a_end, strict=True):
            starts.append(state)
            state = _linear_step(a_end_k, h_end_k, state)
        start = torch.stack(starts, dim=1).flatten(0, 1)  # N x (B, H) -> (B, N, H) -> (B*N, H)
        # 3. Every step: its local state plus its chunk's start state carried through the gates so far.
        h = torch.stack([_linear_step(p, h_c, start) for h_c, p in zip(local, decay, strict=True)], dim=1)
        pieces.append(h.view(B, N * C, -1))  # (B*N, C, H) -> (B, N*C, H)
    if rest > 0:
        # 4. The last T mod C steps, one at a time.
        tail = []
        for u_t in zip(*(u[:, N * C :].unbind(1) for u in inputs), strict=True):
            a, b = gates(*u_t)  # (B, H) each
            state = b if state is None else _linear_step(a, b, state)
            tail.append(state)
        pieces.append(torch.stack(tail, dim=1))  # rest x (B, H) -> (B, rest, H)
    return pieces[0] if len(pieces) == 1 else torch.cat(pieces, dim=1)  # (B, T, H)


def parallel_scan_log(
    log_a: Tensor, log_b: Tensor, h0: Tensor | None = None, *, chunk_size: int | None = None
) -> Tensor:
    r"""All steps of :math:`h_t = a_t \odot h_{t-1} + b_t` (t = 1..T) at once, from :math:`\log a_t` and
    :math:`\log b_t` (so :math:`a_t, b_t > 0`).

    Runs the chunked scan (module docstring) on :math:`a = e^{\log a}`, :math:`b = e^{\log b}`,
    exponentiated one chunk step at a time. With :math:`0 < a_t \le 1` (gates) nothing can overflow: the
    scan multiplies at most C gates together and otherwise only takes steps of the recurrence. It no longer
    computes Heinsen's :math:`e^{a^*_t + \operatorname{logcumsumexp}(\log b - a^*)}` (see the module
    docstring for why); :math:`h_0` still enters linearly, so it may have any sign (``None`` means zeros).

    Shapes: ``log_a``, ``log_b`` (B, T, H); ``h0`` (B, H) or None -> ``h`` (B, T, H). ``chunk_size``: C,
    by default ceil(sqrt(T)).
    """
    if log_a.shape != log_b.shape or log_a.dim() != 3:
        raise ValueError(
            f"parallel_scan_log: log_a and log_b must both be (B, T, H), got {tuple(log_a.shape)} "
            f"and {tuple(log_b.shape)}"
        )
    expected = (log_a.shape[0], log_a.shape[2])
    if h0 is not None and tuple(h0.shape) != expected:
        raise ValueError(f"parallel_scan_log: h0 must have shape {expected} (B, H), got {tuple(h0.shape)}")
    _check_chunk_size(chunk_size)
    if log_a.shape[1] == 0:
        return log_a.new_empty(log_a.shape)
    return _chunked_scan(lambda la, lb: (la.exp(), lb.exp()), (log_a, log_b), h0, chunk_size)


class _MinCell(nn.Module):
    """Sizes, checks and the three ways to run the recurrence, shared by the minGRU and minLSTM cells.

    A subclass gives the recurrence's coefficients in two parts: :meth:`_project`, its linear maps of
    ``x`` (any leading shape: one step (B, H_in), a sequence (B, T, H_in) or a chunk step (B*N, H_in)),
    and :meth:`_gates`, the elementwise rest, from those projections to ``(a, b)`` of
    ``h_t = a_t * h_{t-1} + b_t``. All three forms run :func:`_linear_step` on them.
    """

    _gate_names: tuple[str, ...] = ()  # one nn.Linear ``linear_<name>`` per name, registered in this order

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True) -> None:
        super().__init__()
        check_size("input_size", input_size)
        check_size("hidden_size", hidden_size)
        check_flag("bias", bias)
        self.input_size = input_size
        self.hidden_size = hidden_size
        for name in self._gate_names:
            self.add_module(f"linear_{name}", nn.Linear(input_size, hidden_size, bias=bias))

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}"

    def _project(self, x: Tensor) -> tuple[Tensor, ...]:
        raise NotImplementedError

    def _gates(self, *projections: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

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

    def _step(self, x: Tensor, h_prev: Tensor) -> Tensor:
        """``x`` (B, H_in), ``h_prev`` (B, H) -> ``h`` (B, H); no checks (callers check)."""
        a, b = self._gates(*self._project(x))
        return _linear_step(a, b, h_prev)

    def sequential(self, x: Tensor, h0: Tensor | None = None) -> Tensor:
        """The recurrence as a loop: ``x`` (B, T, H_in), ``h0`` (B, H) or None -> ``h`` (B, T, H).

        The projections of all T steps come from one matmul each, before the loop; the loop walks their
        ``unbind(1)`` views. Slicing ``x[:, t]`` inside the loop instead made the backward O(T^2) when
        ``x`` requires grad: every slice's backward wrote a full (B, T, H_in) gradient (66 s against
        1.7 s at T=1024, B=64, H=128); ``unbind``'s backward stacks all T slices' gradients once.
        """
        h = x.new_zeros(x.shape[0], self.hidden_size) if h0 is None else h0  # (B, H)
        projections = [p.unbind(1) for p in self._project(x)]  # each T x (B, H)
        outputs = []
        for p_t in zip(*projections, strict=True):
            a, b = self._gates(*p_t)
            h = _linear_step(a, b, h)
            outputs.append(h)
        return torch.stack(outputs, dim=1)  # T x (B, H) -> (B, T, H)

    def parallel(self, x: Tensor, h0: Tensor | None = None, *, chunk_size: int | None = None) -> Tensor:
        """All steps by the chunked scan (module docstring): ``x`` (B, T, H_in), ``h0`` (B, H) or None ->
        ``h`` (B, T, H). ``chunk_size``: C, by default ceil(sqrt(T)).

        The projections run inside the scan, one matmul per gate for each chunk step (B*N rows), so no
        (B, T, H) temporary is made but the output.
        """
        _check_chunk_size(chunk_size)
        return _chunked_scan(lambda x_c: self._gates(*self._project(x_c)), (x,), h0, chunk_size)


class MinGRUCell(_MinCell):
    r"""One minGRU layer (Feng et al. 2024): a GRU whose gates do not see :math:`h_{t-1}`.

    .. math::
        z_t &= \sigma(\mathrm{Linear}_z(x_t)) \\
        \tilde h_t &= g(\mathrm{Linear}_h(x_t)) \\
        h_t &= (1 - z_t) \odot h_{t-1} + z_t \odot \tilde h_t

    so :math:`h_t = a_t \odot h_{t-1} + b_t` with :math:`a_t = 1 - z_t`, :math:`b_t = z_t \odot \tilde h_t`.

    Note the paper's convention: :math:`z_t` weighs the *new* candidate (torch.nn's GRU weighs the old state).

    ``forward(x (B, H_in), hx (B, H)=None) -> h (B, H)`` is one step; :meth:`sequential` and
    :meth:`parallel` run a whole sequence (B, T, H_in) -> (B, T, H).
    """

    _gate_names = ("z", "h")

    def _project(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.linear_z(x), self.linear_h(x)  # (..., H) each

    def _gates(self, k_z: Tensor, k_h: Tensor) -> tuple[Tensor, Tensor]:
        z = torch.sigmoid(k_z)
        h_tilde = g(k_h)
        return 1 - z, z * h_tilde  # a, b: h = (1 - z) * h_prev + z * h_tilde


class MinLSTMCell(_MinCell):
    r"""One minLSTM layer (Feng et al. 2024): an LSTM whose gates do not see :math:`h_{t-1}`, with the
    forget and input gates normalised to sum to one and no separate cell state.

    .. math::
        f_t &= \sigma(\mathrm{Linear}_f(x_t)), \quad i_t = \sigma(\mathrm{Linear}_i(x_t)) \\
        \tilde h_t &= g(\mathrm{Linear}_h(x_t)) \\
        f'_t &= \frac{f_t}{f_t + i_t}, \quad i'_t = \frac{i_t}{f_t + i_t} \\
        h_t &= f'_t \odot h_{t-1} + i'_t \odot \tilde h_t

    The normalised gates are computed from :math:`d_t = \log i_t - \log f_t
    = \log\sigma(k^i_t) - \log\sigma(k^f_t)` as :math:`f'_t = \sigma(-d_t)`, :math:`i'_t = \sigma(d_t)`:
    the same numbers, without the 0/0 of :math:`f / (f + i)` when both gates underflow (pre-activations
    below about -17 in float16, -100 in float32).

    ``forward(x (B, H_in), hx (B, H)=None) -> h (B, H)`` is one step; :meth:`sequential` and
    :meth:`parallel` run a whole sequence (B, T, H_in) -> (B, T, H).
    """

    _gate_names = ("f", "i", "h")

    def _project(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return self.linear_f(x), self.linear_i(x), self.linear_h(x)  # (..., H) each

    def _gates(self, k_f: Tensor, k_i: Tensor, k_h: Tensor) -> tuple[Tensor, Tensor]:
        d = TF.logsigmoid(k_i) - TF.logsigmoid(k_f)  # log i - log f
        f_prime = torch.sigmoid(-d)  # f / (f + i)
        i_prime = torch.sigmoid(d)  # i / (f + i)
        h_tilde = g(k_h)
        return f_prime, i_prime * h_tilde  # a, b: h = f' * h_prev + i' * h_tilde


class _MinRNN(nn.Module):
    """A stack of min cells: the layer API shared by :class:`MinGRU` and :class:`MinLSTM`, on the one
    layer stack of :mod:`rnnlab.nn._stack` (layer ``l`` reads layer ``l - 1``'s output, with dropout
    between layers in training); each layer runs its cell's ``parallel`` or ``sequential`` form."""

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
        check_dropout(dropout, num_layers)  # torch.nn.RNNBase's checks, in its order, then mode
        check_flag("bias", bias)
        check_flag("batch_first", batch_first)
        check_size("input_size", input_size)
        check_size("hidden_size", hidden_size)
        check_size("num_layers", num_layers)
        check_choice("mode", mode, MODES)
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
            return zero_state(self.num_layers, batch_size, [self.hidden_size], ref)[0]
        if tuple(h.shape) != expected:
            raise ValueError(
                f"{type(self).__name__}: h0 must have shape {expected} (L, B, H), got {tuple(h.shape)}"
            )
        return h

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
        check_sequence_length(x.shape[1])  # after the state, as torch.nn

        def run(layer: int, direction: int, x: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, tuple]:
            cell = self.cells[layer]
            h = (cell.parallel if self.mode == "parallel" else cell.sequential)(x, state[0])  # (B, T, H)
            return h, (h[:, -1],)

        x, (h_n,) = run_stack(run, x, (h0,), self.num_layers, 1, self.dropout, self.training)
        output = x if self.batch_first else x.transpose(0, 1)  # (B, T, H) -> (T, B, H)
        return output, h_n  # (L, B, H)

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

        def run(layer: int, direction: int, x: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, tuple]:
            h = self.cells[layer]._step(x, state[0])  # (B, H)
            return h, (h,)

        _, (h,) = run_stack(run, x_t, (h_prev,), self.num_layers, 1, self.dropout, self.training)
        return h  # (L, B, H)


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
        mode: ``"parallel"`` (chunked scan, default) or ``"sequential"`` (a loop over time); same numbers.

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
