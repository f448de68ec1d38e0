"""The Triton back end: the fused path on CUDA tensors (and on CPU tensors under Triton's interpreter).

The algorithm, the workspace and the two ops' signatures are :mod:`._torch_backend`'s (whose docstring
holds the equations), so :class:`._autograd.FusedDirection` runs either unchanged. What differs is where
the work goes:

* the input projection ``x W_ih^T + b`` of all steps is one matrix product (cuBLAS);
* each step is one product ``h_prev W_hh^T`` (cuBLAS) and *one* Triton kernel for all the gate math
  (:mod:`._triton_kernels`), which also writes the activations the backward reads;
* the backward walks back through time with one Triton kernel per step for the gates' derivative and one
  product ``dG W_hh``; ``dW_ih``, ``dW_hh``, ``dx`` and the biases are a few large products at the end;
* PackedSequence data stays in the packed layout (:mod:`._layout`): step t touches its ``bs[t]`` rows.

Precision, for bfloat16 and float16 layers: the matrix products run in the layer's dtype (cuBLAS
accumulates in float32); the gate math, the cell state ``c`` (``ws_s``), the gate workspace (``ws_g``) and
the gradients carried back through time in the kernels (``dc_acc``; the GRU's ``dh_acc``, which carries
``dh * z``) are float32; what feeds a product (``h``, ``m``, ``dG``) is stored in the layer's dtype.
float32 and float64 layers compute in their own dtype. The backward's per-step product ``dG W_hh`` is
written by cuBLAS straight into a buffer of the layer's dtype allocated once per call: for RNN and LSTM
that buffer *is* ``dh_acc`` (which holds that product and nothing else), for the GRU it is ``prod``, which
the next step's kernel adds to ``dh_acc``. No temporary and no conversion per step, and the same values
as a float32 copy would hold (a bfloat16 product is bfloat16 wherever it is stored).

Host side: every launch runs under :func:`device_guard` (Triton launches on the *current* CUDA device and
its stream, so a layer on ``cuda:1`` would otherwise be launched on ``cuda:0``); the per-step products
write into buffers allocated once per call; the kernels take whole buffers and unspecialized row offsets
(:mod:`._triton_kernels`), so one compiled kernel serves every step.

Dimension legend: T steps, B batch, N packed rows, H_in input size, H hidden size, P = proj_size or H,
G = gates * H.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable

import torch
import triton
import triton.language as tl
from torch import Tensor

from . import _triton_kernels as K
from ._layout import GATES, Steps

__all__ = ["backward", "block_h", "device_guard", "forward", "on_tensor_device", "prev_state"]


def device_guard(device: torch.device) -> contextlib.AbstractContextManager:
    """``torch.cuda.device(device)`` for a CUDA device, else nothing: Triton launches a kernel on the
    current device, which need not be the one that holds the tensors."""
    return torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext()


def on_tensor_device(fn: Callable) -> Callable:
    """Run ``fn`` under :func:`device_guard` of its first tensor argument's device, and without autograd
    (the products write into buffers with ``out=``; :class:`._autograd.FusedDirection` differentiates)."""

    @functools.wraps(fn)
    def guarded(*args, **kwargs):
        device = next(a.device for a in args if isinstance(a, Tensor))
        with device_guard(device), torch.no_grad():
            return fn(*args, **kwargs)

    return guarded


def _acc_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype of the state and the gate math: float64 stays, everything else is float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def block_h(H: int) -> int:
    """Hidden units per program: the whole row up to 256, so that a small batch still spreads over
    several programs (SMs) when H is large."""
    return min(triton.next_power_of_2(H), 256)


def _launch(kernel, rows: int, H: int, *args, **meta) -> None:
    """One step's launch over the (rows, H-block) grid."""
    block = block_h(H)
    kernel[(rows, triton.cdiv(H, block))](*args, BLOCK=block, num_warps=max(1, min(4, block // 64)), **meta)


def prev_state(st: Steps, seq: Tensor, init: Tensor, t: int) -> tuple[Tensor, int]:
    """Step t's previous state as (buffer, first row): rows of ``seq``, ``init``, or (in the reverse
    direction, where sequences join) a fresh copy of both."""
    rows, carried = st.bs[t], st.carried(t)
    if carried == rows:
        return seq, st.off[st.prev(t)]
    if carried == 0:
        return init, 0
    return st.prev_rows(seq, init, t), 0


@on_tensor_device
def forward(mode, x, batch_sizes, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, reverse, train) -> list[Tensor]:
    """The C++ op ``forward``'s signature and results: ``[out, h_n, c_n, ws_g, ws_s, ws_m]``."""
    x = x.reshape(-1, x.size(-1))  # (N, H_in): a padded (T, B, H_in) input, flattened
    st = Steps(batch_sizes, reverse)
    G = w_hh.size(0)
    H, P = G // GATES[mode], h0.size(1)
    acc = _acc_dtype(x.dtype)
    ACC = tl.float64 if x.dtype == torch.float64 else tl.float32  # the kernels' compute dtype
    h0 = h0.contiguous()
    zeros = x.new_zeros(G)
    b_x = zeros if b_ih is None else b_ih
    b_h = zeros if b_hh is None else b_hh
    empty = x.new_empty(0)
    out = x.new_empty(st.N, P)  # (N, P)
    hn = h0.new_empty(h0.shape)
    gh = x.new_empty(st.B, G)  # every step's h_prev W_hh^T, rows [:bs[t]]
    cn, ws = empty, [empty, empty, empty]
    if mode in ("RNN_TANH", "RNN_RELU"):
        gx = torch.addmm(b_x + b_h, x, w_ih.t()).to(acc)  # (N, H)
        relu = mode == "RNN_RELU"
        for t in st.order:
            rows = st.bs[t]
            torch.mm(st.prev_rows(out, h0, t), w_hh.t(), out=gh[:rows])  # (bs, H)
            _launch(K.rnn_forward, rows, H, gx, gh, out, st.off[t], H, RELU=relu, ACC=ACC)
    elif mode == "LSTM":
        gx = torch.addmm(b_x + b_h, x, w_ih.t()).to(acc)  # (N, 4H); becomes the activations i, f, cand, o
        cs = x.new_empty(st.N, H, dtype=acc)  # every step's c
        c0a = c0.to(acc).contiguous()
        m = x.new_empty(st.N, H) if w_hr is not None else None  # unprojected h
        cn = c0.new_empty(c0.shape)
        for t in st.order:
            rows = st.bs[t]
            torch.mm(st.prev_rows(out, h0, t), w_hh.t(), out=gh[:rows])  # (bs, 4H)
            c_prev, prev0 = prev_state(st, cs, c0a, t)
            h = out if m is None else m
            _launch(K.lstm_forward, rows, H, gx, gh, c_prev, cs, h, st.off[t], prev0, H, ACC=ACC)
            if m is not None:
                torch.mm(m[st.rows(t)], w_hr.t(), out=out[st.rows(t)])  # h = m W_hr^T: (bs, P)
            st.capture_final(cs, cn, t)
        ws = [gx, cs, m if m is not None else empty]
    else:
        gx = torch.addmm(b_x, x, w_ih.t()).to(acc)  # (N, 3H); becomes the activations r, z, n
        hns = x.new_empty(st.N, H, dtype=acc)  # every step's hn = h_prev W_hn^T + b_hn
        for t in st.order:
            rows = st.bs[t]
            torch.addmm(b_h, st.prev_rows(out, h0, t), w_hh.t(), out=gh[:rows])  # (bs, 3H)
            h_prev, prev0 = prev_state(st, out, h0, t)
            _launch(K.gru_forward, rows, H, gx, gh, h_prev, hns, out, st.off[t], prev0, H, ACC=ACC)
        ws = [gx, hns, empty]
    for t in st.order:
        st.capture_final(out, hn, t)
    if not train:
        ws = [empty, empty, empty]
    return [out, hn, cn, *ws]


@on_tensor_device
def backward(mode, dy, dhn, dcn, x, batch_sizes, h0, c0, w_ih, w_hh, w_hr, has_bias, reverse, out, ws_g,
             ws_s, ws_m, need_x, need_w) -> list[Tensor]:  # fmt: skip
    """The C++ op ``backward``'s signature and results: ``[dx, dh0, dc0, dW_ih, dW_hh, db_ih, db_hh,
    dW_hr]`` (empty where not asked for or absent), by the equations of :mod:`._torch_backend`."""
    x = x.reshape(-1, x.size(-1))  # (N, H_in)
    st = Steps(batch_sizes, reverse)
    G = w_hh.size(0)
    H = G // GATES[mode]
    acc = _acc_dtype(x.dtype)
    ACC = tl.float64 if x.dtype == torch.float64 else tl.float32  # the kernels' compute dtype
    h0 = h0.contiguous()
    empty = x.new_empty(0)
    dy = dy.reshape(-1, dy.size(-1)).contiguous()  # (N, P); the kernels read rows of it
    # (B, P): the gradient reaching each sequence's h from later steps. For RNN and LSTM it is the
    # product dG W_hh alone (or dh_n), so it lives in the products' dtype and cuBLAS writes it in place.
    dh_acc = dhn.to(x.dtype if mode != "GRU" else acc, memory_format=torch.contiguous_format, copy=True)
    dc_acc, dgxn, dhfull = empty, None, None
    dg = x.new_empty(st.N, G)  # every row's dG
    back = reversed(st.order)
    if mode in ("RNN_TANH", "RNN_RELU"):
        relu = mode == "RNN_RELU"
        for t in back:
            rows = st.bs[t]
            _launch(K.rnn_backward, rows, H, dy, dh_acc, out, dg, st.off[t], H, RELU=relu, ACC=ACC)
            torch.mm(dg[st.rows(t)], w_hh, out=dh_acc[:rows])  # dh_prev = dG W_hh
    elif mode == "LSTM":
        dc_acc = dcn.to(acc, memory_format=torch.contiguous_format, copy=True)  # (B, H)
        c0a = c0.to(acc).contiguous()
        if w_hr is not None:
            dhfull = x.new_empty(st.N, w_hr.size(0))  # every step's dh, for dW_hr
            dm_buf = x.new_empty(st.B, H)  # every step's dm = dh W_hr, rows [:bs[t]]
        for t in back:
            rows = st.bs[t]
            if dhfull is None:
                dm, dm0, add_dacc = dy, st.off[t], True  # dm = dh = dy + dh_acc, summed in the kernel
            else:
                torch.add(dy[st.rows(t)], dh_acc[:rows], out=dhfull[st.rows(t)])
                torch.mm(dhfull[st.rows(t)], w_hr, out=dm_buf[:rows])  # back through the projection
                dm, dm0, add_dacc = dm_buf, 0, False
            c_prev, prev0 = prev_state(st, ws_s, c0a, t)
            _launch(
                K.lstm_backward, rows, H, dm, dh_acc, ws_g, ws_s, c_prev, dc_acc, dg, st.off[t], prev0, dm0,
                H, ADD_DACC=add_dacc, ACC=ACC,
            )  # fmt: skip
            torch.mm(dg[st.rows(t)], w_hh, out=dh_acc[:rows])  # dh_prev = dG W_hh
    else:
        dgxn = x.new_empty(st.N, H)  # the n gate's x-side gradient; r and z share dg's
        prod = x.new_zeros(st.B, H)  # the later step's dG W_hh: zero for sequences that end here
        for t in back:
            rows = st.bs[t]
            h_prev, prev0 = prev_state(st, out, h0, t)
            _launch(
                K.gru_backward, rows, H, dy, dh_acc, prod, ws_g, ws_s, h_prev, dg, dgxn, st.off[t], prev0, H,
                ACC=ACC,
            )  # fmt: skip
            torch.mm(dg[st.rows(t)], w_hh, out=prod[:rows])  # dh_prev = dh * z (in dh_acc) + dG W_hh
        dh_acc += prod

    dgx = torch.cat([dg[:, : 2 * H], dgxn], 1) if dgxn is not None else dg  # (N, G): dGx
    dx = dgx @ w_ih if need_x else empty
    dw_ih = dw_hh = db_ih = db_hh = dw_hr = empty
    if need_w:
        dw_ih = dgx.t() @ x
        dw_hh = dg.t() @ st.all_prev_rows(out, h0)
        if has_bias:
            db_ih, db_hh = dgx.sum(0), dg.sum(0)
        if dhfull is not None:
            dw_hr = dhfull.t() @ ws_m
    dc0 = dc_acc.to(c0.dtype) if dc_acc.numel() else empty
    return [dx, dh_acc.to(h0.dtype), dc0, dw_ih, dw_hh, db_ih, db_hh, dw_hr]
