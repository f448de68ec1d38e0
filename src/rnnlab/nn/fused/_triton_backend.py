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
the gradients carried back through time (``dh_acc``, ``dc_acc``) are float32; what feeds a product
(``h``, ``m``, ``dG``) is stored in the layer's dtype. float32 and float64 layers compute in their own dtype.

Dimension legend: T steps, B batch, N packed rows, H_in input size, H hidden size, P = proj_size or H,
G = gates * H.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from . import _triton_kernels as K
from ._layout import GATES, Steps

__all__ = ["backward", "forward"]

BLOCK = 1024  # elements of a step's (rows, H) grid per program


def _acc_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype of the state and the gate math: float64 stays, everything else is float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _grid(n: int) -> tuple[int]:
    return (triton.cdiv(n, BLOCK),)


def _acc_copy(t: Tensor, dtype: torch.dtype) -> Tensor:
    """A fresh contiguous copy in ``dtype`` (the incoming gradients may be expanded or strided views)."""
    return t.to(dtype=dtype, memory_format=torch.contiguous_format, copy=True)


def _mm_into(dst: Tensor, a: Tensor, b: Tensor) -> None:
    """dst = a @ b, dst possibly wider in dtype (float32 state, bfloat16 products)."""
    if dst.dtype == a.dtype:
        torch.mm(a, b, out=dst)
    else:
        dst.copy_(a @ b)


def _addmm_into(dst: Tensor, a: Tensor, b: Tensor) -> None:
    """dst += a @ b, dst possibly wider in dtype."""
    if dst.dtype == a.dtype:
        dst.addmm_(a, b)
    else:
        dst.add_(a @ b)


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
    cn, ws = empty, [empty, empty, empty]
    if mode in ("RNN_TANH", "RNN_RELU"):
        gx = torch.addmm(b_x + b_h, x, w_ih.t()).to(acc)  # (N, H)
        relu = mode == "RNN_RELU"
        for t in st.order:
            n = st.bs[t] * H
            gh = st.prev_rows(out, h0, t) @ w_hh.t()  # (bs, H)
            K.rnn_forward[_grid(n)](gx[st.rows(t)], gh, out[st.rows(t)], n, RELU=relu, ACC=ACC, BLOCK=BLOCK)
    elif mode == "LSTM":
        gx = torch.addmm(b_x + b_h, x, w_ih.t()).to(acc)  # (N, 4H); becomes the activations i, f, cand, o
        cs = x.new_empty(st.N, H, dtype=acc)  # every step's c
        c0a = c0.to(acc).contiguous()
        m = x.new_empty(st.N, H) if w_hr is not None else None  # unprojected h
        cn = c0.new_empty(c0.shape)
        for t in st.order:
            n = st.bs[t] * H
            gh = st.prev_rows(out, h0, t) @ w_hh.t()  # (bs, 4H)
            h = out[st.rows(t)] if m is None else m[st.rows(t)]
            K.lstm_forward[_grid(n)](
                gx[st.rows(t)], gh, st.prev_rows(cs, c0a, t), cs[st.rows(t)], h, n, H, ACC=ACC, BLOCK=BLOCK
            )
            if m is not None:
                torch.mm(h, w_hr.t(), out=out[st.rows(t)])  # h = m W_hr^T: (bs, P)
            st.capture_final(cs, cn, t)
        ws = [gx, cs, m if m is not None else empty]
    else:
        gx = torch.addmm(b_x, x, w_ih.t()).to(acc)  # (N, 3H); becomes the activations r, z, n
        hns = x.new_empty(st.N, H, dtype=acc)  # every step's hn = h_prev W_hn^T + b_hn
        for t in st.order:
            n = st.bs[t] * H
            h_prev = st.prev_rows(out, h0, t)
            gh = torch.addmm(b_h, h_prev, w_hh.t())  # (bs, 3H)
            K.gru_forward[_grid(n)](
                gx[st.rows(t)], gh, h_prev, hns[st.rows(t)], out[st.rows(t)], n, H, ACC=ACC, BLOCK=BLOCK
            )
        ws = [gx, hns, empty]
    for t in st.order:
        st.capture_final(out, hn, t)
    if not train:
        ws = [empty, empty, empty]
    return [out, hn, cn, *ws]


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
    dh_acc = _acc_copy(dhn, acc)  # (B, P): the gradient reaching each sequence's h from later steps
    dc_acc, dgxn, dhfull = empty, None, None
    dg = x.new_empty(st.N, G)  # every row's dG
    back = reversed(st.order)
    if mode in ("RNN_TANH", "RNN_RELU"):
        relu = mode == "RNN_RELU"
        for t in back:
            rows = st.bs[t]
            n = rows * H
            K.rnn_backward[_grid(n)](
                dy[st.rows(t)], dh_acc[:rows], out[st.rows(t)], dg[st.rows(t)], n, RELU=relu, ACC=ACC,
                BLOCK=BLOCK,
            )  # fmt: skip
            _mm_into(dh_acc[:rows], dg[st.rows(t)], w_hh)  # dh_prev = dG W_hh
    elif mode == "LSTM":
        dc_acc = _acc_copy(dcn, acc)
        c0a = c0.to(acc).contiguous()
        if w_hr is not None:
            dhfull = x.new_empty(st.N, w_hr.size(0))  # every step's dh, for dW_hr
        for t in back:
            rows = st.bs[t]
            n = rows * H
            if dhfull is None:
                dm, add_dacc = dy[st.rows(t)], True  # dm = dh = dy + dh_acc, summed in the kernel
            else:
                dhfull[st.rows(t)] = dy[st.rows(t)] + dh_acc[:rows]
                dm, add_dacc = dhfull[st.rows(t)] @ w_hr, False  # back through the projection: (bs, H)
            K.lstm_backward[_grid(n)](
                dm, dh_acc[:rows], ws_g[st.rows(t)], ws_s[st.rows(t)], st.prev_rows(ws_s, c0a, t),
                dc_acc[:rows], dg[st.rows(t)], n, H, ADD_DACC=add_dacc, ACC=ACC, BLOCK=BLOCK,
            )  # fmt: skip
            _mm_into(dh_acc[:rows], dg[st.rows(t)], w_hh)  # dh_prev = dG W_hh
    else:
        dgxn = x.new_empty(st.N, H)  # the n gate's x-side gradient; r and z share dg's
        for t in back:
            rows = st.bs[t]
            n = rows * H
            K.gru_backward[_grid(n)](
                dy[st.rows(t)], dh_acc[:rows], ws_g[st.rows(t)], ws_s[st.rows(t)], st.prev_rows(out, h0, t),
                dg[st.rows(t)], dgxn[st.rows(t)], n, H, ACC=ACC, BLOCK=BLOCK,
            )  # fmt: skip
            _addmm_into(dh_acc[:rows], dg[st.rows(t)], w_hh)  # dh_prev = dh * z + dG W_hh

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
