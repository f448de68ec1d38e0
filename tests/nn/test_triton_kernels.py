"""The Triton back end of the fused path, one direction at a time, against the readable path.

Every gate kernel (RNN tanh / relu, LSTM with and without a projection, GRU), forward and backward, runs
through :func:`rnnlab.nn.fused._run_direction` with ``backend="triton"``; the readable runner
(:func:`rnnlab.nn._loop.run_direction_readable`) on the same inputs is the reference for outputs, final
states and every gradient: float64 and float32, padded and packed, forward and reverse, with and without
biases; then bfloat16 / float16 against float64, the float32 state of those, the no-grad path and the
dispatch switch. On the CPU the kernels run under Triton's interpreter (see ``triton_testing``).
"""

from __future__ import annotations

import pytest
import torch
from triton_testing import DEVICE, count_calls, load_backend, triton_env, weighted_loss  # noqa: F401

from rnnlab.nn import fused
from rnnlab.nn._loop import run_direction_readable

pytestmark = [pytest.mark.triton, pytest.mark.usefixtures("triton_env")]

TB = load_backend()

VARIANTS = [("RNN_TANH", False), ("RNN_RELU", False), ("GRU", False), ("LSTM", False), ("LSTM", True)]
VARIANT_IDS = ["rnn_tanh", "rnn_relu", "gru", "lstm", "lstmp"]
T, B, I, H, P = 5, 4, 3, 6, 4  # steps, batch, input, hidden, projection
LENGTHS = [5, 5, 3, 1]  # packed: sorted longest first, with a tie and a length-1 sequence


def tol(dtype: torch.dtype) -> dict:
    return {"rtol": 2e-5, "atol": 2e-6} if dtype == torch.float32 else {"rtol": 1e-9, "atol": 1e-11}


def make_case(mode, proj, bias, packed, dtype, seed=0):
    """x, batch_sizes, state and weights of one direction, as leaves (requires_grad) on DEVICE."""
    g = torch.Generator().manual_seed(seed)
    gates = {"LSTM": 4, "GRU": 3}.get(mode, 1) * H
    h_size = P if proj else H
    bound = H**-0.5  # torch.nn's init range, so the gates stay in their interesting region

    def leaf(t):
        return t.to(device=DEVICE, dtype=dtype).requires_grad_()

    def uniform(*shape):
        return leaf((torch.rand(*shape, generator=g, dtype=torch.float64) * 2 - 1) * bound)

    weights = [uniform(gates, I), uniform(gates, h_size)]
    weights += [uniform(gates), uniform(gates)] if bias else [None, None]
    if mode == "LSTM":
        weights.append(uniform(P, H) if proj else None)
    state = [leaf(torch.randn(B, h_size, generator=g, dtype=torch.float64))]
    if mode == "LSTM":
        state.append(leaf(torch.randn(B, H, generator=g, dtype=torch.float64)))
    batch_sizes = [sum(1 for n in LENGTHS if n > t) for t in range(T)] if packed else None
    x_shape = (sum(batch_sizes), I) if packed else (T, B, I)  # (N, H_in) or (T, B, H_in)
    x = leaf(torch.randn(*x_shape, generator=g, dtype=torch.float64))
    return x, batch_sizes, tuple(state), tuple(weights)


def leaves_of(x, state, weights):
    return [t for t in (x, *state, *weights) if t is not None]


def outputs_and_grads(run, mode, x, batch_sizes, state, weights, reverse):
    out, final = run(mode, x, batch_sizes, state, weights, reverse)
    outs = [out, *final]
    grads = torch.autograd.grad(weighted_loss(outs), leaves_of(x, state, weights))
    return [o.detach() for o in outs] + list(grads)


def triton_run(mode, x, batch_sizes, state, weights, reverse):
    return fused._run_direction(mode, x, batch_sizes, state, weights, reverse, backend="triton")


def assert_all_close(got, want, **tolerance):
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape and g.dtype == w.dtype
        torch.testing.assert_close(g, w, **tolerance)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("packed", [False, True], ids=["padded", "packed"])
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize(("mode", "proj"), VARIANTS, ids=VARIANT_IDS)
def test_direction_matches_readable(monkeypatch, mode, proj, reverse, packed, dtype):
    calls = count_calls(monkeypatch, TB, "backward")
    case = make_case(mode, proj, True, packed, dtype)
    want = outputs_and_grads(run_direction_readable, mode, *case, reverse)
    got = outputs_and_grads(triton_run, mode, *case, reverse)
    assert calls == [1]  # the hand-written backward ran, not the readable fallback
    assert_all_close(got, want, **tol(dtype))


@pytest.mark.parametrize(("mode", "proj"), VARIANTS, ids=VARIANT_IDS)
def test_direction_without_bias(mode, proj):
    case = make_case(mode, proj, False, True, torch.float64, seed=1)
    want = outputs_and_grads(run_direction_readable, mode, *case, True)
    got = outputs_and_grads(triton_run, mode, *case, True)
    assert_all_close(got, want, **tol(torch.float64))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "f16"])
@pytest.mark.parametrize(("mode", "proj"), VARIANTS, ids=VARIANT_IDS)
def test_half_precision_against_float64(mode, proj, dtype):
    """Low-precision layers keep their dtype in and out; the values are float64's within the dtype's
    rounding (the reference runs on the very same rounded inputs, upcast)."""
    case = make_case(mode, proj, True, True, dtype, seed=2)
    x, batch_sizes, state, weights = case

    def up(t):
        return None if t is None else t.detach().double().requires_grad_()

    want = outputs_and_grads(
        run_direction_readable, mode, up(x), batch_sizes, tuple(map(up, state)), tuple(map(up, weights)), True
    )
    got = outputs_and_grads(triton_run, mode, *case, True)
    rel = 3e-2 if dtype == torch.bfloat16 else 4e-3
    for g, w in zip(got, want, strict=True):
        assert g.dtype == dtype and g.shape == w.shape
        scale = w.abs().max().clamp_min(1.0)
        assert ((g.double() - w).abs().max() / scale).item() < rel


@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
def test_half_precision_keeps_the_state_in_float32(mode):
    x, batch_sizes, state, weights = make_case(mode, False, True, False, torch.bfloat16)
    h0, c0 = state[0], state[1] if mode == "LSTM" else None
    w_hr = weights[4] if mode == "LSTM" else None
    out, hn, cn, ws_g, ws_s, ws_m = TB.forward(mode, x, [B] * T, h0, c0, *weights[:4], w_hr, False, True)
    assert out.dtype == hn.dtype == torch.bfloat16
    assert ws_g.dtype == ws_s.dtype == torch.float32  # gate activations and c (LSTM) / hn (GRU)
    if mode == "LSTM":
        assert cn.dtype == torch.bfloat16
        torch.testing.assert_close(cn, ws_s[-B:].to(torch.bfloat16), rtol=0, atol=0)


@pytest.mark.parametrize(("mode", "proj"), VARIANTS, ids=VARIANT_IDS)
def test_no_grad_forward_equals_the_training_one(mode, proj):
    case = make_case(mode, proj, True, True, torch.float32, seed=3)
    out, final = triton_run(mode, *case, True)
    with torch.no_grad():
        out_ng, final_ng = triton_run(mode, *case, True)
    assert not out_ng.requires_grad
    for got, want in zip([out_ng, *final_ng], [out, *final], strict=True):
        torch.testing.assert_close(got, want.detach(), rtol=0, atol=0)


def test_switch_sends_cpu_tensors_to_triton(monkeypatch):
    x, batch_sizes, state, weights = make_case("GRU", False, True, False, torch.float32)
    calls = count_calls(monkeypatch, TB, "forward")
    if DEVICE == "cpu":  # without the switch the CPU back ends run, and bfloat16 is not theirs
        monkeypatch.delenv("RNNLAB_FUSED_BACKEND")
        assert not fused.supports("GRU", x.bfloat16(), state, weights)
        fused.run_direction("GRU", x, batch_sizes, state, weights, reverse=False)
        assert calls == []
        monkeypatch.setenv("RNNLAB_FUSED_BACKEND", "triton")
    half = [t.detach().bfloat16() for t in (x, *state, *weights)]
    assert fused.supports("GRU", half[0], tuple(half[1:2]), tuple(half[2:]))
    fused.run_direction("GRU", x, batch_sizes, state, weights, reverse=False)
    assert calls == [1]


def test_switch_rejects_unknown_values(monkeypatch):
    x, batch_sizes, state, weights = make_case("RNN_TANH", False, True, False, torch.float32)
    monkeypatch.setenv("RNNLAB_FUSED_BACKEND", "cuda")
    with pytest.raises(ValueError, match=r"RNNLAB_FUSED_BACKEND: expected 'auto' or 'triton', got 'cuda'"):
        fused.supports("RNN_TANH", x, state, weights)
