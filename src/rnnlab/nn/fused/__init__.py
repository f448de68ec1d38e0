"""The fast path: one direction of one recurrent layer, with a hand-written backward through time.

:mod:`rnnlab.nn.recurrent` calls :func:`run_direction` for each (layer, direction) wherever
:func:`supports` says it applies and the layer's ``use_fused`` flag is on (the default); otherwise it runs
the readable loop, :func:`rnnlab.nn._loop.run_direction_readable`. Both take and return the same things,
compute the same equations (:mod:`rnnlab.nn.functional`) and are tested against each other and torch.nn.

What makes it fast, against a per-step loop of autograd ops:

* the input projection ``x W_ih^T + b`` is one matrix product for many steps at once;
* each step is one matrix product ``h_{t-1} W_hh^T`` plus one fused pass over the gates, which leaves the
  activations in place for the backward;
* the backward is written by hand: one walk back through time computes every step's gate gradients, and
  ``dW_ih``, ``dW_hh``, ``dx`` and the biases are a few large products over many steps at once;
* PackedSequence data is used as is (cuDNN's packed layout): step ``t`` works on its ``batch_sizes[t]`` rows
  only, so no time is spent on padding.

The C++ back end adds: the time loop itself in C++, calling BLAS directly (with ``W_hh`` packed once into
MKL's layout), vectorised gate kernels, products over chunks of ~1024 rows that stay in cache (no
``(N, 4H)`` gradient buffer), and threads that share out the work in whichever of two ways runs faster:

* by rows: every sequence's recurrence reads only its own state, so each thread walks time on its own rows
  and the threads meet once per chunk instead of at every step (the default, and always in the backward);
* by hidden units, in the forward of layers with at least 512 gate columns a thread and no projection
  (e.g. an LSTM with H >= 256 on two threads): each thread multiplies all the rows by its own slice of
  ``W_hh`` (its units' rows of every gate) and runs the gates of its units; the threads meet after every
  step. A product with all the rows and part of the columns runs faster in MKL than the reverse, which
  is what it takes to match torch.nn's oneDNN LSTM on two threads.
  ``RNNLAB_FUSED_SPLIT=rows`` or ``cols`` overrides the choice (for tests and benchmarks).

There are two back ends with one contract (same workspace layout, same autograd Function):

* **C++** (``csrc/fused_rnn.cpp``), the default. It is compiled on first use with
  :func:`torch.utils.cpp_extension.load` (about a minute; needs a C++ compiler and ``ninja``), then cached:
  under ``$RNNLAB_CACHE/torch_extensions`` when that is set, else torch's default extension directory.
  :func:`build_extension` builds it ahead of time:
  ``python -c "from rnnlab.nn import fused; fused.build_extension()"``.
* **pure PyTorch**, the fallback when the extension cannot be built (a warning says so, once) or when
  ``RNNLAB_NO_EXT=1`` is set: the same algorithm with the loop in Python. Measured on one core against
  torch.nn: about 1.0x to 1.8x at batch >= 32, but some 20x at batch 1, where Python's per-step overhead
  is the whole cost.

Where it does not apply (``supports`` returns False, and the readable path runs): tensors off the CPU
(CUDA has no fused kernel here: the readable path runs there), dtypes other than float32 / float64,
mixed dtypes or devices, autocast, ``torch.func`` transforms (vmap, grad, ...), forward-mode AD,
``torch.compile`` (while it traces), empty inputs. Double backward (``create_graph=True``) is supported by
re-running the readable equations inside the backward, so it costs what the readable path costs.

Dimension legend: T steps, B batch, N packed rows (``sum(batch_sizes)``), H_in input size, H hidden size,
P = proj_size or H, G = gates * H.

Example::

    >>> import torch
    >>> from rnnlab.nn import fused
    >>> T, B, H_in, H = 5, 3, 4, 6
    >>> x, h0 = torch.randn(T, B, H_in), torch.zeros(B, H)
    >>> weights = (torch.randn(3 * H, H_in), torch.randn(3 * H, H), torch.zeros(3 * H), torch.zeros(3 * H))
    >>> fused.supports("GRU", x, (h0,), weights)
    True
    >>> out, (h_n,) = fused.run_direction("GRU", x, None, (h0,), weights, reverse=False)
    >>> out.shape, h_n.shape
    (torch.Size([5, 3, 6]), torch.Size([3, 6]))
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import sysconfig
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from rnnlab.nn._loop import run_direction_readable

__all__ = ["supports", "run_direction", "extension_available", "build_extension", "FusedExtensionWarning"]

# torch.nn's mode names -> the integer codes of the C++ ops; gates per mode.
MODES = {"RNN_TANH": 0, "RNN_RELU": 1, "LSTM": 2, "GRU": 3}
RNN_TANH, RNN_RELU, LSTM, GRU = 0, 1, 2, 3
_GATES = {RNN_TANH: 1, RNN_RELU: 1, LSTM: 4, GRU: 3}

State = tuple[Tensor, ...]
Weights = tuple[Tensor | None, ...]


class FusedExtensionWarning(UserWarning):
    """The C++ extension could not be built or loaded; the pure-PyTorch fused path runs instead."""


# ------------------------------------------------------------------------------------------------------
# The C++ extension: compiled on first use, cached, loaded once per process.
# ------------------------------------------------------------------------------------------------------

_SOURCE = Path(__file__).resolve().parent / "csrc" / "fused_rnn.cpp"
_lock = threading.Lock()
_ext: dict[str, Any] = {"tried": False, "ops": None, "error": None}


def _extension_name() -> str:
    # The build depends on the torch it compiles against and the instruction set it targets, so both go in
    # the name: a cache shared between machines or torch versions never loads a mismatched binary.
    cap = torch.backends.cpu.get_cpu_capability()
    return re.sub(r"\W", "_", f"rnnlab_fused_torch{torch.__version__}_{cap}".lower())


def _compile_flags() -> list[str]:
    # -fno-trapping-math lets GCC vectorise the branch-free activations; -fopenmp makes at::parallel_for
    # use torch's OpenMP threads (without it the pragma is ignored and the gate kernels run on one core).
    flags = ["-O3", "-fno-math-errno", "-fno-trapping-math", "-fopenmp"]
    if torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512"):
        flags += ["-mavx2", "-mfma"]
    return flags


def _build_directory(name: str) -> str:
    from torch.utils import cpp_extension

    cache = os.environ.get("RNNLAB_CACHE")
    root = os.path.join(cache, "torch_extensions") if cache else cpp_extension.get_default_build_root()
    path = os.path.join(root, name)
    os.makedirs(path, exist_ok=True)
    return path


def _find_ninja() -> None:
    """Put the environment's own ``ninja`` on PATH if PATH has none.

    torch's build runs ``ninja`` from PATH; ``pip install ninja`` puts it beside the interpreter, which is
    not on PATH when a virtual environment is used without being activated (``.venv/bin/python -m ...``).
    """
    if shutil.which("ninja"):
        return
    for folder in (sysconfig.get_path("scripts"), os.path.dirname(sys.executable)):
        if folder and shutil.which("ninja", path=folder):
            os.environ["PATH"] = folder + os.pathsep + os.environ.get("PATH", "")
            return


def _load(verbose: bool = False) -> Any:
    """Compile (if needed) and load the ops; returns ``torch.ops.rnnlab_fused``. Raises on failure."""
    from torch.utils import cpp_extension  # imported here: it is slow to import and only needed once

    _find_ninja()
    name = _extension_name()
    build_dir = _build_directory(name)
    if not os.path.exists(os.path.join(build_dir, name + ".so")):
        print(
            f"rnnlab: compiling the fused RNN kernels into {build_dir} (once, about a minute)",
            file=sys.stderr,
        )
    # torch's load holds a file lock while building, so concurrent processes (pytest -n) build once.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # compiler-version notes from torch are not the user's business
        cpp_extension.load(
            name=name,
            sources=[str(_SOURCE)],
            extra_cflags=_compile_flags(),
            extra_ldflags=["-fopenmp"],
            build_directory=build_dir,
            is_python_module=False,
            verbose=verbose,
        )
    return torch.ops.rnnlab_fused


def _extension(verbose: bool = False) -> Any | None:
    """The loaded ops, or None (fallback) when disabled or unbuildable; warns once on failure."""
    if os.environ.get("RNNLAB_NO_EXT", "") not in ("", "0"):
        return None
    if not _ext["tried"]:
        failed = None
        with _lock:
            if not _ext["tried"]:
                try:
                    _ext["ops"] = _load(verbose)
                except Exception as err:  # no compiler, no ninja, a failed build: fall back, say why once
                    _ext["error"] = failed = err
                _ext["tried"] = True  # before warning: warnings may be errors, and we must not retry
        if failed is not None:
            warnings.warn(
                "rnnlab: could not build the fused C++ RNN kernels, so the pure-PyTorch fused path runs "
                f"instead (slower, same results). Cause: {type(failed).__name__}: {failed}. "
                "A C++ compiler and `pip install ninja` fix this; RNNLAB_NO_EXT=1 silences it.",
                FusedExtensionWarning,
                stacklevel=3,
            )
    return _ext["ops"]


def extension_available() -> bool:
    """True when the C++ kernels are built and loaded (building them on first call)."""
    return _extension() is not None


def build_extension(verbose: bool = True) -> None:
    """Build and load the C++ kernels now (e.g. at install time); raises if that fails."""
    if not _ext["tried"]:
        with _lock:
            _ext["ops"] = _load(verbose)
            _ext["tried"] = True
    if _ext["ops"] is None:
        raise RuntimeError(f"rnnlab: the fused C++ kernels failed to build: {_ext['error']}")


# ------------------------------------------------------------------------------------------------------
# The packed layout (shared by both back ends; the C++ code has the same helpers).
# ------------------------------------------------------------------------------------------------------


class _Steps:
    """Offsets of each step's rows in packed data; a padded (T, B) batch is bs[t] = B for every t."""

    def __init__(self, batch_sizes: Sequence[int], reverse: bool) -> None:
        self.bs = list(batch_sizes)
        self.T = len(self.bs)
        self.off = [0] * (self.T + 1)
        for t, b in enumerate(self.bs):
            self.off[t + 1] = self.off[t] + b
        self.N, self.B = self.off[-1], self.bs[0]
        self.reverse = reverse
        self.order = range(self.T - 1, -1, -1) if reverse else range(self.T)  # processing order

    def rows(self, t: int) -> slice:
        return slice(self.off[t], self.off[t] + self.bs[t])

    def prev(self, t: int) -> int:
        """The step processed before t (its state is t's previous one), or -1 at the start."""
        p = t + 1 if self.reverse else t - 1
        return p if 0 <= p < self.T else -1

    def carried(self, t: int) -> int:
        """How many of step t's rows carry state from prev(t); the rest start from the initial state."""
        p = self.prev(t)
        return 0 if p < 0 else min(self.bs[t], self.bs[p])

    def continuing(self, t: int) -> int:
        """How many of step t's rows go on to the next processed step; the rest end at t."""
        n = t - 1 if self.reverse else t + 1
        return min(self.bs[t], self.bs[n]) if 0 <= n < self.T else 0

    def prev_rows(self, seq: Tensor, init: Tensor, t: int) -> Tensor:
        """Step t's previous state, (bs[t], W): rows of step prev(t) in seq, then init's for joiners."""
        rows, np_ = self.bs[t], self.carried(t)
        start = self.off[self.prev(t)] if np_ > 0 else 0
        if np_ == rows:
            return seq[start : start + rows]
        if np_ == 0:
            return init[:rows]
        return torch.cat([seq[start : start + np_], init[np_:rows]])  # reverse direction, sequences joining

    def all_prev_rows(self, seq: Tensor, init: Tensor) -> Tensor:
        """Every row's previous state, (N, W), for dW_hh = dG^T @ H_prev in one product."""
        if self.bs.count(self.B) == self.T:  # padded: whole blocks of rows
            B, N = self.B, self.N
            return torch.cat([seq[B:], init]) if self.reverse else torch.cat([init, seq[: N - B]])
        return torch.cat([self.prev_rows(seq, init, t) for t in range(self.T)])

    def capture_final(self, seq: Tensor, final: Tensor, t: int) -> None:
        """Copy the rows of step t whose sequences end there into final (B, W)."""
        keep, rows = self.continuing(t), self.bs[t]
        if rows > keep:
            final[keep:rows] = seq[self.off[t] + keep : self.off[t] + rows]


# ------------------------------------------------------------------------------------------------------
# The pure-PyTorch back end: the C++ algorithm, step for step, with the same workspace.
# ------------------------------------------------------------------------------------------------------


class _TorchBackend:
    """forward/backward with the C++ ops' signatures and results (see csrc/fused_rnn.cpp)."""

    @staticmethod
    def forward(mode, x, batch_sizes, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, reverse, train):
        x = x.reshape(-1, x.size(-1))  # (N, H_in): a padded (T, B, H_in) input, flattened
        st = _Steps(batch_sizes, reverse)
        G = w_hh.size(0)
        H, P = G // _GATES[mode], h0.size(1)
        zeros = x.new_zeros(G)
        b_x = zeros if b_ih is None else b_ih
        b_h = zeros if b_hh is None else b_hh
        empty = x.new_empty(0)
        out = x.new_empty(st.N, P)
        hn = h0.new_empty(h0.shape)
        cn, ws = empty, [empty, empty, empty]
        if mode in (RNN_TANH, RNN_RELU):
            torch.addmm(b_x + b_h, x, w_ih.t(), out=out)  # (N, H): the input projection, in place
            for t in st.order:
                h = out[st.rows(t)]
                h.addmm_(st.prev_rows(out, h0, t), w_hh.t())
                h.tanh_() if mode == RNN_TANH else h.relu_()
        elif mode == LSTM:
            gx = torch.addmm(b_x + b_h, x, w_ih.t())  # (N, 4H)
            cs = x.new_empty(st.N, H)  # every step's c
            m = x.new_empty(st.N, H) if w_hr is not None else None  # unprojected h
            cn = c0.new_empty(c0.shape)
            for t in st.order:
                g = gx[st.rows(t)]  # (bs, 4H)
                g.addmm_(st.prev_rows(out, h0, t), w_hh.t())
                g[:, : 2 * H].sigmoid_()  # ingate, forgetgate
                g[:, 2 * H : 3 * H].tanh_()  # cellgate
                g[:, 3 * H :].sigmoid_()  # outgate
                i, f, cand, o = g.chunk(4, 1)
                c = cs[st.rows(t)]
                torch.mul(f, st.prev_rows(cs, c0, t), out=c)
                c.addcmul_(i, cand)  # c = f * c_prev + i * g
                h = out[st.rows(t)] if m is None else m[st.rows(t)]
                torch.mul(o, torch.tanh(c), out=h)  # h = o * tanh(c)
                if m is not None:
                    torch.mm(h, w_hr.t(), out=out[st.rows(t)])
                st.capture_final(cs, cn, t)
            ws = [gx, cs, m if m is not None else empty]
        else:
            gx = torch.addmm(b_x, x, w_ih.t())  # (N, 3H)
            hns = x.new_empty(st.N, H)  # every step's W_hn h + b_hn
            for t in st.order:
                h_prev = st.prev_rows(out, h0, t)
                gh = torch.addmm(b_h, h_prev, w_hh.t())  # (bs, 3H)
                g = gx[st.rows(t)]
                rz = g[:, : 2 * H]
                rz.add_(gh[:, : 2 * H]).sigmoid_()
                r, z = rz.chunk(2, 1)
                hn_t = hns[st.rows(t)]
                hn_t.copy_(gh[:, 2 * H :])
                n = g[:, 2 * H :]
                n.addcmul_(r, hn_t).tanh_()  # reset gate after W_hn h + b_hn, as torch.nn
                h = out[st.rows(t)]
                torch.sub(h_prev, n, out=h)
                h.mul_(z).add_(n)  # h = n + z (h_prev - n) = (1 - z) n + z h_prev
            ws = [gx, hns, empty]
        for t in st.order:
            st.capture_final(out, hn, t)
        if not train:
            ws = [empty, empty, empty]
        return [out, hn, cn, *ws]

    @staticmethod
    def backward(mode, dy, dhn, dcn, x, batch_sizes, h0, c0, w_ih, w_hh, w_hr, has_bias, reverse, out, ws_g,
                 ws_s, ws_m, need_x, need_w):  # fmt: skip
        x = x.reshape(-1, x.size(-1))  # (N, H_in)
        st = _Steps(batch_sizes, reverse)
        G = w_hh.size(0)
        H = G // _GATES[mode]
        empty = x.new_empty(0)
        dh_acc = dhn.clone()  # (B, P): the gradient reaching each sequence's h from later steps
        dc_acc, dgxn, dhfull = empty, None, None
        dg = x.new_empty(st.N, G)
        back = reversed(st.order)
        if mode in (RNN_TANH, RNN_RELU):
            for t in back:
                rows, h, d = st.bs[t], out[st.rows(t)], dg[st.rows(t)]
                torch.add(dy[st.rows(t)], dh_acc[:rows], out=d)
                d.mul_(1 - h * h) if mode == RNN_TANH else d.mul_(h > 0)
                torch.mm(d, w_hh, out=dh_acc[:rows])
        elif mode == LSTM:
            dc_acc = dcn.clone()
            if w_hr is not None:
                dhfull = x.new_empty(st.N, w_hr.size(0))
            for t in back:
                rows = st.bs[t]
                i, f, cand, o = ws_g[st.rows(t)].chunk(4, 1)
                c, c_prev = ws_s[st.rows(t)], st.prev_rows(ws_s, c0, t)
                dh = dy[st.rows(t)] + dh_acc[:rows]
                if dhfull is not None:
                    dhfull[st.rows(t)] = dh
                    dh = dh @ w_hr  # back through the projection: (bs, P) @ (P, H)
                tc = torch.tanh(c)
                dc = dc_acc[:rows] + dh * o * (1 - tc * tc)
                di, df, dcand, do = dg[st.rows(t)].chunk(4, 1)
                torch.mul(dc * cand, i * (1 - i), out=di)
                torch.mul(dc * c_prev, f * (1 - f), out=df)
                torch.mul(dc * i, 1 - cand * cand, out=dcand)
                torch.mul(dh * tc, o * (1 - o), out=do)
                torch.mul(dc, f, out=dc_acc[:rows])
                torch.mm(dg[st.rows(t)], w_hh, out=dh_acc[:rows])
        else:
            dgxn = x.new_empty(st.N, H)  # the n gate's x-side gradient; r and z share dg's
            for t in back:
                rows = st.bs[t]
                r, z, n = ws_g[st.rows(t)].chunk(3, 1)
                hn, h_prev = ws_s[st.rows(t)], st.prev_rows(out, h0, t)
                dh = dy[st.rows(t)] + dh_acc[:rows]
                dn = dh * (1 - z) * (1 - n * n)
                dr, dz, dnh = dg[st.rows(t)].chunk(3, 1)
                torch.mul(dn * hn, r * (1 - r), out=dr)
                torch.mul(dh * (h_prev - n), z * (1 - z), out=dz)
                torch.mul(dn, r, out=dnh)
                dgxn[st.rows(t)] = dn
                torch.mul(dh, z, out=dh_acc[:rows])
                dh_acc[:rows].addmm_(dg[st.rows(t)], w_hh)

        dgx = torch.cat([dg[:, : 2 * H], dgxn], 1) if dgxn is not None else dg  # (N, G), x side
        dx = dgx @ w_ih if need_x else empty
        dw_ih = dw_hh = db_ih = db_hh = dw_hr = empty
        if need_w:
            dw_ih = dgx.t() @ x
            dw_hh = dg.t() @ st.all_prev_rows(out, h0)
            if has_bias:
                db_ih, db_hh = dgx.sum(0), dg.sum(0)
            if dhfull is not None:
                dw_hr = dhfull.t() @ ws_m
        return [dx, dh_acc, dc_acc, dw_ih, dw_hh, db_ih, db_hh, dw_hr]


def _backend(name: str | None) -> Any:
    """'cpp', 'torch' or None (the C++ one when it is available)."""
    if name == "torch":
        return _TorchBackend
    ops = _extension()
    if ops is None and name == "cpp":
        raise RuntimeError(f"rnnlab: the fused C++ kernels are not available ({_ext['error']})")
    return ops if ops is not None else _TorchBackend


# ------------------------------------------------------------------------------------------------------
# Autograd
# ------------------------------------------------------------------------------------------------------


class _FusedDirection(torch.autograd.Function):
    """One direction of one layer; the backward is the back end's hand-written BPTT."""

    @staticmethod
    def forward(ctx, backend, mode, shape, x, batch_sizes, reverse, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr):
        out, hn, cn, ws_g, ws_s, ws_m = backend.forward(
            mode, x, batch_sizes, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, reverse, True
        )
        ctx.save_for_backward(x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, out, ws_g, ws_s, ws_m)
        ctx.meta = (backend, mode, shape, batch_sizes, reverse)
        return (out, hn, cn) if mode == LSTM else (out, hn)

    @staticmethod
    def backward(ctx, dy, dhn, dcn=None):
        backend, mode, shape, batch_sizes, reverse = ctx.meta
        x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, out, ws_g, ws_s, ws_m = ctx.saved_tensors
        inputs = (x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr)
        needs = ctx.needs_input_grad[3:4] + ctx.needs_input_grad[6:]  # one per entry of inputs
        if torch.is_grad_enabled():  # create_graph=True: differentiate the readable equations instead
            grads = _readable_grads(mode, shape, batch_sizes, reverse, inputs, needs, dy, dhn, dcn)
        else:
            grads = backend.backward(
                mode, dy, dhn, dcn, x, batch_sizes, h0, c0, w_ih, w_hh, w_hr, b_ih is not None, reverse,
                out, ws_g, ws_s, ws_m, needs[0], any(needs[3:]),
            )  # fmt: skip
            grads = tuple(g if need else None for g, need in zip(grads, needs, strict=True))
            if grads[0] is not None:
                grads = (grads[0].view(x.shape), *grads[1:])  # dx comes as (N, H_in)
        # One per argument of apply: backend, mode, shape, x, batch_sizes, reverse, h0, c0, then the weights.
        return (None, None, None, grads[0], None, None, *grads[1:])


def _readable_grads(mode, shape, batch_sizes, reverse, inputs, needs, dy, dhn, dcn):
    """Gradients (one per input, None where not needed) through the readable path, keeping their graph."""
    name = {code: mode_name for mode_name, code in MODES.items()}[mode]
    x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr = inputs
    x_in = x if shape is None else x.reshape(shape)
    state = (h0, c0) if mode == LSTM else (h0,)
    weights = (w_ih, w_hh, b_ih, b_hh, w_hr) if mode == LSTM else (w_ih, w_hh, b_ih, b_hh)
    with torch.enable_grad():
        out, final = run_direction_readable(
            name, x_in, batch_sizes if shape is None else None, state, weights, reverse
        )
        out = out.reshape(-1, out.size(-1))  # (N, P), as the fused forward returned it
        wanted = [t for t, need in zip(inputs, needs, strict=True) if need]
        grads = torch.autograd.grad(
            [out, *final], wanted, [dy, dhn] + ([dcn] if mode == LSTM else []), create_graph=True,
            allow_unused=True,
        )  # fmt: skip
    result, it = [], iter(grads)
    for need in needs:
        result.append(next(it) if need else None)
    return tuple(result)


# ------------------------------------------------------------------------------------------------------
# Public entry points
# ------------------------------------------------------------------------------------------------------


def supports(mode: str, x: Tensor, state: State, weights: Weights) -> bool:
    """Whether :func:`run_direction` handles these inputs (else use the readable path).

    True for float32 / float64 CPU tensors of one dtype, outside autocast, torch.func transforms,
    forward-mode AD and torch.compile's tracing; see the module docstring.
    """
    if mode not in MODES or x.dim() not in (2, 3) or x.numel() == 0:
        return False
    tensors = [x, *state, *(w for w in weights if w is not None)]
    if x.dtype not in (torch.float32, torch.float64) or torch.is_autocast_enabled("cpu"):
        return False
    for t in tensors:
        if not (t.device.type == "cpu" and t.dtype == x.dtype and t.layout == torch.strided):
            return False
        if type(t) not in (Tensor, torch.nn.Parameter):  # subclasses may override ops we never call
            return False
    functorch = getattr(torch._C, "_are_functorch_transforms_active", None)
    if functorch is not None and functorch():
        return False
    if torch.compiler.is_compiling():  # the ops have no fake kernels; the readable path traces cleanly
        return False
    return getattr(torch.autograd.forward_ad, "_current_level", -1) < 0


def run_direction(
    mode: str,
    x: Tensor,
    batch_sizes: Sequence[int] | None,
    state: State,
    weights: Weights,
    reverse: bool,
) -> tuple[Tensor, State]:
    """Run one direction of one layer through time: the readable runner's contract, faster.

    Args:
        mode: ``"RNN_TANH"``, ``"RNN_RELU"``, ``"LSTM"`` or ``"GRU"``.
        x: ``(T, B, H_in)``, or PackedSequence data ``(N, H_in)`` when ``batch_sizes`` is given.
        batch_sizes: None, or each step's batch size (non-increasing).
        state: ``(h_0,)`` or, for the LSTM, ``(h_0, c_0)``: ``(B, P)`` and ``(B, H)``.
        weights: ``(W_ih, W_hh, b_ih, b_hh)`` plus ``W_hr`` (or None) for the LSTM; biases may be None.
        reverse: walk from the last step to the first.

    Returns:
        ``(output, final_state)``: output ``(T, B, P)`` (packed: ``(N, P)``) and the final state
        tuple, each sequence's taken after its own last step (after step 0 when reversed).
    """
    return _run_direction(mode, x, batch_sizes, state, weights, reverse)


def _run_direction(
    mode: str,
    x: Tensor,
    batch_sizes: Sequence[int] | None,
    state: State,
    weights: Weights,
    reverse: bool,
    backend: str | None = None,
) -> tuple[Tensor, State]:
    """:func:`run_direction` with a choice of back end: ``"cpp"``, ``"torch"`` or None (the best)."""
    impl = _backend(backend)
    code = MODES[mode]
    if batch_sizes is None:  # padded (T, B, H_in): every step has B rows. x goes in as it is, batch_first
        T, B, H_in = x.shape  # views included: the C++ code reads it a chunk of steps at a time
        shape = (T, B, H_in)
        bs = [B] * T
    else:
        shape = None
        bs = [int(b) for b in batch_sizes]
    h0 = state[0]
    c0 = state[1] if code == LSTM else None
    w_ih, w_hh, b_ih, b_hh = weights[:4]
    w_hr = weights[4] if code == LSTM and len(weights) > 4 else None
    tensors = (x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr)
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors):
        result = _FusedDirection.apply(impl, code, shape, x, bs, reverse, *tensors[1:])
    else:
        result = impl.forward(code, x, bs, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, reverse, False)[:3]
    out = result[0] if shape is None else result[0].view(shape[0], shape[1], -1)  # (T, B, P)
    return out, ((result[1], result[2]) if code == LSTM else (result[1],))
