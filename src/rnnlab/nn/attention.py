"""Attention: additive, Luong's three scores, scaled dot-product, multi-head, pooling, and the seed's Attn.

References:
    Bahdanau, Cho & Bengio (2015), Neural machine translation by jointly learning to align and translate.
    Luong, Pham & Manning (2015), Effective approaches to attention-based neural machine translation.
    Vaswani et al. (2017), Attention is all you need.
    Yang et al. (2016), Hierarchical attention networks for document classification (attention pooling).

One contract, batch-first, for every module except :class:`AttentionPooling` (no query) and the seed's
:class:`Attn` (kept as written)::

    context, weights = attn(query, keys, values=None, mask=None, *, lengths=None)

Dimension legend: ``B`` batch, ``Tq`` queries, ``S`` keys (source positions), ``Dq``/``Dk``/``Dv`` feature
sizes, ``H`` hidden size of a score, ``h`` heads. ``query`` is (B, Dq) or (B, Tq, Dq); ``keys`` (B, S, Dk);
``values`` (B, S, Dv), defaulting to ``keys``. ``context`` is (B, Dv) or (B, Tq, Dv) and ``weights``
(B, S) or (B, Tq, S), following the rank of ``query``.

MASK POLARITY: ``mask`` is bool, (B, S) or (B, Tq, S), and **True = attend**, False = padding; ``lengths``
(B,) may be given instead. This is the polarity of the bool ``attn_mask`` of
``F.scaled_dot_product_attention`` and the OPPOSITE of ``torch.nn.MultiheadAttention``'s
``key_padding_mask`` (True = ignore): translate with ``key_padding_mask=~mask``.

Guarantees: masked keys get exactly zero weight; each row of weights sums to one; a fully masked row gives
zero weights and zero context (no NaN); the softmax runs in float32 for float16/bfloat16 inputs; no input
is modified. Shapes are checked on entry, and errors name the argument, the expected and the received shape.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnlab.nn.masking import masked_softmax, resolve_mask

__all__ = [
    "AdditiveAttention",
    "DotAttention",
    "GeneralAttention",
    "ConcatAttention",
    "ScaledDotProductAttention",
    "MultiHeadAttention",
    "AttentionPooling",
    "Attn",
    "ATTENTION",
    "build_attention",
]


def _shape(x: object) -> object:
    return tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__


def _check_3d(name: str, x: object, sizes: tuple, symbols: tuple) -> None:
    """Raise unless ``x`` is a 3-D tensor whose sizes match ``sizes`` (None = any); symbols name them."""
    ok = (
        isinstance(x, Tensor)
        and x.dim() == 3
        and all(s is None or s == g for s, g in zip(sizes, x.shape, strict=True))
    )
    if not ok:
        want = ", ".join(
            str(s) if sym is None else sym if s is None else f"{sym}={s}"
            for sym, s in zip(symbols, sizes, strict=True)
        )
        raise ValueError(f"{name}: expected shape ({want}), received {_shape(x)}")


def _prepare(query, keys, values, mask, lengths, query_size=None, key_size=None, value_size=None):
    """Validate the shared contract. Returns q (B, Tq, Dq), keys, values, mask (B, 1|Tq, S) or None, and
    whether the query was 2-D (then outputs are squeezed back)."""
    if not (isinstance(query, Tensor) and query.dim() in (2, 3) and query_size in (None, query.shape[-1])):
        dq = "Dq" if query_size is None else f"Dq={query_size}"
        raise ValueError(f"query: expected shape (B, {dq}) or (B, Tq, {dq}), received {_shape(query)}")
    squeeze = query.dim() == 2
    q = query.unsqueeze(1) if squeeze else query  # (B, Tq, Dq)
    B, Tq = q.shape[0], q.shape[1]
    _check_3d("keys", keys, (B, None, key_size), ("B", "S", "Dk"))
    S = keys.shape[1]
    values = keys if values is None else values
    _check_3d("values", values, (B, S, value_size), ("B", "S", "Dv"))
    return q, keys, values, resolve_mask(mask, lengths, B, Tq, S), squeeze


def _attend(scores, values, mask, squeeze: bool, dropout: float = 0.0, training: bool = False):
    """Masked softmax of ``scores`` (B, Tq, S), then the weighted sum of ``values`` (B, S, Dv)."""
    weights = masked_softmax(scores, mask)  # (B, Tq, S)
    # Dropout only thins the weights that mix the values; the returned weights stay a distribution.
    context = torch.bmm(F.dropout(weights, dropout, training), values)  # (B, Tq, Dv)
    if squeeze:
        return context.squeeze(1), weights.squeeze(1)  # (B, Dv), (B, S)
    return context, weights


class AdditiveAttention(nn.Module):
    r"""Additive attention of Bahdanau et al. (2015), eq. (6) and A.1.2: :math:`e = v^\top \tanh(W q + U k)`.

    The paper's :math:`W_a, U_a, v_a` are ``W``, ``U``, ``v`` here, without biases as in the paper; its
    query is the previous decoder state :math:`s_{i-1}` and its keys the annotations :math:`h_j`.
    ``weights = softmax(e)`` over the keys and ``context = weights @ values``.
    """

    def __init__(self, query_size: int, key_size: int, hidden_size: int) -> None:
        super().__init__()
        self.query_size, self.key_size, self.hidden_size = query_size, key_size, hidden_size
        self.W = nn.Linear(query_size, hidden_size, bias=False)
        self.U = nn.Linear(key_size, hidden_size, bias=False)
        self.v = nn.Linear(hidden_size, 1, bias=False)

    def forward(self, query, keys, values=None, mask=None, *, lengths=None) -> tuple[Tensor, Tensor]:
        q, k, v, mask, squeeze = _prepare(query, keys, values, mask, lengths, self.query_size, self.key_size)
        Wq = self.W(q).unsqueeze(2)  # (B, Tq, 1, H)
        Uk = self.U(k).unsqueeze(1)  # (B, 1, S, H)
        e = self.v(torch.tanh(Wq + Uk)).squeeze(-1)  # (B, Tq, S)
        return _attend(e, v, mask, squeeze)

    def extra_repr(self) -> str:
        return f"query_size={self.query_size}, key_size={self.key_size}, hidden_size={self.hidden_size}"


class DotAttention(nn.Module):
    r"""Luong et al. (2015), eq. (8), "dot": :math:`\mathrm{score}(q, k) = q^\top k`; needs ``Dq == Dk``."""

    def forward(self, query, keys, values=None, mask=None, *, lengths=None) -> tuple[Tensor, Tensor]:
        Dq = query.shape[-1] if isinstance(query, Tensor) else None
        q, k, v, mask, squeeze = _prepare(query, keys, values, mask, lengths, key_size=Dq)
        scores = torch.bmm(q, k.transpose(1, 2))  # (B, Tq, Dq) @ (B, Dk, S) -> (B, Tq, S)
        return _attend(scores, v, mask, squeeze)


class GeneralAttention(nn.Module):
    r"""Luong et al. (2015), eq. (8), "general": :math:`\mathrm{score}(q, k) = q^\top W k`.

    ``W`` (the paper's :math:`W_a`) is a bias-free ``nn.Linear(key_size, query_size)``, so ``W(k)`` is Wk.
    """

    def __init__(self, query_size: int, key_size: int) -> None:
        super().__init__()
        self.query_size, self.key_size = query_size, key_size
        self.W = nn.Linear(key_size, query_size, bias=False)  # W k: Dk -> Dq

    def forward(self, query, keys, values=None, mask=None, *, lengths=None) -> tuple[Tensor, Tensor]:
        q, k, v, mask, squeeze = _prepare(query, keys, values, mask, lengths, self.query_size, self.key_size)
        Wk = self.W(k)  # (B, S, Dq)
        scores = torch.bmm(q, Wk.transpose(1, 2))  # (B, Tq, Dq) @ (B, Dq, S) -> (B, Tq, S)
        return _attend(scores, v, mask, squeeze)

    def extra_repr(self) -> str:
        return f"query_size={self.query_size}, key_size={self.key_size}"


class ConcatAttention(nn.Module):
    r"""Luong et al. (2015), eq. (8), "concat": :math:`\mathrm{score}(q, k) = v^\top \tanh(W [q; k])`.

    ``W`` is one (H, Dq + Dk) matrix as in the paper. We apply it as ``W[:, :Dq] q + W[:, Dq:] k``, which is
    the same number but avoids materializing every (query, key) concatenation, a (B, Tq, S, Dq + Dk) tensor.
    """

    def __init__(self, query_size: int, key_size: int, hidden_size: int) -> None:
        super().__init__()
        self.query_size, self.key_size, self.hidden_size = query_size, key_size, hidden_size
        self.W = nn.Linear(query_size + key_size, hidden_size, bias=False)
        self.v = nn.Linear(hidden_size, 1, bias=False)

    def forward(self, query, keys, values=None, mask=None, *, lengths=None) -> tuple[Tensor, Tensor]:
        q, k, v, mask, squeeze = _prepare(query, keys, values, mask, lengths, self.query_size, self.key_size)
        W_q, W_k = self.W.weight.split([self.query_size, self.key_size], dim=1)  # (H, Dq), (H, Dk)
        Wqk = F.linear(q, W_q).unsqueeze(2) + F.linear(k, W_k).unsqueeze(1)  # (B, Tq, S, H) = W [q; k]
        scores = self.v(torch.tanh(Wqk)).squeeze(-1)  # (B, Tq, S)
        return _attend(scores, v, mask, squeeze)

    def extra_repr(self) -> str:
        return f"query_size={self.query_size}, key_size={self.key_size}, hidden_size={self.hidden_size}"


class ScaledDotProductAttention(nn.Module):
    r"""Vaswani et al. (2017), eq. (1): :math:`\mathrm{softmax}(q k^\top / \sqrt{d_k}) V`, needs ``Dq == Dk``.

    ``dropout`` is applied in training to the weights that mix the values; the returned weights are the
    distribution before dropout (torch.nn.MultiheadAttention returns them after), so rows always sum to one.
    """

    def __init__(self, dropout: float = 0.0) -> None:
        super().__init__()
        self.dropout = dropout

    def forward(self, query, keys, values=None, mask=None, *, lengths=None) -> tuple[Tensor, Tensor]:
        Dq = query.shape[-1] if isinstance(query, Tensor) else None
        q, k, v, mask, squeeze = _prepare(query, keys, values, mask, lengths, key_size=Dq)
        d_k = k.shape[-1]
        scores = torch.bmm(q, k.transpose(1, 2)) / math.sqrt(d_k)  # (B, Tq, S)
        return _attend(scores, v, mask, squeeze, self.dropout, self.training)

    def extra_repr(self) -> str:
        return f"dropout={self.dropout}"


class MultiHeadAttention(nn.Module):
    r"""Multi-head attention, Vaswani et al. (2017) section 3.2.2, with torch.nn.MultiheadAttention's weights.

    .. math::
        \mathrm{head}_i = \mathrm{softmax}\big((q W^Q_i)(k W^K_i)^\top / \sqrt{d}\big)\,(v W^V_i), \quad
        \mathrm{out} = [\mathrm{head}_1; \dots; \mathrm{head}_h]\, W^O

    with ``d = embed_dim // num_heads``. Parameter names, shapes, registration order and init are those of
    ``torch.nn.MultiheadAttention``, so its ``state_dict`` loads with ``strict=True`` both ways; given the
    same weights, ``(context, weights)`` equals its ``batch_first=True`` output with
    ``key_padding_mask=~mask``, except that a fully masked row gives zero weights here (NaN there) and, under
    dropout, the weights are returned before dropout. ``average_weights=False`` returns per-head weights
    (B, h, Tq, S), like torch's ``average_attn_weights=False``. Query (B, E) or (B, Tq, E); keys (B, S, kdim);
    values (B, S, vdim).
    """

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, kdim=None, vdim=None) -> None:
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0 or embed_dim % num_heads != 0:
            raise ValueError(
                f"embed_dim, num_heads: expected positive with embed_dim divisible by num_heads, "
                f"received embed_dim={embed_dim}, num_heads={num_heads}"
            )
        self.embed_dim, self.num_heads, self.dropout = embed_dim, num_heads, dropout
        self.kdim = embed_dim if kdim is None else kdim
        self.vdim = embed_dim if vdim is None else vdim
        self.head_dim = embed_dim // num_heads
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        E = embed_dim
        if self._qkv_same_embed_dim:
            self.in_proj_weight = nn.Parameter(torch.empty(3 * E, E))  # [W^Q; W^K; W^V]
            self.register_parameter("q_proj_weight", None)
            self.register_parameter("k_proj_weight", None)
            self.register_parameter("v_proj_weight", None)
        else:
            self.q_proj_weight = nn.Parameter(torch.empty(E, E))
            self.k_proj_weight = nn.Parameter(torch.empty(E, self.kdim))
            self.v_proj_weight = nn.Parameter(torch.empty(E, self.vdim))
            self.register_parameter("in_proj_weight", None)
        if bias:
            self.in_proj_bias = nn.Parameter(torch.empty(3 * E))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = nn.Linear(E, E, bias=bias)  # W^O
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """torch.nn.MultiheadAttention's init: Xavier-uniform projections, zero biases."""
        if self._qkv_same_embed_dim:
            nn.init.xavier_uniform_(self.in_proj_weight)
        else:
            for W in (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
                nn.init.xavier_uniform_(W)
        if self.in_proj_bias is not None:
            nn.init.zeros_(self.in_proj_bias)
            nn.init.zeros_(self.out_proj.bias)

    def forward(self, query, keys, values=None, mask=None, *, lengths=None, average_weights=True):
        sizes = (self.embed_dim, self.kdim, self.vdim)
        q, k, v, mask, squeeze = _prepare(query, keys, values, mask, lengths, *sizes)
        (B, Tq, E), S, h, d = q.shape, k.shape[1], self.num_heads, self.head_dim
        if self._qkv_same_embed_dim:
            W_Q, W_K, W_V = self.in_proj_weight.chunk(3)  # (E, E) each
        else:
            W_Q, W_K, W_V = self.q_proj_weight, self.k_proj_weight, self.v_proj_weight
        b_Q, b_K, b_V = (None,) * 3 if self.in_proj_bias is None else self.in_proj_bias.chunk(3)
        q = F.linear(q, W_Q, b_Q).view(B, Tq, h, d).transpose(1, 2)  # (B, h, Tq, d)
        k = F.linear(k, W_K, b_K).view(B, S, h, d).transpose(1, 2)  # (B, h, S, d)
        v = F.linear(v, W_V, b_V).view(B, S, h, d).transpose(1, 2)  # (B, h, S, d)
        scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(d)  # (B, h, Tq, S)
        weights = masked_softmax(scores, None if mask is None else mask.unsqueeze(1))  # (B, h, Tq, S)
        heads = torch.matmul(F.dropout(weights, self.dropout, self.training), v)  # (B, h, Tq, d)
        context = self.out_proj(heads.transpose(1, 2).reshape(B, Tq, E))  # (B, Tq, h, d) -> (B, Tq, E)
        if average_weights:
            weights = weights.mean(dim=1)  # (B, Tq, S)
        if squeeze:
            return context.squeeze(1), weights.squeeze(-2)  # (B, E), (B, S) or (B, h, S)
        return context, weights

    def extra_repr(self) -> str:
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, kdim={self.kdim}, vdim={self.vdim}"


class AttentionPooling(nn.Module):
    r"""Pool a sequence into one vector with a learned query (Yang et al. 2016, eq. (5)-(7)).

    .. math::
        e_t = v^\top \tanh(W h_t + b), \qquad \alpha = \mathrm{softmax}(e), \qquad c = \sum_t \alpha_t h_t

    ``v`` plays the role of the paper's learned context vector :math:`u_w`. Call
    ``context, weights = pool(inputs, mask=None, lengths=None)`` with inputs (B, T, D), mask (B, T)
    True = valid, lengths (B,); returns context (B, D) and weights (B, T).
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.W = nn.Linear(input_size, hidden_size)  # W and b
        self.v = nn.Parameter(torch.empty(hidden_size))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.W.reset_parameters()
        bound = 1.0 / math.sqrt(self.hidden_size)
        nn.init.uniform_(self.v, -bound, bound)

    def forward(self, inputs: Tensor, mask: Tensor | None = None, lengths: Tensor | None = None):
        _check_3d("inputs", inputs, (None, None, self.input_size), ("B", "T", "D"))
        B, T = inputs.shape[:2]
        mask = resolve_mask(mask, lengths, B, 1, T)  # (B, 1, T)
        e = torch.tanh(self.W(inputs)) @ self.v  # (B, T, H) @ (H,) -> (B, T)
        return _attend(e.unsqueeze(1), inputs, mask, squeeze=True)  # (B, 1, T) -> (B, D), (B, T)

    def extra_repr(self) -> str:
        return f"input_size={self.input_size}, hidden_size={self.hidden_size}"


class Attn(nn.Module):
    """The first seed note's ``Attn``, kept as written (the attention of PyTorch's classic seq2seq tutorial).

    ``weights = softmax(attn([Q[0]; K[0]]))`` is a linear map of the concatenated query and key onto a
    FIXED number ``value_size1`` of positions: it never looks at the values, so it is position-based, not
    content-based alignment. Then ``output = attn_combine([Q[0]; weights @ V])``. Shapes, as in the seed:
    Q (1, N, query_size), K (1, N, key_size), V (1, value_size1, value_size2) shared by the N rows ->
    output (1, N, output_size), weights (N, value_size1). The optional ``mask`` (N, value_size1), True =
    attend, is our addition for sources shorter than ``value_size1``.
    """

    def __init__(self, query_size, key_size, value_size1, value_size2, output_size) -> None:
        super().__init__()
        self.query_size, self.key_size, self.output_size = query_size, key_size, output_size
        self.value_size1, self.value_size2 = value_size1, value_size2
        self.attn = nn.Linear(query_size + key_size, value_size1)
        self.attn_combine = nn.Linear(query_size + value_size2, output_size)

    def forward(self, Q: Tensor, K: Tensor, V: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        _check_3d("Q", Q, (1, None, self.query_size), (None, "N", "query_size"))
        _check_3d("K", K, (1, Q.shape[1], self.key_size), (None, "N", "key_size"))
        _check_3d("V", V, (1, self.value_size1, self.value_size2), (None, "value_size1", "value_size2"))
        if mask is not None:
            mask = resolve_mask(mask, None, Q.shape[1], 1, self.value_size1)[:, 0]  # (N, value_size1)
        attn_weights = masked_softmax(self.attn(torch.cat((Q[0], K[0]), 1)), mask, dim=1)  # (N, value_size1)
        attn_applied = torch.bmm(attn_weights.unsqueeze(0), V)  # (1, N, value_size2)
        output = torch.cat((Q[0], attn_applied[0]), 1)  # (N, query_size + value_size2)
        output = self.attn_combine(output).unsqueeze(0)  # (1, N, output_size)
        return output, attn_weights


ATTENTION: dict[str, type[nn.Module]] = {
    "additive": AdditiveAttention,
    "dot": DotAttention,
    "general": GeneralAttention,
    "concat": ConcatAttention,
    "scaled_dot": ScaledDotProductAttention,
}


def build_attention(name: str, query_size: int, key_size: int, hidden_size: int | None = None) -> nn.Module:
    """Build a score-based attention from :data:`ATTENTION` by name; ``hidden_size`` is for additive, concat.

    >>> attn = build_attention("general", 8, 6)
    >>> context, weights = attn(torch.randn(2, 8), torch.randn(2, 5, 6), lengths=torch.tensor([5, 3]))
    >>> tuple(context.shape), tuple(weights.shape), weights[1, 3:].tolist()
    ((2, 6), (2, 5), [0.0, 0.0])
    """
    if name not in ATTENTION:
        raise ValueError(f"name: expected one of {sorted(ATTENTION)}, received {name!r}")
    if name in ("dot", "scaled_dot"):
        if query_size != key_size:
            raise ValueError(
                f"key_size: {name!r} attention needs query_size == key_size, "
                f"received query_size={query_size}, key_size={key_size}"
            )
        return ATTENTION[name]()
    if name == "general":
        return GeneralAttention(query_size, key_size)
    if hidden_size is None:
        raise ValueError(f"hidden_size: {name!r} attention needs an int, received None")
    return ATTENTION[name](query_size, key_size, hidden_size)
