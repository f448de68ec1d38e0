r"""The Triton gate kernels of the fused path: one launch per step for all gate math, one for its derivative.

Each kernel works on one step's rows, ``rows`` consecutive rows of row-major buffers (the packed layout of
:mod:`._layout`: a step's rows are contiguous), one program per ``BLOCK`` elements of the ``(rows, H)``
grid of hidden units; an element ``(r, j)`` reads gate ``k`` at ``r * K * H + k * H + j``. The matrix
products stay in torch (cuBLAS); the kernels do what lies between them. The equations and names are those
of :mod:`._torch_backend`'s docstring: forward::

    RNN:   h = tanh(gx + gh)                       (relu for RNN_RELU; gx = x W_ih^T + b, gh = h_prev W_hh^T)
    LSTM:  i, f, cand, o = sigmoid, sigmoid, tanh, sigmoid of the 4 blocks of gx + gh
           c = f * c_prev + i * cand
           m = o * tanh(c)
    GRU:   r, z = sigmoid of the first 2 blocks of gx + gh    (gh = h_prev W_hh^T + b_hh)
           hn = the 3rd block of gh
           n = tanh(gx_n + r * hn)
           h = (1 - z) * n + z * h_prev

and backward (``dh = dy + dh_acc``; see :mod:`._torch_backend` for the walk through time around them).

Precision: every value is loaded and computed in ``ACC`` (float32; float64 for float64 tensors, so that
the tests can compare in float64); the state ``c`` and the gate workspace are float32 buffers for
bfloat16 and float16 layers; what feeds a matrix product is stored in the layer's dtype.

The activations are written out with ``exp``, inline (``tl`` has no tanh, and every call of a
``triton.jit`` helper costs the interpreter as much as a small kernel): ``sigmoid(a) = 1 / (1 + e^-a)``
and ``tanh(a) = 2 / (1 + e^(-2a)) - 1``; both saturate cleanly (``e^-a = inf`` gives 0, resp. -1), and
tanh's absolute error near 0 is a rounding of 1, within float32's tolerance of torch's tanh.

The kernels run on CUDA tensors, and on CPU tensors under Triton's interpreter (``TRITON_INTERPRET=1``,
read when this module is imported: ``triton.jit`` decides there whether a kernel is compiled or
interpreted).
"""

from __future__ import annotations

import triton
import triton.language as tl

__all__ = [
    "rnn_forward",
    "rnn_backward",
    "lstm_forward",
    "lstm_backward",
    "gru_forward",
    "gru_backward",
]


@triton.jit
def rnn_forward(gx_ptr, gh_ptr, h_ptr, n, RELU: tl.constexpr, ACC: tl.constexpr, BLOCK: tl.constexpr):
    """h = tanh(gx + gh) (or relu) over ``n = rows * H`` elements."""
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    a = tl.load(gx_ptr + offs, mask=mask).to(ACC) + tl.load(gh_ptr + offs, mask=mask).to(ACC)
    if RELU:  # noqa: SIM108 (a constexpr branch: the compiler keeps only one side)
        h = tl.maximum(a, 0.0)
    else:
        h = 2.0 / (1.0 + tl.exp(-2.0 * a)) - 1.0
    tl.store(h_ptr + offs, h.to(h_ptr.dtype.element_ty), mask=mask)


@triton.jit
def rnn_backward(
    dy_ptr, dacc_ptr, h_ptr, dg_ptr, n, RELU: tl.constexpr, ACC: tl.constexpr, BLOCK: tl.constexpr
):  # fmt: skip
    """dG = (dy + dh_acc) * tanh'(a), tanh' = 1 - h * h (relu' = h > 0)."""
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    dh = tl.load(dy_ptr + offs, mask=mask).to(ACC) + tl.load(dacc_ptr + offs, mask=mask).to(ACC)
    h = tl.load(h_ptr + offs, mask=mask).to(ACC)
    if RELU:  # noqa: SIM108
        da = tl.where(h > 0, dh, 0.0)
    else:
        da = dh * (1.0 - h * h)
    tl.store(dg_ptr + offs, da.to(dg_ptr.dtype.element_ty), mask=mask)


@triton.jit
def lstm_forward(gx_ptr, gh_ptr, cprev_ptr, c_ptr, m_ptr, n, H, ACC: tl.constexpr, BLOCK: tl.constexpr):
    """Gates of one step; the activations i, f, cand, o overwrite gx (the workspace), then c and m."""
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    row = offs // H
    g = row * (4 * H) + (offs - row * H)  # gate 0 of element (row, j); gate k is at g + k * H
    a_i = tl.load(gx_ptr + g, mask=mask).to(ACC) + tl.load(gh_ptr + g, mask=mask).to(ACC)
    a_f = tl.load(gx_ptr + g + H, mask=mask).to(ACC) + tl.load(gh_ptr + g + H, mask=mask).to(ACC)
    a_c = tl.load(gx_ptr + g + 2 * H, mask=mask).to(ACC) + tl.load(gh_ptr + g + 2 * H, mask=mask).to(ACC)
    a_o = tl.load(gx_ptr + g + 3 * H, mask=mask).to(ACC) + tl.load(gh_ptr + g + 3 * H, mask=mask).to(ACC)
    ingate = 1.0 / (1.0 + tl.exp(-a_i))
    forgetgate = 1.0 / (1.0 + tl.exp(-a_f))
    cellgate = 2.0 / (1.0 + tl.exp(-2.0 * a_c)) - 1.0
    outgate = 1.0 / (1.0 + tl.exp(-a_o))
    c_prev = tl.load(cprev_ptr + offs, mask=mask).to(ACC)
    c = forgetgate * c_prev + ingate * cellgate
    m = outgate * (2.0 / (1.0 + tl.exp(-2.0 * c)) - 1.0)  # o * tanh(c)
    ws = gx_ptr.dtype.element_ty
    tl.store(gx_ptr + g, ingate.to(ws), mask=mask)
    tl.store(gx_ptr + g + H, forgetgate.to(ws), mask=mask)
    tl.store(gx_ptr + g + 2 * H, cellgate.to(ws), mask=mask)
    tl.store(gx_ptr + g + 3 * H, outgate.to(ws), mask=mask)
    tl.store(c_ptr + offs, c.to(c_ptr.dtype.element_ty), mask=mask)
    tl.store(m_ptr + offs, m.to(m_ptr.dtype.element_ty), mask=mask)


@triton.jit
def lstm_backward(
    dm_ptr, dacc_ptr, gates_ptr, c_ptr, cprev_ptr, dc_ptr, dg_ptr, n, H,
    ADD_DACC: tl.constexpr, ACC: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    """dG = [di, df, dcand, do] of one step, and dc_prev = dc * f written over dc_acc (``dc_ptr``).

    ``dm = dm_ptr + dacc_ptr`` when ``ADD_DACC`` (no projection: dm = dh = dy + dh_acc), else ``dm_ptr``.
    """
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    row = offs // H
    g = row * (4 * H) + (offs - row * H)
    dm = tl.load(dm_ptr + offs, mask=mask).to(ACC)
    if ADD_DACC:
        dm += tl.load(dacc_ptr + offs, mask=mask).to(ACC)
    i = tl.load(gates_ptr + g, mask=mask).to(ACC)
    f = tl.load(gates_ptr + g + H, mask=mask).to(ACC)
    cand = tl.load(gates_ptr + g + 2 * H, mask=mask).to(ACC)
    o = tl.load(gates_ptr + g + 3 * H, mask=mask).to(ACC)
    c = tl.load(c_ptr + offs, mask=mask).to(ACC)
    c_prev = tl.load(cprev_ptr + offs, mask=mask).to(ACC)
    tc = 2.0 / (1.0 + tl.exp(-2.0 * c)) - 1.0  # tanh(c)
    dc = tl.load(dc_ptr + offs, mask=mask).to(ACC) + dm * o * (1.0 - tc * tc)
    out = dg_ptr.dtype.element_ty
    tl.store(dg_ptr + g, (dc * cand * i * (1.0 - i)).to(out), mask=mask)
    tl.store(dg_ptr + g + H, (dc * c_prev * f * (1.0 - f)).to(out), mask=mask)
    tl.store(dg_ptr + g + 2 * H, (dc * i * (1.0 - cand * cand)).to(out), mask=mask)
    tl.store(dg_ptr + g + 3 * H, (dm * tc * o * (1.0 - o)).to(out), mask=mask)
    tl.store(dc_ptr + offs, (dc * f).to(dc_ptr.dtype.element_ty), mask=mask)


@triton.jit
def gru_forward(gx_ptr, gh_ptr, hprev_ptr, hn_ptr, h_ptr, n, H, ACC: tl.constexpr, BLOCK: tl.constexpr):
    """r, z, n of one step overwrite gx (the workspace); hn (the 3rd block of gh) and h are stored."""
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    row = offs // H
    g = row * (3 * H) + (offs - row * H)
    a_r = tl.load(gx_ptr + g, mask=mask).to(ACC) + tl.load(gh_ptr + g, mask=mask).to(ACC)
    a_z = tl.load(gx_ptr + g + H, mask=mask).to(ACC) + tl.load(gh_ptr + g + H, mask=mask).to(ACC)
    hn = tl.load(gh_ptr + g + 2 * H, mask=mask).to(ACC)
    r = 1.0 / (1.0 + tl.exp(-a_r))
    z = 1.0 / (1.0 + tl.exp(-a_z))
    a_n = tl.load(gx_ptr + g + 2 * H, mask=mask).to(ACC) + r * hn  # the reset gate after W_hn h + b_hn
    newgate = 2.0 / (1.0 + tl.exp(-2.0 * a_n)) - 1.0
    h_prev = tl.load(hprev_ptr + offs, mask=mask).to(ACC)
    h = (1.0 - z) * newgate + z * h_prev
    ws = gx_ptr.dtype.element_ty
    tl.store(gx_ptr + g, r.to(ws), mask=mask)
    tl.store(gx_ptr + g + H, z.to(ws), mask=mask)
    tl.store(gx_ptr + g + 2 * H, newgate.to(ws), mask=mask)
    tl.store(hn_ptr + offs, hn.to(hn_ptr.dtype.element_ty), mask=mask)
    tl.store(h_ptr + offs, h.to(h_ptr.dtype.element_ty), mask=mask)


@triton.jit
def gru_backward(
    dy_ptr, dacc_ptr, gates_ptr, hn_ptr, hprev_ptr, dg_ptr, dgxn_ptr, n, H,
    ACC: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    """dG = [dr, dz, dn * r], dGx's n block (dn) and dh * z written over dh_acc (``dacc_ptr``); the caller
    adds dG W_hh to it."""
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    row = offs // H
    g = row * (3 * H) + (offs - row * H)
    dh = tl.load(dy_ptr + offs, mask=mask).to(ACC) + tl.load(dacc_ptr + offs, mask=mask).to(ACC)
    r = tl.load(gates_ptr + g, mask=mask).to(ACC)
    z = tl.load(gates_ptr + g + H, mask=mask).to(ACC)
    newgate = tl.load(gates_ptr + g + 2 * H, mask=mask).to(ACC)
    hn = tl.load(hn_ptr + offs, mask=mask).to(ACC)
    h_prev = tl.load(hprev_ptr + offs, mask=mask).to(ACC)
    dn = dh * (1.0 - z) * (1.0 - newgate * newgate)
    out = dg_ptr.dtype.element_ty
    tl.store(dg_ptr + g, (dn * hn * r * (1.0 - r)).to(out), mask=mask)
    tl.store(dg_ptr + g + H, (dh * (h_prev - newgate) * z * (1.0 - z)).to(out), mask=mask)
    tl.store(dg_ptr + g + 2 * H, (dn * r).to(out), mask=mask)
    tl.store(dgxn_ptr + offs, dn.to(dgxn_ptr.dtype.element_ty), mask=mask)
    tl.store(dacc_ptr + offs, (dh * z).to(dacc_ptr.dtype.element_ty), mask=mask)
