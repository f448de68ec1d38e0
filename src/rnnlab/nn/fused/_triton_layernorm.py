r"""The Triton path of :class:`rnnlab.nn.variants.LayerNormLSTM`: one direction of one layer, forward and a
hand-written backward through time, on CUDA tensors (and on CPU tensors under Triton's interpreter).

The cell (Ba, Kiros & Hinton 2016, section 3.1; :class:`rnnlab.nn.variants.LayerNormLSTMCell`)::

    gates = LN_ih(x_t W_ih^T) + LN_hh(h_{t-1} W_hh^T) + b        (B, 4H): each LN over all 4H features
    i, f, g, o = sigmoid, sigmoid, tanh, sigmoid of gates' 4 blocks
    c_t = f * c_{t-1} + i * g
    h_t = o * tanh(LN_c(c_t))                                     LN_c over H features

with ``LN(a; alpha, beta) = alpha * xhat + beta``, ``xhat = (a - mean(a)) * rstd``,
``rstd = 1 / sqrt(var(a) + eps)`` (biased variance, torch's ``layer_norm``). How it runs:

* the input side of every step at once: one product ``x W_ih^T`` (N, 4H), then one launch of
  :func:`ln_rows_forward` (one program per row) for ``gx = LN_ih(.) + b``;
* per step: one product ``h_{t-1} W_hh^T`` and *one* kernel, :func:`ln_lstm_forward`, one program per
  row: LN_hh over the row's 4H pre-activations, the gates, c, LN_c over the row's H cells and h. It
  leaves what the backward reads: the activations, LN_hh's ``xhat`` and ``rstd``, c, LN_c's ``xhat``
  and ``rstd``;
* the backward walks back through time with one kernel per step, :func:`ln_lstm_backward` (one program
  per row: back through h, LN_c, the gates and LN_hh), and one product ``dGh W_hh``; then one launch of
  :func:`ln_rows_backward` takes the gates' gradient back through LN_ih for all rows, and ``dx``,
  ``dW_ih``, ``dW_hh`` and every LN gain and shift are a few large products and column sums.

The backward, per row, with ``dh = dy + dh_acc`` (the gradient reaching h from the output and from the
next step) and ``dc_acc`` (reaching c from the next step)::

    y_c = alpha_c * xhat_c + beta_c,   tc = tanh(y_c)
    do = dh * tc * o (1 - o),          dy_c = dh * o * (1 - tc^2)
    dc = dc_acc + LN'(dy_c; xhat_c, rstd_c, alpha_c)
    di = dc * g * i (1 - i),   df = dc * c_{t-1} * f (1 - f),   dg = dc * i * (1 - g^2)
    dc_acc <- dc * f;   dG = [di, df, dg, do]
    dGh = LN'(dG; xhat_hh, rstd_hh, alpha_hh),   dh_acc <- dGh W_hh
    LN'(d; xhat, rstd, alpha) = rstd * (d alpha - mean(d alpha) - xhat * mean(d alpha * xhat))

and at the end ``dGx = LN'(dG; xhat_ih, rstd_ih, alpha_ih)``, ``dx = dGx W_ih``, ``dW_ih = dGx^T x``,
``dW_hh = dGh^T H_prev``, ``db = dbeta_ih = dbeta_hh = sum(dG)``, ``dalpha_ih = sum(dG * xhat_ih)``,
``dalpha_hh = sum(dG * xhat_hh)``, ``dalpha_c = sum(dy_c * xhat_c)``, ``dbeta_c = sum(dy_c)`` (sums over
rows). A double backward (``create_graph=True``) differentiates the same equations in autograd's ops
instead (:func:`readable_direction`), at the readable path's cost.

The layers hand padded input only (LayerNormLSTM takes no PackedSequence), so every step has B rows.
float32, float64, bfloat16 and float16: the kernels compute in float32 (float64 for float64 layers), the
state c, the workspace and the gradients carried back through time are float32 for bfloat16 / float16
layers, and what feeds a matrix product (h, dGh, dGx) is in the layer's dtype; so is ``dh_acc``, which
is the product ``dGh W_hh`` alone, written there by cuBLAS. ``TRITON_INTERPRET`` is read when this
module is imported, as for :mod:`._triton_kernels`.

Host side, as in :mod:`._triton_backend`: the launches run under the tensors' CUDA device
(:func:`._triton_backend.device_guard`), the per-step products write into buffers allocated once per
call, and the step kernels take whole buffers and unspecialized row offsets (``row0``: the step's first
row in the ``(N, .)`` buffers; ``prev0``: the previous state's in its buffer), one compiled kernel for
every step.

Dimension legend: T steps, B batch, N = T * B rows, H_in input size, H hidden size.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor
from torch.nn import functional as TF

from ._layout import Steps
from ._triton_backend import on_tensor_device, prev_state

__all__ = ["LayerNormLSTMDirection", "forward", "backward"]


@triton.jit
def _add(a, b):
    """The combine function of the kernels' row sums: ``tl.reduce(v, 0, _add)`` is ``tl.sum(v, 0)``. Not
    ``tl.sum`` itself: that is a ``triton.jit`` function of triton's own, interpreted or compiled as
    ``TRITON_INTERPRET`` was when triton was first imported, which in a test process may be either."""
    return a + b


@triton.jit
def ln_rows_forward(
    a_ptr, alpha_ptr, beta_ptr, bias_ptr, y_ptr, xhat_ptr, rstd_ptr, F, eps,
    ACC: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    """Row r of (N, F): y = alpha * xhat + beta + bias, xhat and rstd stored for the backward."""
    r = tl.program_id(0).to(tl.int64)  # r * F passes 2^31 for long sequences of wide layers
    j = tl.arange(0, BLOCK)
    m = j < F
    a = tl.load(a_ptr + r * F + j, mask=m, other=0.0).to(ACC)
    mean = tl.reduce(a, 0, _add) / F
    d = tl.where(m, a - mean, 0.0)
    rstd = 1.0 / tl.sqrt(tl.reduce(d * d, 0, _add) / F + eps)
    xhat = d * rstd
    alpha = tl.load(alpha_ptr + j, mask=m, other=0.0).to(ACC)
    beta = tl.load(beta_ptr + j, mask=m, other=0.0).to(ACC) + tl.load(bias_ptr + j, mask=m, other=0.0).to(ACC)
    tl.store(y_ptr + r * F + j, (alpha * xhat + beta).to(y_ptr.dtype.element_ty), mask=m)
    tl.store(xhat_ptr + r * F + j, xhat.to(xhat_ptr.dtype.element_ty), mask=m)
    tl.store(rstd_ptr + r, rstd.to(rstd_ptr.dtype.element_ty))


@triton.jit
def ln_rows_backward(
    d_ptr, xhat_ptr, rstd_ptr, alpha_ptr, da_ptr, F, ACC: tl.constexpr, BLOCK: tl.constexpr
):  # fmt: skip
    """Row r of (N, F): da = LN'(d; xhat, rstd, alpha), the gradient of the LN's input."""
    r = tl.program_id(0).to(tl.int64)
    j = tl.arange(0, BLOCK)
    m = j < F
    dxh = tl.load(d_ptr + r * F + j, mask=m, other=0.0).to(ACC) * tl.load(
        alpha_ptr + j, mask=m, other=0.0
    ).to(ACC)
    xhat = tl.load(xhat_ptr + r * F + j, mask=m, other=0.0).to(ACC)
    rstd = tl.load(rstd_ptr + r).to(ACC)
    s1 = tl.reduce(dxh, 0, _add) / F
    s2 = tl.reduce(dxh * xhat, 0, _add) / F
    tl.store(da_ptr + r * F + j, (rstd * (dxh - s1 - xhat * s2)).to(da_ptr.dtype.element_ty), mask=m)


@triton.jit(do_not_specialize=["row0", "prev0"])
def ln_lstm_forward(
    gx_ptr, gh_ptr, a_hh_ptr, b_hh_ptr, a_c_ptr, b_c_ptr, cprev_ptr,
    gates_ptr, xh_hh_ptr, rstd_hh_ptr, c_ptr, xh_c_ptr, rstd_c_ptr, h_ptr, row0, prev0, H, eps_hh, eps_c,
    ACC: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    """One step of one row: LN_hh of gh's 4H features, the gates, c, LN_c of c's H features, h."""
    q = tl.program_id(0).to(tl.int64)  # the row within the step: gh (step-local)
    r = row0 + q  # the row in the sequence buffers
    j = tl.arange(0, BLOCK)  # hidden unit; gate k of unit j is at r * 4H + k * H + j
    m = j < H
    g0 = r * 4 * H + j
    l0 = q * 4 * H + j
    p0 = tl.load(gh_ptr + l0, mask=m, other=0.0).to(ACC)
    p1 = tl.load(gh_ptr + l0 + H, mask=m, other=0.0).to(ACC)
    p2 = tl.load(gh_ptr + l0 + 2 * H, mask=m, other=0.0).to(ACC)
    p3 = tl.load(gh_ptr + l0 + 3 * H, mask=m, other=0.0).to(ACC)
    mean = tl.reduce(p0 + p1 + p2 + p3, 0, _add) / (4 * H)  # the 4 blocks summed lane-wise, then the row
    p0 = tl.where(m, p0 - mean, 0.0)
    p1 = tl.where(m, p1 - mean, 0.0)
    p2 = tl.where(m, p2 - mean, 0.0)
    p3 = tl.where(m, p3 - mean, 0.0)
    var = tl.reduce(p0 * p0 + p1 * p1 + p2 * p2 + p3 * p3, 0, _add) / (4 * H)
    rstd = 1.0 / tl.sqrt(var + eps_hh)
    x0, x1, x2, x3 = p0 * rstd, p1 * rstd, p2 * rstd, p3 * rstd  # LN_hh's xhat, gate by gate
    a_i = tl.load(gx_ptr + g0, mask=m, other=0.0).to(ACC) + x0 * tl.load(a_hh_ptr + j, mask=m).to(ACC)
    a_f = tl.load(gx_ptr + g0 + H, mask=m, other=0.0).to(ACC) + x1 * tl.load(a_hh_ptr + j + H, mask=m).to(ACC)
    a_g = tl.load(gx_ptr + g0 + 2 * H, mask=m, other=0.0).to(ACC) + x2 * tl.load(
        a_hh_ptr + j + 2 * H, mask=m
    ).to(ACC)
    a_o = tl.load(gx_ptr + g0 + 3 * H, mask=m, other=0.0).to(ACC) + x3 * tl.load(
        a_hh_ptr + j + 3 * H, mask=m
    ).to(ACC)
    a_i += tl.load(b_hh_ptr + j, mask=m).to(ACC)
    a_f += tl.load(b_hh_ptr + j + H, mask=m).to(ACC)
    a_g += tl.load(b_hh_ptr + j + 2 * H, mask=m).to(ACC)
    a_o += tl.load(b_hh_ptr + j + 3 * H, mask=m).to(ACC)
    ingate = 1.0 / (1.0 + tl.exp(-a_i))
    forgetgate = 1.0 / (1.0 + tl.exp(-a_f))
    cellgate = 2.0 / (1.0 + tl.exp(-2.0 * a_g)) - 1.0
    outgate = 1.0 / (1.0 + tl.exp(-a_o))
    c_prev = tl.load(cprev_ptr + (prev0 + q) * H + j, mask=m, other=0.0).to(ACC)
    c = forgetgate * c_prev + ingate * cellgate
    mean_c = tl.reduce(tl.where(m, c, 0.0), 0, _add) / H
    d_c = tl.where(m, c - mean_c, 0.0)
    rstd_c = 1.0 / tl.sqrt(tl.reduce(d_c * d_c, 0, _add) / H + eps_c)
    xh_c = d_c * rstd_c
    y_c = tl.load(a_c_ptr + j, mask=m, other=0.0).to(ACC) * xh_c + tl.load(b_c_ptr + j, mask=m, other=0.0).to(
        ACC
    )
    h = outgate * (2.0 / (1.0 + tl.exp(-2.0 * y_c)) - 1.0)  # o * tanh(LN_c(c))
    ws = gates_ptr.dtype.element_ty
    tl.store(gates_ptr + g0, ingate.to(ws), mask=m)
    tl.store(gates_ptr + g0 + H, forgetgate.to(ws), mask=m)
    tl.store(gates_ptr + g0 + 2 * H, cellgate.to(ws), mask=m)
    tl.store(gates_ptr + g0 + 3 * H, outgate.to(ws), mask=m)
    tl.store(xh_hh_ptr + g0, x0.to(ws), mask=m)
    tl.store(xh_hh_ptr + g0 + H, x1.to(ws), mask=m)
    tl.store(xh_hh_ptr + g0 + 2 * H, x2.to(ws), mask=m)
    tl.store(xh_hh_ptr + g0 + 3 * H, x3.to(ws), mask=m)
    tl.store(rstd_hh_ptr + r, rstd.to(ws))
    tl.store(c_ptr + r * H + j, c.to(ws), mask=m)
    tl.store(xh_c_ptr + r * H + j, xh_c.to(ws), mask=m)
    tl.store(rstd_c_ptr + r, rstd_c.to(ws))
    tl.store(h_ptr + r * H + j, h.to(h_ptr.dtype.element_ty), mask=m)


@triton.jit(do_not_specialize=["row0", "prev0"])
def ln_lstm_backward(
    dy_ptr, dh_ptr, dc_ptr, gates_ptr, xh_hh_ptr, rstd_hh_ptr, a_hh_ptr, xh_c_ptr, rstd_c_ptr,
    a_c_ptr, b_c_ptr, cprev_ptr, dg_ptr, dgh_ptr, dyc_ptr, row0, prev0, H,
    ACC: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    """One step of one row, backward (the equations in the module docstring): dG, dGh and dy_c are
    stored; dc_prev = dc * f is written over dc_acc (``dc_ptr``); the caller sets dh_acc = dGh W_hh."""
    q = tl.program_id(0).to(tl.int64)  # the row within the step: dh_acc, dc_acc (step-local)
    r = row0 + q  # the row in the sequence buffers
    j = tl.arange(0, BLOCK)
    m = j < H
    g0 = r * 4 * H + j
    u = r * H + j
    v = q * H + j
    dh = tl.load(dy_ptr + u, mask=m, other=0.0).to(ACC) + tl.load(dh_ptr + v, mask=m, other=0.0).to(ACC)
    i = tl.load(gates_ptr + g0, mask=m, other=0.0).to(ACC)
    f = tl.load(gates_ptr + g0 + H, mask=m, other=0.0).to(ACC)
    g = tl.load(gates_ptr + g0 + 2 * H, mask=m, other=0.0).to(ACC)
    o = tl.load(gates_ptr + g0 + 3 * H, mask=m, other=0.0).to(ACC)
    xh_c = tl.load(xh_c_ptr + u, mask=m, other=0.0).to(ACC)
    alpha_c = tl.load(a_c_ptr + j, mask=m, other=0.0).to(ACC)
    y_c = alpha_c * xh_c + tl.load(b_c_ptr + j, mask=m, other=0.0).to(ACC)
    tc = 2.0 / (1.0 + tl.exp(-2.0 * y_c)) - 1.0
    d_o = dh * tc * o * (1.0 - o)
    dyc = dh * o * (1.0 - tc * tc)
    dxc = dyc * alpha_c  # 0 on masked lanes (alpha_c loads 0 there)
    rstd_c = tl.load(rstd_c_ptr + r).to(ACC)
    dc_ln = rstd_c * (dxc - tl.reduce(dxc, 0, _add) / H - xh_c * (tl.reduce(dxc * xh_c, 0, _add) / H))
    dc = tl.load(dc_ptr + v, mask=m, other=0.0).to(ACC) + dc_ln
    c_prev = tl.load(cprev_ptr + (prev0 + q) * H + j, mask=m, other=0.0).to(ACC)
    d_i = tl.where(m, dc * g * i * (1.0 - i), 0.0)
    d_f = tl.where(m, dc * c_prev * f * (1.0 - f), 0.0)
    d_g = tl.where(m, dc * i * (1.0 - g * g), 0.0)
    d_o = tl.where(m, d_o, 0.0)
    # back through LN_hh: the 4 blocks are one row of 4H features
    e0 = d_i * tl.load(a_hh_ptr + j, mask=m, other=0.0).to(ACC)
    e1 = d_f * tl.load(a_hh_ptr + j + H, mask=m, other=0.0).to(ACC)
    e2 = d_g * tl.load(a_hh_ptr + j + 2 * H, mask=m, other=0.0).to(ACC)
    e3 = d_o * tl.load(a_hh_ptr + j + 3 * H, mask=m, other=0.0).to(ACC)
    x0 = tl.load(xh_hh_ptr + g0, mask=m, other=0.0).to(ACC)
    x1 = tl.load(xh_hh_ptr + g0 + H, mask=m, other=0.0).to(ACC)
    x2 = tl.load(xh_hh_ptr + g0 + 2 * H, mask=m, other=0.0).to(ACC)
    x3 = tl.load(xh_hh_ptr + g0 + 3 * H, mask=m, other=0.0).to(ACC)
    s1 = tl.reduce(e0 + e1 + e2 + e3, 0, _add) / (4 * H)
    s2 = tl.reduce(e0 * x0 + e1 * x1 + e2 * x2 + e3 * x3, 0, _add) / (4 * H)
    rstd = tl.load(rstd_hh_ptr + r).to(ACC)
    out = dgh_ptr.dtype.element_ty
    tl.store(dgh_ptr + g0, (rstd * (e0 - s1 - x0 * s2)).to(out), mask=m)
    tl.store(dgh_ptr + g0 + H, (rstd * (e1 - s1 - x1 * s2)).to(out), mask=m)
    tl.store(dgh_ptr + g0 + 2 * H, (rstd * (e2 - s1 - x2 * s2)).to(out), mask=m)
    tl.store(dgh_ptr + g0 + 3 * H, (rstd * (e3 - s1 - x3 * s2)).to(out), mask=m)
    ws = dg_ptr.dtype.element_ty
    tl.store(dg_ptr + g0, d_i.to(ws), mask=m)
    tl.store(dg_ptr + g0 + H, d_f.to(ws), mask=m)
    tl.store(dg_ptr + g0 + 2 * H, d_g.to(ws), mask=m)
    tl.store(dg_ptr + g0 + 3 * H, d_o.to(ws), mask=m)
    tl.store(dyc_ptr + u, dyc.to(ws), mask=m)
    tl.store(dc_ptr + v, (dc * f).to(dc_ptr.dtype.element_ty), mask=m)


def _acc_dtype(dtype: torch.dtype) -> torch.dtype:
    """The state's and the workspace's dtype: float64 stays, everything else is float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _acc(dtype: torch.dtype):
    return tl.float64 if dtype == torch.float64 else tl.float32


def _warps(block: int) -> int:
    return 4 if block <= 512 else 8


@on_tensor_device
def forward(x: Tensor, h0: Tensor, c0: Tensor, w_ih: Tensor, w_hh: Tensor, bias: Tensor | None,
            ln_ih: tuple, ln_hh: tuple, ln_c: tuple, reverse: bool) -> tuple[Tensor, ...]:  # fmt: skip
    """One direction over padded ``x`` (T, B, H_in) from ``(h0, c0)`` (B, H); each ``ln_*`` is
    ``(alpha, beta, eps)``. Returns ``(out (T, B, H), h_n, c_n)`` and the workspace of the backward."""
    T, B, H_in = x.shape
    H = h0.size(1)
    G = 4 * H
    st = Steps([B] * T, reverse)
    ACC = _acc(x.dtype)
    x2 = x.reshape(T * B, H_in)  # (N, H_in)
    h0 = h0.contiguous()
    c0a = c0.to(_acc_dtype(x.dtype)).contiguous()

    def new(*shape: int) -> Tensor:  # the state and the workspace: float32 for bfloat16 / float16
        return x2.new_empty(shape, dtype=_acc_dtype(x.dtype))

    gx, xh_ih, rstd_ih = new(st.N, G), new(st.N, G), new(st.N)
    b = bias if bias is not None else x2.new_zeros(G)
    block_g, block_h = triton.next_power_of_2(G), triton.next_power_of_2(H)
    xw = x2 @ w_ih.t()  # (N, 4H): every step's input product at once
    ln_rows_forward[(st.N,)](
        xw, ln_ih[0], ln_ih[1], b, gx, xh_ih, rstd_ih, G, ln_ih[2], ACC=ACC, BLOCK=block_g,
        num_warps=_warps(block_g),
    )  # fmt: skip
    gates, xh_hh, rstd_hh = new(st.N, G), new(st.N, G), new(st.N)
    cs, xh_c, rstd_c = new(st.N, H), new(st.N, H), new(st.N)
    out = x2.new_empty(st.N, H)  # h feeds the next product: the layer's dtype
    gh = x2.new_empty(B, G)  # every step's h_prev W_hh^T
    for t in st.order:
        torch.mm(st.prev_rows(out, h0, t), w_hh.t(), out=gh)  # (B, 4H)
        c_prev, prev0 = prev_state(st, cs, c0a, t)
        ln_lstm_forward[(B,)](
            gx, gh, ln_hh[0], ln_hh[1], ln_c[0], ln_c[1], c_prev, gates, xh_hh, rstd_hh, cs, xh_c, rstd_c,
            out, st.off[t], prev0, H, ln_hh[2], ln_c[2], ACC=ACC, BLOCK=block_h, num_warps=_warps(block_h),
        )  # fmt: skip
    last = st.order[-1]  # the step processed last holds every sequence's final state
    hn, cn = out[st.rows(last)].clone(), cs[st.rows(last)].to(c0.dtype, copy=True)
    ws = (x, xh_ih, rstd_ih, gates, xh_hh, rstd_hh, cs, xh_c, rstd_c, out)
    return out.view(T, B, H), hn, cn, ws


@on_tensor_device
def backward(dy: Tensor, dhn: Tensor, dcn: Tensor, ws: tuple, h0: Tensor, c0: Tensor, w_ih: Tensor,
             w_hh: Tensor, ln_ih: tuple, ln_hh: tuple, ln_c: tuple,
             reverse: bool) -> list[Tensor]:  # fmt: skip
    """Gradients ``[dx (T, B, H_in), dh0, dc0, dW_ih, dW_hh, db, dalpha_ih, dbeta_ih, dalpha_hh,
    dbeta_hh, dalpha_c, dbeta_c]`` by the equations of the module docstring (``db`` equals both
    dbeta's: the three shifts add to the same pre-activations)."""
    x, xh_ih, rstd_ih, gates, xh_hh, rstd_hh, cs, xh_c, rstd_c, out = ws
    N, H = cs.shape
    x2 = x.reshape(N, x.size(-1))  # (N, H_in)
    B = h0.size(0)
    T = N // B
    G = 4 * H
    st = Steps([B] * T, reverse)
    ACC = _acc(x2.dtype)
    block_g, block_h = triton.next_power_of_2(G), triton.next_power_of_2(H)
    acc = _acc_dtype(x2.dtype)
    h0, c0a = h0.contiguous(), c0.to(acc).contiguous()
    dy = dy.reshape(N, H).contiguous()  # (N, H)
    # (B, H): from the later steps; dGh W_hh alone, so in the products' dtype, written by cuBLAS in place
    dh_acc = dhn.to(x2.dtype, memory_format=torch.contiguous_format, copy=True)
    dc_acc = dcn.to(acc, memory_format=torch.contiguous_format, copy=True)  # (B, H): from the later steps
    dg, dyc = x2.new_empty(N, G, dtype=acc), x2.new_empty(N, H, dtype=acc)
    dgh = x2.new_empty(N, G)  # feeds the products: the layer's dtype
    for t in reversed(st.order):
        c_prev, prev0 = prev_state(st, cs, c0a, t)
        ln_lstm_backward[(B,)](
            dy, dh_acc, dc_acc, gates, xh_hh, rstd_hh, ln_hh[0], xh_c, rstd_c, ln_c[0], ln_c[1], c_prev, dg,
            dgh, dyc, st.off[t], prev0, H, ACC=ACC, BLOCK=block_h, num_warps=_warps(block_h),
        )  # fmt: skip
        torch.mm(dgh[st.rows(t)], w_hh, out=dh_acc)  # dh_prev = dGh W_hh: (B, H)
    dgx = x2.new_empty(N, G)
    ln_rows_backward[(N,)](
        dg, xh_ih, rstd_ih, ln_ih[0], dgx, G, ACC=ACC, BLOCK=block_g, num_warps=_warps(block_g)
    )  # fmt: skip
    dtype = x2.dtype  # the parameters' gradients, summed in the state's dtype, in the layer's
    db = dg.sum(0).to(dtype)  # (4H,)
    return [
        (dgx @ w_ih).view(T, B, -1),  # dx
        dh_acc.to(h0.dtype),
        dc_acc.to(c0.dtype),
        dgx.t() @ x2,  # dW_ih (4H, H_in)
        dgh.t() @ st.all_prev_rows(out, h0),  # dW_hh (4H, H)
        db,
        (dg * xh_ih).sum(0).to(dtype),
        db,
        (dg * xh_hh).sum(0).to(dtype),
        db,
        (dyc * xh_c).sum(0).to(dtype),
        dyc.sum(0).to(dtype),
    ]


def readable_direction(x, h0, c0, w_ih, w_hh, bias, ln_ih, ln_hh, ln_c, reverse) -> tuple[Tensor, ...]:
    """The same direction in autograd's ops (the equations of
    :class:`rnnlab.nn.variants.LayerNormLSTMCell`): what the Function differentiates for a double
    backward. ``x`` (T, B, H_in) -> ``(out (T, B, H), h_n, c_n)``."""
    G, H = w_hh.shape
    h, c = h0, c0
    outs: list[Tensor] = [h0] * x.size(0)
    for t in range(x.size(0) - 1, -1, -1) if reverse else range(x.size(0)):
        gates = TF.layer_norm(x[t] @ w_ih.t(), (G,), *ln_ih) + TF.layer_norm(h @ w_hh.t(), (G,), *ln_hh)
        if bias is not None:
            gates = gates + bias  # (B, 4H)
        ingate, forgetgate, cellgate, outgate = gates.chunk(4, dim=1)  # 4 x (B, H)
        c = torch.sigmoid(forgetgate) * c + torch.sigmoid(ingate) * torch.tanh(cellgate)
        h = torch.sigmoid(outgate) * torch.tanh(TF.layer_norm(c, (H,), *ln_c))
        outs[t] = h
    return torch.stack(outs), h, c  # T x (B, H) -> (T, B, H)


class LayerNormLSTMDirection(torch.autograd.Function):
    """``apply(x, h0, c0, W_ih, W_hh, b, alpha_ih, beta_ih, alpha_hh, beta_hh, alpha_c, beta_c, eps,
    reverse) -> (out, h_n, c_n)``, ``eps = (eps_ih, eps_hh, eps_c)`` and ``b`` possibly None.

    The backward is the kernels' walk; under ``create_graph=True`` (a double backward: gradient
    penalties, Hessian-vector products) it differentiates :func:`readable_direction` instead, with
    autograd, so that the gradients carry a graph; that costs what the readable path costs."""

    @staticmethod
    def forward(ctx, x, h0, c0, w_ih, w_hh, bias, a_ih, b_ih, a_hh, b_hh, a_c, b_c, eps, reverse):
        lns = ((a_ih, b_ih, eps[0]), (a_hh, b_hh, eps[1]), (a_c, b_c, eps[2]))
        out, hn, cn, ws = forward(x, h0, c0, w_ih, w_hh, bias, *lns, reverse)
        ctx.save_for_backward(h0, c0, w_ih, w_hh, bias, a_ih, b_ih, a_hh, b_hh, a_c, b_c, *ws)
        ctx.eps, ctx.reverse = eps, reverse
        return out, hn, cn

    @staticmethod
    def backward(ctx, dy, dhn, dcn):
        h0, c0, w_ih, w_hh, bias, a_ih, b_ih, a_hh, b_hh, a_c, b_c, *ws = ctx.saved_tensors
        eps = ctx.eps
        lns = ((a_ih, b_ih, eps[0]), (a_hh, b_hh, eps[1]), (a_c, b_c, eps[2]))
        if torch.is_grad_enabled():  # create_graph=True
            inputs = (ws[0], h0, c0, w_ih, w_hh, bias, a_ih, b_ih, a_hh, b_hh, a_c, b_c)
            wanted = [t for t in inputs if t is not None and t.requires_grad]
            outs = readable_direction(ws[0], h0, c0, w_ih, w_hh, bias, *lns, ctx.reverse)
            grads = iter(
                torch.autograd.grad(outs, wanted, (dy, dhn, dcn), create_graph=True, allow_unused=True)
            )
            return (*(next(grads) if t is not None and t.requires_grad else None for t in inputs), None, None)
        with torch.no_grad():
            dx, dh0, dc0, dw_ih, dw_hh, db, *dln = backward(
                dy, dhn, dcn, tuple(ws), h0, c0, w_ih, w_hh, *lns, ctx.reverse
            )
        return (dx, dh0, dc0, dw_ih, dw_hh, db if bias is not None else None, *dln, None, None)
