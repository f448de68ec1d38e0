r"""The Triton gate kernels of the fused path: one launch per step for all gate math, one for its derivative.

Each kernel works on one step's rows of row-major buffers (the packed layout of :mod:`._layout`: a step's
rows are contiguous). The grid is ``(rows, cdiv(H, BLOCK))``: program ``(r, b)`` takes hidden units
``j = b * BLOCK + [0, BLOCK)`` of the step's row ``r``, and gate ``k`` of unit ``j`` sits at
``row * K * H + k * H + j`` (no division per element). The matrix products stay in torch (cuBLAS); the
kernels do what lies between them. The equations and names are those of :mod:`._torch_backend`'s
docstring: forward::

    RNN:   h = tanh(gx + gh)                       (relu for RNN_RELU; gx = x W_ih^T + b, gh = h_prev W_hh^T)
    LSTM:  i, f, cand, o = sigmoid, sigmoid, tanh, sigmoid of the 4 blocks of gx + gh
           c = f * c_prev + i * cand
           m = o * tanh(c)
    GRU:   r, z = sigmoid of the first 2 blocks of gx + gh    (gh = h_prev W_hh^T + b_hh)
           hn = the 3rd block of gh
           n = tanh(gx_n + r * hn)
           h = (1 - z) * n + z * h_prev

and backward (``dh = dy + dh_acc``; see :mod:`._torch_backend` for the walk through time around them).

Where the rows are: every buffer is passed whole, from its first row, and a row offset says where the
step starts in it: ``row0`` in the sequence buffers (``(N, .)``: gx, out, c, dy, dG, ...), ``prev0`` in
the buffer that holds the previous state (a row of the sequence buffer, or 0 in the initial state), and
step-local buffers (``(B, .)``: gh, dh_acc) start at row 0. The offsets are ``do_not_specialize``: Triton
specializes a kernel on each integer argument's divisibility by 16 and on each pointer's alignment, so
slices ``buf[off[t]:]`` or offsets that are multiples of 16 at some steps and not at others would compile
the kernel again for each variant; whole buffers and unspecialized offsets give one compiled kernel per
layer shape. Row numbers are widened to int64 (``row * 4H`` passes 2^31 for long, wide sequences).

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
    "ROW_OFFSETS",
    "rnn_forward",
    "rnn_backward",
    "lstm_forward",
    "lstm_backward",
    "gru_forward",
    "gru_backward",
]

# The per-step arguments: never specialized (see the module docstring).
ROW_OFFSETS = ("row0", "prev0", "dm0")


@triton.jit(do_not_specialize=["row0"])
def rnn_forward(gx_ptr, gh_ptr, h_ptr, row0, H, RELU: tl.constexpr, ACC: tl.constexpr, BLOCK: tl.constexpr):
    """h = tanh(gx + gh) (or relu) of one step's rows."""
    r = tl.program_id(0).to(tl.int64)
    j = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    mask = j < H
    s = (row0 + r) * H + j  # the sequence buffers gx, h
    a = tl.load(gx_ptr + s, mask=mask).to(ACC) + tl.load(gh_ptr + r * H + j, mask=mask).to(ACC)
    if RELU:  # noqa: SIM108 (a constexpr branch: the compiler keeps only one side)
        h = tl.maximum(a, 0.0)
    else:
        h = 2.0 / (1.0 + tl.exp(-2.0 * a)) - 1.0
    tl.store(h_ptr + s, h.to(h_ptr.dtype.element_ty), mask=mask)


@triton.jit(do_not_specialize=["row0"])
def rnn_backward(
    dy_ptr, dacc_ptr, h_ptr, dg_ptr, row0, H, RELU: tl.constexpr, ACC: tl.constexpr, BLOCK: tl.constexpr
):  # fmt: skip
    """dG = (dy + dh_acc) * tanh'(a), tanh' = 1 - h * h (relu' = h > 0)."""
    r = tl.program_id(0).to(tl.int64)
    j = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    mask = j < H
    s = (row0 + r) * H + j  # dy, h, dG
    dh = tl.load(dy_ptr + s, mask=mask).to(ACC) + tl.load(dacc_ptr + r * H + j, mask=mask).to(ACC)
    h = tl.load(h_ptr + s, mask=mask).to(ACC)
    if RELU:  # noqa: SIM108
        da = tl.where(h > 0, dh, 0.0)
    else:
        da = dh * (1.0 - h * h)
    tl.store(dg_ptr + s, da.to(dg_ptr.dtype.element_ty), mask=mask)


@triton.jit(do_not_specialize=["row0", "prev0"])
def lstm_forward(
    gx_ptr, gh_ptr, cprev_ptr, c_ptr, m_ptr, row0, prev0, H, ACC: tl.constexpr, BLOCK: tl.constexpr
):  # fmt: skip
    """Gates of one step; the activations i, f, cand, o overwrite gx (the workspace), then c and m."""
    r = tl.program_id(0).to(tl.int64)
    j = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    mask = j < H
    row = row0 + r
    g = row * (4 * H) + j  # gate 0 of unit j in gx; gate k is at g + k * H
    q = r * (4 * H) + j  # the same in gh, a step-local (rows, 4H) buffer
    a_i = tl.load(gx_ptr + g, mask=mask).to(ACC) + tl.load(gh_ptr + q, mask=mask).to(ACC)
    a_f = tl.load(gx_ptr + g + H, mask=mask).to(ACC) + tl.load(gh_ptr + q + H, mask=mask).to(ACC)
    a_c = tl.load(gx_ptr + g + 2 * H, mask=mask).to(ACC) + tl.load(gh_ptr + q + 2 * H, mask=mask).to(ACC)
    a_o = tl.load(gx_ptr + g + 3 * H, mask=mask).to(ACC) + tl.load(gh_ptr + q + 3 * H, mask=mask).to(ACC)
    ingate = 1.0 / (1.0 + tl.exp(-a_i))
    forgetgate = 1.0 / (1.0 + tl.exp(-a_f))
    cellgate = 2.0 / (1.0 + tl.exp(-2.0 * a_c)) - 1.0
    outgate = 1.0 / (1.0 + tl.exp(-a_o))
    c_prev = tl.load(cprev_ptr + (prev0 + r) * H + j, mask=mask).to(ACC)
    c = forgetgate * c_prev + ingate * cellgate
    m = outgate * (2.0 / (1.0 + tl.exp(-2.0 * c)) - 1.0)  # o * tanh(c)
    ws = gx_ptr.dtype.element_ty
    tl.store(gx_ptr + g, ingate.to(ws), mask=mask)
    tl.store(gx_ptr + g + H, forgetgate.to(ws), mask=mask)
    tl.store(gx_ptr + g + 2 * H, cellgate.to(ws), mask=mask)
    tl.store(gx_ptr + g + 3 * H, outgate.to(ws), mask=mask)
    tl.store(c_ptr + row * H + j, c.to(c_ptr.dtype.element_ty), mask=mask)
    tl.store(m_ptr + row * H + j, m.to(m_ptr.dtype.element_ty), mask=mask)


@triton.jit(do_not_specialize=["row0", "prev0", "dm0"])
def lstm_backward(
    dm_ptr, dacc_ptr, gates_ptr, c_ptr, cprev_ptr, dc_ptr, dg_ptr, row0, prev0, dm0, H,
    ADD_DACC: tl.constexpr, ACC: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    """dG = [di, df, dcand, do] of one step, and dc_prev = dc * f written over dc_acc (``dc_ptr``).

    ``dm = dm_ptr + dacc_ptr`` when ``ADD_DACC`` (no projection: dm = dh = dy + dh_acc, ``dm_ptr`` is dy
    and ``dm0 = row0``), else ``dm_ptr`` alone (a step-local buffer, ``dm0 = 0``).
    """
    r = tl.program_id(0).to(tl.int64)
    j = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    mask = j < H
    row = row0 + r
    g = row * (4 * H) + j
    dm = tl.load(dm_ptr + (dm0 + r) * H + j, mask=mask).to(ACC)
    if ADD_DACC:
        dm += tl.load(dacc_ptr + r * H + j, mask=mask).to(ACC)
    i = tl.load(gates_ptr + g, mask=mask).to(ACC)
    f = tl.load(gates_ptr + g + H, mask=mask).to(ACC)
    cand = tl.load(gates_ptr + g + 2 * H, mask=mask).to(ACC)
    o = tl.load(gates_ptr + g + 3 * H, mask=mask).to(ACC)
    c = tl.load(c_ptr + row * H + j, mask=mask).to(ACC)
    c_prev = tl.load(cprev_ptr + (prev0 + r) * H + j, mask=mask).to(ACC)
    tc = 2.0 / (1.0 + tl.exp(-2.0 * c)) - 1.0  # tanh(c)
    dc = tl.load(dc_ptr + r * H + j, mask=mask).to(ACC) + dm * o * (1.0 - tc * tc)
    out = dg_ptr.dtype.element_ty
    tl.store(dg_ptr + g, (dc * cand * i * (1.0 - i)).to(out), mask=mask)
    tl.store(dg_ptr + g + H, (dc * c_prev * f * (1.0 - f)).to(out), mask=mask)
    tl.store(dg_ptr + g + 2 * H, (dc * i * (1.0 - cand * cand)).to(out), mask=mask)
    tl.store(dg_ptr + g + 3 * H, (dm * tc * o * (1.0 - o)).to(out), mask=mask)
    tl.store(dc_ptr + r * H + j, (dc * f).to(dc_ptr.dtype.element_ty), mask=mask)


@triton.jit(do_not_specialize=["row0", "prev0"])
def gru_forward(
    gx_ptr, gh_ptr, hprev_ptr, hn_ptr, h_ptr, row0, prev0, H, ACC: tl.constexpr, BLOCK: tl.constexpr
):  # fmt: skip
    """r, z, n of one step overwrite gx (the workspace); hn (the 3rd block of gh) and h are stored."""
    r_ = tl.program_id(0).to(tl.int64)
    j = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    mask = j < H
    row = row0 + r_
    g = row * (3 * H) + j
    q = r_ * (3 * H) + j  # gh: step-local
    a_r = tl.load(gx_ptr + g, mask=mask).to(ACC) + tl.load(gh_ptr + q, mask=mask).to(ACC)
    a_z = tl.load(gx_ptr + g + H, mask=mask).to(ACC) + tl.load(gh_ptr + q + H, mask=mask).to(ACC)
    hn = tl.load(gh_ptr + q + 2 * H, mask=mask).to(ACC)
    r = 1.0 / (1.0 + tl.exp(-a_r))
    z = 1.0 / (1.0 + tl.exp(-a_z))
    a_n = tl.load(gx_ptr + g + 2 * H, mask=mask).to(ACC) + r * hn  # the reset gate after W_hn h + b_hn
    newgate = 2.0 / (1.0 + tl.exp(-2.0 * a_n)) - 1.0
    h_prev = tl.load(hprev_ptr + (prev0 + r_) * H + j, mask=mask).to(ACC)
    h = (1.0 - z) * newgate + z * h_prev
    ws = gx_ptr.dtype.element_ty
    tl.store(gx_ptr + g, r.to(ws), mask=mask)
    tl.store(gx_ptr + g + H, z.to(ws), mask=mask)
    tl.store(gx_ptr + g + 2 * H, newgate.to(ws), mask=mask)
    tl.store(hn_ptr + row * H + j, hn.to(hn_ptr.dtype.element_ty), mask=mask)
    tl.store(h_ptr + row * H + j, h.to(h_ptr.dtype.element_ty), mask=mask)


@triton.jit(do_not_specialize=["row0", "prev0"])
def gru_backward(
    dy_ptr, dacc_ptr, prod_ptr, gates_ptr, hn_ptr, hprev_ptr, dg_ptr, dgxn_ptr, row0, prev0, H,
    ACC: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    """dG = [dr, dz, dn * r], dGx's n block (dn) and dh * z written over dh_acc (``dacc_ptr``).

    ``dh = dy + dh_acc + prod``: ``prod`` is the later step's ``dG W_hh`` (step-local, in the layer's
    dtype: cuBLAS writes it there), added here rather than into the float32 ``dh_acc`` by another launch.
    """
    r_ = tl.program_id(0).to(tl.int64)
    j = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    mask = j < H
    row = row0 + r_
    g = row * (3 * H) + j
    u = r_ * H + j  # dh_acc and prod: step-local
    dh = tl.load(dy_ptr + row * H + j, mask=mask).to(ACC) + tl.load(dacc_ptr + u, mask=mask).to(ACC)
    dh += tl.load(prod_ptr + u, mask=mask).to(ACC)
    r = tl.load(gates_ptr + g, mask=mask).to(ACC)
    z = tl.load(gates_ptr + g + H, mask=mask).to(ACC)
    newgate = tl.load(gates_ptr + g + 2 * H, mask=mask).to(ACC)
    hn = tl.load(hn_ptr + row * H + j, mask=mask).to(ACC)
    h_prev = tl.load(hprev_ptr + (prev0 + r_) * H + j, mask=mask).to(ACC)
    dn = dh * (1.0 - z) * (1.0 - newgate * newgate)
    out = dg_ptr.dtype.element_ty
    tl.store(dg_ptr + g, (dn * hn * r * (1.0 - r)).to(out), mask=mask)
    tl.store(dg_ptr + g + H, (dh * (h_prev - newgate) * z * (1.0 - z)).to(out), mask=mask)
    tl.store(dg_ptr + g + 2 * H, (dn * r).to(out), mask=mask)
    tl.store(dgxn_ptr + row * H + j, dn.to(dgxn_ptr.dtype.element_ty), mask=mask)
    tl.store(dacc_ptr + u, (dh * z).to(dacc_ptr.dtype.element_ty), mask=mask)
