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

On the CPU there are two back ends, and a third for CUDA below, all with one contract (same workspace
layout, same autograd Function):

* **C++** (``csrc/``), the default. It is compiled on first use with
  :func:`torch.utils.cpp_extension.load` (about a minute; needs a C++ compiler and ``ninja``), then cached
  in a folder keyed by the sources, flags, torch and interpreter (:mod:`._build`).
  :func:`build_extension` builds it ahead of time:
  ``python -c "from rnnlab.nn import fused; fused.build_extension()"``.
* **pure PyTorch** (:mod:`._torch_backend`), the fallback when the extension cannot be built (a warning
  says so, once, and why) or when ``RNNLAB_NO_EXT=1`` is set: the same algorithm with the loop in Python.
  Measured on one core against torch.nn: about 1.0x to 1.8x at batch >= 32, but some 20x at batch 1,
  where Python's per-step overhead is the whole cost.

The backward-through-time equations every back end computes are written once, in :mod:`._torch_backend`'s
docstring. The package's modules: :mod:`._build` (compiling and loading the C++ library), :mod:`._layout`
(the packed layout), :mod:`._torch_backend` (the pure-PyTorch back end and the equations),
:mod:`._triton_backend` and :mod:`._triton_kernels` (CUDA), :mod:`._autograd` (the autograd Function) and
this one (the entry points).

On CUDA tensors the **Triton** back end (:mod:`._triton_backend`, kernels in :mod:`._triton_kernels`)
runs, when ``triton`` imports: the same contract and workspace, with the matrix products in cuBLAS and one
Triton kernel per step for all the gate math (forward) and one for its derivative (backward); float32,
float64, bfloat16 and float16, the state and the gate math in float32 for the last two. It has not been
timed on a GPU yet. ``RNNLAB_FUSED_BACKEND=triton`` sends CPU tensors to it as well, which is how the
tests run its kernels under Triton's interpreter (``TRITON_INTERPRET=1``, which must be set before
:mod:`._triton_kernels` is first imported); unset (or ``auto``) is the default choice above.

Where it does not apply (``supports`` returns False, and the readable path runs): CUDA tensors when
``triton`` does not import, tensors on other devices, dtypes other than float32 / float64 (CPU) or
float32 / float64 / bfloat16 / float16 (CUDA), mixed dtypes or devices, autocast, ``torch.func``
transforms (vmap, grad, ...), forward-mode AD, ``torch.compile`` (while it traces), empty inputs. Double
backward (``create_graph=True``) and a vmap over the backward (``torch.autograd.grad(...,
is_grads_batched=True)``) are supported by re-running the readable equations inside the backward, so they
cost what the readable path costs.

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
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from . import _torch_backend
from ._autograd import FusedDirection
from ._build import FusedExtensionWarning, build_extension, extension, extension_available
from ._layout import GATES

__all__ = [
    "supports",
    "run_direction",
    "extension_available",
    "build_extension",
    "triton_available",
    "FusedExtensionWarning",
]

State = tuple[Tensor, ...]
Weights = tuple[Tensor | None, ...]


_CPU_DTYPES = (torch.float32, torch.float64)
_TRITON_DTYPES = (torch.float32, torch.float64, torch.bfloat16, torch.float16)
_triton: dict[str, Any] = {}  # "ok": whether triton imports, "error": why not


def triton_available() -> bool:
    """Whether the Triton back end can run (``triton`` imports); checked once."""
    if "ok" not in _triton:
        try:
            import triton  # noqa: F401
        except ImportError as e:
            _triton.update(ok=False, error=f"{type(e).__name__}: {e}")
        else:
            _triton.update(ok=True, error=None)
    return bool(_triton["ok"])


def _forced_triton() -> bool:
    """``RNNLAB_FUSED_BACKEND``: ``triton`` sends every supported tensor to the Triton back end."""
    value = os.environ.get("RNNLAB_FUSED_BACKEND", "auto").strip().lower()
    if value not in ("", "auto", "triton"):
        raise ValueError(f"RNNLAB_FUSED_BACKEND: expected 'auto' or 'triton', got {value!r}")
    if value == "triton" and not triton_available():
        raise RuntimeError(f"RNNLAB_FUSED_BACKEND=triton, but triton does not import ({_triton['error']})")
    return value == "triton"


def _uses_triton(x: Tensor) -> bool:
    """Whether x's direction runs on the Triton back end: CUDA tensors, or any under the switch."""
    forced = _forced_triton()  # read first: a bad value is an error on any device
    return forced or x.device.type == "cuda"


def supports(mode: str, x: Tensor, state: State, weights: Weights) -> bool:
    """Whether :func:`run_direction` handles these inputs (else use the readable path).

    True for float32 / float64 CPU tensors and float32 / float64 / bfloat16 / float16 CUDA tensors
    (when triton imports) of one dtype and device, outside autocast, torch.func transforms, forward-mode
    AD and torch.compile's tracing; see the module docstring.
    """
    if mode not in GATES or x.dim() not in (2, 3) or x.numel() == 0:
        return False
    tensors = [x, *state, *(w for w in weights if w is not None)]
    # Subclasses first (per-sample-gradient ExpandedWeights, ...): they may override the very attribute
    # reads below, as well as ops the fused kernels never call.
    if any(type(t) not in (Tensor, torch.nn.Parameter) for t in tensors):
        return False
    device = x.device
    if _uses_triton(x):
        if not triton_available() or x.dtype not in _TRITON_DTYPES:
            return False
    elif device.type != "cpu" or x.dtype not in _CPU_DTYPES:
        return False
    if torch.is_autocast_enabled(device.type):
        return False
    for t in tensors:
        if not (t.device == device and t.dtype == x.dtype and t.layout == torch.strided):
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


def _backend(name: str | None) -> Any:
    """'cpp', 'torch', 'triton' or None (the C++ one when it is available): an object with the ops
    ``forward`` and ``backward`` (``torch.ops.rnnlab_fused``, or the :mod:`._torch_backend` or
    :mod:`._triton_backend` module)."""
    if name == "triton":
        if not triton_available():
            raise RuntimeError(f"rnnlab: the Triton back end needs triton ({_triton['error']})")
        from . import _triton_backend  # imports triton: only when a tensor goes there

        return _triton_backend
    if name == "torch":
        return _torch_backend
    ops = extension()
    if ops is None and name == "cpp":
        from ._build import _ext

        raise RuntimeError(f"rnnlab: the fused C++ kernels are not available ({_ext['error']})")
    return ops if ops is not None else _torch_backend


def _run_direction(
    mode: str,
    x: Tensor,
    batch_sizes: Sequence[int] | None,
    state: State,
    weights: Weights,
    reverse: bool,
    backend: str | None = None,
) -> tuple[Tensor, State]:
    """:func:`run_direction` with a choice of back end: ``"cpp"``, ``"torch"``, ``"triton"`` or None
    (Triton for CUDA tensors or under ``RNNLAB_FUSED_BACKEND=triton``, else the C++ one if available)."""
    if backend is None and _uses_triton(x):
        backend = "triton"
    impl = _backend(backend)
    lstm = mode == "LSTM"
    if batch_sizes is None:  # padded (T, B, H_in): every step has B rows. x goes in as it is, batch_first
        T, B, H_in = x.shape  # views included: the C++ code reads it a chunk of steps at a time
        shape = (T, B, H_in)
        bs = [B] * T
    else:
        shape = None
        bs = [int(b) for b in batch_sizes]
    h0 = state[0]
    c0 = state[1] if lstm else None
    w_ih, w_hh, b_ih, b_hh = weights[:4]
    w_hr = weights[4] if lstm and len(weights) > 4 else None
    tensors = (x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr)
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors):
        result = FusedDirection.apply(impl, mode, shape, x, bs, reverse, *tensors[1:])
    else:
        result = impl.forward(mode, x, bs, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, reverse, False)[:3]
    out = result[0] if shape is None else result[0].view(shape[0], shape[1], -1)  # (T, B, P)
    return out, ((result[1], result[2]) if lstm else (result[1],))
