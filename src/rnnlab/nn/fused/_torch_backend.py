r"""The pure-PyTorch back end, and the backward-through-time equations that both back ends compute.

This is the C++ algorithm (``csrc/``) step for step, with the loop in Python and the same workspace, so
the two are interchangeable behind one autograd Function; it runs where the C++ library cannot be built,
or with ``RNNLAB_NO_EXT=1``. Rows are in the packed layout of :mod:`._layout` (N rows; step t's are
``st.rows(t)``).

**Forward** (the readable equations of :mod:`rnnlab.nn.functional`; ``a @ W^T`` over a step's rows)::

    RNN:   h = tanh(x W_ih^T + b_ih + h_prev W_hh^T + b_hh)          (relu for RNN_RELU)
    LSTM:  i, f, cand, o = sigmoid, sigmoid, tanh, sigmoid of the 4 blocks of
                           x W_ih^T + b_ih + h_prev W_hh^T + b_hh
           c = f * c_prev + i * cand
           m = o * tanh(c)
           h = m W_hr^T                                               (h = m without a projection)
    GRU:   r, z = sigmoid of the first 2 blocks of x W_ih^T + b_ih + h_prev W_hh^T + b_hh
           hn = h_prev W_hn^T + b_hn                                  (the 3rd block of h_prev W_hh^T + b_hh)
           n = tanh(x W_in^T + b_in + r * hn)                         (torch.nn: the reset gate multiplies
                                                                       hn, after the matrix product)
           h = (1 - z) * n + z * h_prev

The training forward keeps the workspace the backward reads: LSTM the activations ``i, f, cand, o``
(``ws_g``), every ``c`` (``ws_s``) and, with a projection, every ``m`` (``ws_m``); GRU ``r, z, n``
(``ws_g``) and every ``hn`` (``ws_s``); the RNN needs its output ``h`` only.

**Backward through time.** One walk back over the steps, last processed first. ``dh_acc`` (B, P) holds,
for each sequence, the gradient reaching its current ``h`` from later steps; it starts as ``dh_n`` (each
sequence's final-state gradient, which sits in its row until the walk reaches that sequence's last step),
and ``dc_acc`` likewise starts as ``dc_n``. At step t, for its rows (``dy``: the output's gradient)::

    dh = dy + dh_acc
    RNN:   da = dh * (1 - h * h)                     (RNN_RELU: da = dh * (h > 0))
           dG = da
           dh_prev = dG W_hh
    LSTM:  dm = dh W_hr                              (dm = dh without a projection)
           tc = tanh(c)
           dc = dc_acc + dm * o * (1 - tc * tc)
           di = dc * cand * i * (1 - i)
           df = dc * c_prev * f * (1 - f)
           dcand = dc * i * (1 - cand * cand)
           do = dm * tc * o * (1 - o)
           dG = [di, df, dcand, do]                  (the gradient of the gates' pre-activations)
           dc_prev = dc * f
           dh_prev = dG W_hh
    GRU:   dn = dh * (1 - z) * (1 - n * n)
           dz = dh * (h_prev - n) * z * (1 - z)
           dr = dn * hn * r * (1 - r)
           dG = [dr, dz, dn * r]                     (of h_prev W_hh^T + b_hh: the reset gate scales hn)
           dGx = [dr, dz, dn]                        (of x W_ih^T + b_ih; dGx = dG for RNN and LSTM)
           dh_prev = dh * z + dG W_hh

``dh_prev`` and ``dc_prev`` become ``dh_acc`` and ``dc_acc`` for the step processed before t; after the
walk they are the gradients of ``h_0`` and ``c_0``. Then, over all N rows at once (``X`` the inputs,
``H_prev`` each row's previous hidden state, ``M`` every ``m``, ``dH`` every step's ``dh``)::

    dx = dGx W_ih            dW_ih = dGx^T X         db_ih = sum over rows of dGx
                             dW_hh = dG^T H_prev     db_hh = sum over rows of dG
                             dW_hr = dH^T M          (LSTM with a projection)

The C++ backward (``backward_impl`` in ``csrc/fused_rnn.cpp``; each cell's ``backward_row`` and
``backward_step`` in ``csrc/cells.h``) computes these same equations, with these names; it only orders the
work for speed (the large products a chunk of steps at a time, while that chunk's ``dG`` is in cache).

Dimension legend: T steps, B batch, N packed rows, H_in input size, H hidden size, P = proj_size or H,
G = gates * H.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._layout import GATES, Steps

__all__ = ["backward", "forward"]


def forward(mode, x, batch_sizes, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, reverse, train) -> list[Tensor]:
    """The C++ op ``forward``'s signature and results: ``[out, h_n, c_n, ws_g, ws_s, ws_m]``."""
    x = x.reshape(-1, x.size(-1))  # (N, H_in): a padded (T, B, H_in) input, flattened
    st = Steps(batch_sizes, reverse)
    G = w_hh.size(0)
    H, P = G // GATES[mode], h0.size(1)
    zeros = x.new_zeros(G)
    b_x = zeros if b_ih is None else b_ih
    b_h = zeros if b_hh is None else b_hh
    empty = x.new_empty(0)
    out = x.new_empty(st.N, P)
    hn = h0.new_empty(h0.shape)
    cn, ws = empty, [empty, empty, empty]
    if mode in ("RNN_TANH", "RNN_RELU"):
        torch.addmm(b_x + b_h, x, w_ih.t(), out=out)  # (N, H): the input projection, in place
        for t in st.order:
            h = out[st.rows(t)]
            h.addmm_(st.prev_rows(out, h0, t), w_hh.t())
            h.tanh_() if mode == "RNN_TANH" else h.relu_()
    elif mode == "LSTM":
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
            c.addcmul_(i, cand)  # c = f * c_prev + i * cand
            h = out[st.rows(t)] if m is None else m[st.rows(t)]
            torch.mul(o, torch.tanh(c), out=h)  # m = o * tanh(c)
            if m is not None:
                torch.mm(h, w_hr.t(), out=out[st.rows(t)])  # h = m W_hr^T
            st.capture_final(cs, cn, t)
        ws = [gx, cs, m if m is not None else empty]
    else:
        gx = torch.addmm(b_x, x, w_ih.t())  # (N, 3H)
        hns = x.new_empty(st.N, H)  # every step's hn = h_prev W_hn^T + b_hn
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


def backward(mode, dy, dhn, dcn, x, batch_sizes, h0, c0, w_ih, w_hh, w_hr, has_bias, reverse, out, ws_g,
             ws_s, ws_m, need_x, need_w) -> list[Tensor]:  # fmt: skip
    """The C++ op ``backward``'s signature and results: ``[dx, dh0, dc0, dW_ih, dW_hh, db_ih, db_hh,
    dW_hr]`` (empty where not asked for or absent), by the equations of the module docstring."""
    x = x.reshape(-1, x.size(-1))  # (N, H_in)
    st = Steps(batch_sizes, reverse)
    G = w_hh.size(0)
    H = G // GATES[mode]
    empty = x.new_empty(0)
    dh_acc = dhn.clone()  # (B, P): the gradient reaching each sequence's h from later steps
    dc_acc, dgxn, dhfull = empty, None, None
    dg = x.new_empty(st.N, G)  # every row's dG
    back = reversed(st.order)
    if mode in ("RNN_TANH", "RNN_RELU"):
        for t in back:
            rows, h, da = st.bs[t], out[st.rows(t)], dg[st.rows(t)]
            torch.add(dy[st.rows(t)], dh_acc[:rows], out=da)  # dh = dy + dh_acc
            da.mul_(1 - h * h) if mode == "RNN_TANH" else da.mul_(h > 0)  # da = dh * tanh' (or relu')
            torch.mm(da, w_hh, out=dh_acc[:rows])  # dh_prev = dG W_hh
    elif mode == "LSTM":
        dc_acc = dcn.clone()
        if w_hr is not None:
            dhfull = x.new_empty(st.N, w_hr.size(0))
        for t in back:
            rows = st.bs[t]
            i, f, cand, o = ws_g[st.rows(t)].chunk(4, 1)
            c, c_prev = ws_s[st.rows(t)], st.prev_rows(ws_s, c0, t)
            dh = dy[st.rows(t)] + dh_acc[:rows]
            dm = dh
            if dhfull is not None:
                dhfull[st.rows(t)] = dh  # dH, for dW_hr
                dm = dh @ w_hr  # back through the projection: (bs, P) @ (P, H)
            tc = torch.tanh(c)
            dc = dc_acc[:rows] + dm * o * (1 - tc * tc)
            di, df, dcand, do = dg[st.rows(t)].chunk(4, 1)
            torch.mul(dc * cand, i * (1 - i), out=di)
            torch.mul(dc * c_prev, f * (1 - f), out=df)
            torch.mul(dc * i, 1 - cand * cand, out=dcand)
            torch.mul(dm * tc, o * (1 - o), out=do)
            torch.mul(dc, f, out=dc_acc[:rows])  # dc_prev = dc * f
            torch.mm(dg[st.rows(t)], w_hh, out=dh_acc[:rows])  # dh_prev = dG W_hh
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
            dh_acc[:rows].addmm_(dg[st.rows(t)], w_hh)  # dh_prev = dh * z + dG W_hh

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
    return [dx, dh_acc, dc_acc, dw_ih, dw_hh, db_ih, db_hh, dw_hr]
