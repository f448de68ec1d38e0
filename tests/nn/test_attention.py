"""Tests for rnnlab.nn.attention: hand-computed cases, gradcheck, invariants, torch parity, the seeds."""

from __future__ import annotations

import copy
import doctest
import inspect
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.testing import assert_close

from rnnlab.nn import attention
from rnnlab.nn.attention import (
    ATTENTION,
    AdditiveAttention,
    AttentionPooling,
    Attn,
    ConcatAttention,
    DotAttention,
    GeneralAttention,
    MultiHeadAttention,
    ScaledDotProductAttention,
    build_attention,
)
from rnnlab.nn.masking import lengths_to_mask

B, TQ, S = 2, 3, 4
MASK = torch.tensor([[True, False, True, True], [True, True, False, False]])  # (B, S), True = attend
LENGTHS = torch.tensor([3, 2])
SIZES = {  # name: (factory, Dq, Dk, Dv)
    "additive": (lambda: AdditiveAttention(5, 4, 7), 5, 4, 3),
    "dot": (DotAttention, 4, 4, 3),
    "general": (lambda: GeneralAttention(5, 4), 5, 4, 3),
    "concat": (lambda: ConcatAttention(5, 4, 7), 5, 4, 3),
    "scaled_dot": (ScaledDotProductAttention, 4, 4, 3),
    "mha": (lambda: MultiHeadAttention(6, 2, kdim=4, vdim=3), 6, 4, 3),
}
NAMES = list(SIZES)


def setup(name, dtype=torch.float64, tq=TQ):
    """A seeded module of kind ``name`` and inputs q (B, tq, Dq), k (B, S, Dk), v (B, S, Dv)."""
    factory, dq, dk, dv = SIZES[name]
    torch.manual_seed(0)
    module = factory().to(dtype)
    q, k, v = (torch.randn(B, n, d, dtype=dtype) for n, d in ((tq, dq), (S, dk), (S, dv)))
    return module, q, k, v


def test_docstring_examples_run():
    assert doctest.testmod(attention).failed == 0


# ---------------------------------------------------------------- hand-computed cases


def test_dot_attention_two_keys_by_hand():
    q = torch.tensor([[1.0, 0.0]])  # (B=1, Dq=2)
    k = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])  # scores q.k = [1, 0]
    v = torch.tensor([[[10.0, 0.0], [0.0, 10.0]]])
    e = math.e
    context, weights = DotAttention()(q, k, v)
    assert_close(weights, torch.tensor([[e / (e + 1), 1 / (e + 1)]]))
    assert_close(context, torch.tensor([[10 * e / (e + 1), 10 / (e + 1)]]))
    context, weights = ScaledDotProductAttention()(q, k, v)  # scores [1/sqrt(2), 0]
    a = math.exp(1 / math.sqrt(2))
    assert_close(weights, torch.tensor([[a / (a + 1), 1 / (a + 1)]]))
    context, weights = DotAttention()(q, k, v, mask=torch.tensor([[False, True]]))
    assert weights.tolist() == [[0.0, 1.0]] and context.tolist() == [[0.0, 10.0]]


def test_additive_attention_by_hand():
    attn = AdditiveAttention(2, 2, 2)
    with torch.no_grad():  # W = U = I, v = 1: score = tanh(q1 + k1) + tanh(q2 + k2)
        attn.W.weight.copy_(torch.eye(2))
        attn.U.weight.copy_(torch.eye(2))
        attn.v.weight.fill_(1.0)
    q = torch.tensor([[0.5, 0.0]])
    k = torch.tensor([[[0.5, 0.0], [-0.5, 0.0]]])  # scores [tanh(1), tanh(0)] = [tanh(1), 0]
    _, weights = attn(q, k)
    t = math.exp(math.tanh(1.0))
    assert_close(weights, torch.tensor([[t / (t + 1), 1 / (t + 1)]]))


def test_general_with_scaled_identity_is_dot_of_scaled_query():
    _, q, k, v = setup("dot")
    general = GeneralAttention(4, 4).double()
    with torch.no_grad():
        general.W.weight.copy_(2 * torch.eye(4))
    assert_close(general(q, k, v, MASK), DotAttention()(2 * q, k, v, MASK))


def test_concat_with_stacked_weights_is_additive():
    concat, q, k, v = setup("concat")
    additive = AdditiveAttention(5, 4, 7).double()
    with torch.no_grad():
        additive.W.weight.copy_(concat.W.weight[:, :5])
        additive.U.weight.copy_(concat.W.weight[:, 5:])
        additive.v.weight.copy_(concat.v.weight)
    assert_close(concat(q, k, v, MASK), additive(q, k, v, MASK))
    # and literally v^T tanh(W [q; k]), for one query against two keys
    scores = torch.cat([concat.v(torch.tanh(concat.W(torch.cat([q[0, 0], k[0, j]])))) for j in range(2)])
    assert_close(concat(q[:1, 0], k[:1, :2], v[:1, :2])[1][0], torch.softmax(scores, 0))


# ---------------------------------------------------------------- the shared contract, every module


@pytest.mark.parametrize("name", NAMES)
def test_masked_keys_zero_rows_sum_to_one_fully_masked_row_safe(name):
    module, q, k, v = setup(name)
    mask = MASK.unsqueeze(1).repeat(1, TQ, 1)  # (B, Tq, S)
    mask[1, 2] = False  # the last query of batch 1 may attend to nothing
    for t in (q, k, v):
        t.requires_grad_()
    before = [t.detach().clone() for t in (q, k, v, mask)]
    context, weights = module(q, k, v, mask)
    assert weights.shape == (B, TQ, S) and not torch.isnan(context).any()
    assert torch.all(weights[~mask] == 0.0)
    assert_close(weights.sum(-1), mask.any(-1).double())  # one, or zero for the fully masked row
    assert torch.equal(weights[1, 2], torch.zeros(S, dtype=torch.float64))
    if name != "mha":  # mha's context is projected
        assert_close(context, weights @ v)
        assert torch.equal(context[1, 2], torch.zeros(v.shape[-1], dtype=torch.float64))
    ((context * torch.randn_like(context)).sum() + (weights * torch.randn_like(weights)).sum()).backward()
    assert all(torch.isfinite(t.grad).all() for t in (q, k, v))
    assert all(torch.equal(t.detach(), b) for t, b in zip((q, k, v, mask), before, strict=True))


@pytest.mark.parametrize("name", NAMES)
def test_masked_keys_and_values_do_not_matter(name):
    module, q, k, v = setup(name)
    k2, v2 = k.masked_fill(~MASK.unsqueeze(-1), 100.0), v.masked_fill(~MASK.unsqueeze(-1), -7.0)
    assert_close(module(q, k2, v2, MASK), module(q, k, v, MASK))


@pytest.mark.parametrize("name", NAMES)
def test_gradcheck_float64_with_mask(name):
    module, q, k, v = setup(name, tq=2)
    mask = MASK.unsqueeze(1).repeat(1, 2, 1)
    mask[0, 1] = False  # include a fully masked row
    inputs = tuple(t.requires_grad_() for t in (q, k, v))
    assert torch.autograd.gradcheck(lambda *x: module(*x, mask), inputs, fast_mode=True)


@pytest.mark.parametrize("name", NAMES)
def test_permuting_keys_permutes_weights_and_keeps_context(name):
    module, q, k, v = setup(name)
    perm = torch.tensor([2, 0, 3, 1])
    context, weights = module(q, k, v, MASK)
    context_p, weights_p = module(q, k[:, perm], v[:, perm], MASK[:, perm])
    assert_close(weights_p, weights[..., perm])
    assert_close(context_p, context)


@pytest.mark.parametrize("name", NAMES)
def test_2d_query_equals_each_row_of_3d_query(name):
    module, q, k, v = setup(name)
    context, weights = module(q, k, v, MASK)  # (B, Tq, .)
    for t in range(TQ):
        context_t, weights_t = module(q[:, t], k, v, MASK)  # (B, .)
        assert context_t.dim() == 2 and weights_t.shape == (B, S)
        assert_close(context_t, context[:, t])
        assert_close(weights_t, weights[:, t])


@pytest.mark.parametrize("name", NAMES)
def test_lengths_equals_mask_and_values_default_to_keys(name):
    module, q, k, v = setup(name)
    by_mask = module(q, k, v, lengths_to_mask(LENGTHS, S))
    assert_close(module(q, k, v, lengths=LENGTHS), by_mask)
    if name != "mha":  # mha's vdim (3) differs from kdim (4), so values cannot default there
        assert_close(module(q, k, mask=MASK), module(q, k, k, MASK))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", NAMES)
def test_half_precision_weights_are_float_correct(name, dtype):
    module, q, k, v = setup(name, torch.float32)
    half = copy.deepcopy(module).to(dtype)
    context, weights = half(q.to(dtype), k.to(dtype), v.to(dtype), MASK)
    assert context.dtype == dtype and weights.dtype == dtype
    assert torch.all(weights[~MASK.unsqueeze(1).expand_as(weights)] == 0)
    # Compare with the float32 computation from the same (rounded) weights and inputs.
    _, ref = module.to(dtype).float()(q.to(dtype).float(), k.to(dtype).float(), v.to(dtype).float(), MASK)
    tol = 2e-2 if dtype == torch.bfloat16 else 3e-3
    assert_close(weights.float(), ref, atol=tol, rtol=0)
    assert_close(weights.float().sum(-1), torch.ones(B, TQ), atol=tol, rtol=0)


CASES = {  # id: (what replaces a good call's arguments; message). All raise ValueError except mask_dtype.
    "query_4d": (lambda q, k, v: dict(query=q[None]), r"query: .* received \(1, 2,"),
    "keys_batch": (lambda q, k, v: dict(keys=k[:1]), r"keys: expected shape \(B=2, S, Dk"),
    "values_len": (lambda q, k, v: dict(values=v[:, :3]), r"values: expected shape \(B=2, S=4, Dv"),
    "query_size": (lambda q, k, v: dict(query=q[..., :2]), r"(query|keys): expected shape"),
    "mask_shape": (
        lambda q, k, v: dict(mask=MASK[:, :3]),
        r"mask: expected shape \(B=2, S=4\) or \(B=2, Tq=3, S=4\) with True = attend, received \(2, 3\)",
    ),
    "mask_dtype": (lambda q, k, v: dict(mask=MASK.float()), r"mask: expected a bool tensor"),
    "both": (lambda q, k, v: dict(mask=MASK, lengths=LENGTHS), r"mask, lengths: expected at most one"),
    "lengths": (lambda q, k, v: dict(lengths=LENGTHS + 3), r"lengths: expected every length <= S=4"),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("name", NAMES)
def test_bad_arguments_raise_clear_errors(name, case):
    module, q, k, v = setup(name)
    make_kwargs, match = CASES[case]
    with pytest.raises(TypeError if case == "mask_dtype" else ValueError, match=match):
        module(**({"query": q, "keys": k, "values": v} | make_kwargs(q, k, v)))


@pytest.mark.parametrize("name", ["scaled_dot", "mha"])
def test_dropout_thins_the_mix_not_the_returned_weights(name):
    module, q, k, v = setup(name)
    module.dropout = 0.5
    context, weights = module.eval()(q, k, v, MASK)
    context_train, weights_train = module.train()(q, k, v, MASK)
    assert_close(weights_train, weights)  # still a distribution
    assert not torch.allclose(context_train, context)


# ---------------------------------------------------------------- MultiHeadAttention against torch.nn


@pytest.mark.parametrize("average", [True, False])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("kvdim", [(None, None), (4, 3)])
def test_multihead_matches_torch(kvdim, bias, masked, average):
    torch.manual_seed(0)
    ref = nn.MultiheadAttention(6, 2, bias=bias, kdim=kvdim[0], vdim=kvdim[1], batch_first=True).double()
    ours = MultiHeadAttention(6, 2, bias=bias, kdim=kvdim[0], vdim=kvdim[1]).double()
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in ref.named_parameters()]
    ours.load_state_dict(ref.state_dict(), strict=True)
    ref.load_state_dict(ours.state_dict(), strict=True)
    q = torch.randn(B, TQ, 6, dtype=torch.float64, requires_grad=True)
    k = torch.randn(B, S, kvdim[0] or 6, dtype=torch.float64, requires_grad=True)
    v = torch.randn(B, S, kvdim[1] or 6, dtype=torch.float64, requires_grad=True)
    mask = MASK if masked else None
    kpm = None if mask is None else ~mask  # torch: True = ignore
    out_ref, w_ref = ref(q, k, v, key_padding_mask=kpm, average_attn_weights=average)
    out, w = ours(q, k, v, mask, average_weights=average)
    assert_close(out, out_ref)
    assert_close(w, w_ref)
    grad = torch.randn_like(out)
    got = torch.autograd.grad(out, [q, k, v, *ours.parameters()], grad)
    want = torch.autograd.grad(out_ref, [q, k, v, *ref.parameters()], grad)
    assert_close(got, want)


def test_multihead_per_query_mask_matches_torch_attn_mask():
    torch.manual_seed(0)
    ref = nn.MultiheadAttention(6, 2, batch_first=True).double()
    ours = MultiHeadAttention(6, 2).double()
    ours.load_state_dict(ref.state_dict())
    q, k = torch.randn(B, TQ, 6, dtype=torch.float64), torch.randn(B, S, 6, dtype=torch.float64)
    mask = torch.rand(B, TQ, S) > 0.4
    mask[..., 0] = True  # torch gives NaN for a fully masked row; we give zeros (tested above)
    attn_mask = (~mask).repeat_interleave(2, dim=0)  # (B * h, Tq, S), torch's True = not allowed
    out_ref, w_ref = ref(q, k, k, attn_mask=attn_mask)
    assert_close(ours(q, k, mask=mask), (out_ref, w_ref))


def test_multihead_init_and_errors():
    torch.manual_seed(0)
    ours = MultiHeadAttention(8, 4, kdim=5)
    assert ours.k_proj_weight.shape == (8, 5) and ours.in_proj_weight is None
    assert torch.all(ours.in_proj_bias == 0) and torch.all(ours.out_proj.bias == 0)
    with pytest.raises(ValueError, match=r"embed_dim, num_heads: .*received embed_dim=6, num_heads=4"):
        MultiHeadAttention(6, 4)


# ---------------------------------------------------------------- AttentionPooling and the fourth seed


def seed_003_pooling(output, attn_linear, v):
    """The fourth seed's BiLSTM attention as intended, its bugs fixed: the typo ``attn_ennrgies``, the
    time-major encoder outputs fed to a batch-first bmm, and ``permute(1, 2, 0)`` for the weighted sum."""
    encoder_outputs = output.transpose(0, 1)  # (T, B, 2H) -> (B, T, 2H)
    energy = torch.tanh(attn_linear(encoder_outputs)).transpose(1, 2)  # (B, H, T)
    v = v.repeat(encoder_outputs.size(0), 1).unsqueeze(1)  # (B, 1, H)
    attn_energies = torch.bmm(v, energy).squeeze(1)  # (B, T)
    attn_weights = F.softmax(attn_energies, dim=1).unsqueeze(1)  # (B, 1, T)
    return torch.bmm(attn_weights, encoder_outputs).squeeze(1), attn_weights.squeeze(1)  # (B, 2H), (B, T)


def test_pooling_matches_seed_003_bilstm_attention():
    torch.manual_seed(0)
    seq_len, batch_size, input_size, hidden_size = 10, 4, 5, 6
    lstm = nn.LSTM(input_size, hidden_size, num_layers=2, bidirectional=True)
    output, _ = lstm(torch.randn(seq_len, batch_size, input_size))  # (T, B, 2H)
    attn_linear, v = nn.Linear(2 * hidden_size, hidden_size), torch.rand(hidden_size) - 0.5
    pool = AttentionPooling(2 * hidden_size, hidden_size)
    with torch.no_grad():
        pool.W.load_state_dict(attn_linear.state_dict())
        pool.v.copy_(v)
    context, weights = pool(output.transpose(0, 1))
    assert_close((context, weights), seed_003_pooling(output, attn_linear, v))
    assert context.shape == (batch_size, 2 * hidden_size)


def test_pooling_padded_batch_equals_each_sequence_alone():
    torch.manual_seed(0)
    pool = AttentionPooling(3, 5).double()
    inputs = torch.randn(3, 6, 3, dtype=torch.float64)
    lengths = torch.tensor([6, 2, 4])
    context, weights = pool(inputs, lengths=lengths)
    assert_close(pool(inputs, mask=lengths_to_mask(lengths)), (context, weights))
    for b, n in enumerate(lengths.tolist()):
        alone_context, alone_weights = pool(inputs[b : b + 1, :n])
        assert_close(context[b], alone_context[0])
        assert_close(weights[b, :n], alone_weights[0])
        assert torch.all(weights[b, n:] == 0.0)


def test_pooling_gradcheck_full_mask_and_signature():
    assert list(inspect.signature(AttentionPooling.forward).parameters) == [
        "self",
        "inputs",
        "mask",
        "lengths",
    ]
    torch.manual_seed(0)
    pool = AttentionPooling(3, 4).double()
    inputs = torch.randn(2, 4, 3, dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[True, False, True, True], [False] * 4])
    assert torch.autograd.gradcheck(lambda x: pool(x, mask), (inputs,), fast_mode=True)
    context, weights = pool(inputs, mask)
    assert torch.equal(weights[1], torch.zeros(4, dtype=torch.float64)) and not context.isnan().any()
    with pytest.raises(ValueError, match=r"inputs: expected shape \(B, T, D=3\), received \(4, 3\)"):
        pool(inputs[0])


# ---------------------------------------------------------------- the first seed's Attn


def seed_000_forward(attn, Q, K, V):
    """The seed's forward, literally, on the module's own nn.Linear layers."""
    attn_weights = F.softmax(attn.attn(torch.cat((Q[0], K[0]), 1)), dim=1)
    attn_applied = torch.bmm(attn_weights.unsqueeze(0), V)
    output = torch.cat((Q[0], attn_applied[0]), 1)
    output = attn.attn_combine(output).unsqueeze(0)
    return output, attn_weights


@pytest.mark.parametrize("n", [1, 3])
def test_attn_reproduces_the_seed(n):
    torch.manual_seed(0)
    attn = Attn(32, 32, 32, 64, 64)
    Q, K, V = torch.randn(1, n, 32), torch.randn(1, n, 32), torch.randn(1, 32, 64)
    output, weights = attn(Q, K, V)
    assert output.shape == (1, n, 64) and weights.shape == (n, 32)
    assert_close((output, weights), seed_000_forward(attn, Q, K, V))


def test_attn_weights_ignore_the_values_and_take_a_mask():
    torch.manual_seed(0)
    attn = Attn(3, 2, 5, 4, 6).double()
    Q, K = torch.randn(1, 2, 3, dtype=torch.float64), torch.randn(1, 2, 2, dtype=torch.float64)
    V = torch.randn(1, 5, 4, dtype=torch.float64, requires_grad=True)
    _, weights = attn(Q, K, V)
    assert_close(attn(Q, K, 10 * V)[1], weights)  # not content-based: the values never move the weights
    mask = torch.tensor([[True, True, True, False, False], [True] * 5])
    output, masked = attn(Q, K, V, mask)
    assert torch.all(masked[0, 3:] == 0.0) and torch.equal(masked[1], weights[1])
    assert torch.autograd.gradcheck(
        lambda q, k, v: attn(q, k, v, mask), (Q.requires_grad_(), K.requires_grad_(), V), fast_mode=True
    )
    with pytest.raises(ValueError, match=r"V: expected shape \(1, value_size1=5, value_size2=4\), received"):
        attn(Q, K, V[:, :4])


# ---------------------------------------------------------------- registry


@pytest.mark.parametrize("name", list(ATTENTION))
def test_build_attention_by_name(name):
    size = 4 if name in ("dot", "scaled_dot") else 5
    module = build_attention(name, size, 4, 7)
    assert type(module) is ATTENTION[name]
    context, weights = module(torch.randn(B, size), torch.randn(B, S, 4), torch.randn(B, S, 3), MASK)
    assert context.shape == (B, 3) and torch.all(weights[~MASK] == 0.0)


def test_build_attention_errors():
    with pytest.raises(ValueError, match=r"name: expected one of \['additive', .*received 'luong'"):
        build_attention("luong", 4, 4, 4)
    with pytest.raises(ValueError, match=r"key_size: 'dot' attention needs query_size == key_size"):
        build_attention("dot", 4, 5, 4)
    with pytest.raises(ValueError, match=r"hidden_size: 'concat' attention needs an int, received None"):
        build_attention("concat", 4, 5)
