"""The fast path (rnnlab.nn.fused) against the readable one, on both back ends (C++ and pure PyTorch).

The readable runner, ``rnnlab.nn._loop.run_direction_readable``, is the reference: same inputs,
same weights; outputs, final states and every gradient must match, over modes x bias x projection x
direction x padded/packed x float32/float64. Then gradcheck in float64, double backward, the no-grad
path, the back-end selection (extension, RNNLAB_NO_EXT, a failed build) and ``supports``.
"""

from __future__ import annotations

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence

import rnnlab.nn as rnn
from rnnlab.nn import fused
from rnnlab.nn._loop import run_direction_readable as _run_direction_readable

BACKENDS = ["cpp", "torch"]
# (mode, with projection): the LSTM is run with and without W_hr
VARIANTS = [("RNN_TANH", False), ("RNN_RELU", False), ("GRU", False), ("LSTM", False), ("LSTM", True)]
VARIANT_IDS = ["rnn_tanh", "rnn_relu", "gru", "lstm", "lstmp"]
T, B, I, H, P = 6, 4, 5, 7, 3  # steps, batch, input, hidden, projection
LENGTHS = [6, 6, 4, 1]  # packed: sorted longest first, with a tie and a length-1 sequence


def tol(dtype: torch.dtype) -> dict:
    return {"rtol": 2e-5, "atol": 2e-6} if dtype == torch.float32 else {"rtol": 1e-9, "atol": 1e-11}


def batch_sizes_of(lengths: list[int]) -> list[int]:
    return [sum(1 for n in lengths if n > t) for t in range(max(lengths))]


def make_case(mode, proj, bias, packed, dtype, seed=0, sizes=(T, B, I, H, P), lengths=LENGTHS):
    """x, batch_sizes, state and weights as leaf tensors (requires_grad) for one direction."""
    T_, B_, I_, H_, P_ = sizes
    g = torch.Generator().manual_seed(seed)
    gates = {"LSTM": 4, "GRU": 3}.get(mode, 1) * H_
    h_size = P_ if proj else H_
    bound = H_**-0.5  # torch.nn's init range, so activations stay in their interesting region

    def uniform(*shape):
        return ((torch.rand(*shape, generator=g, dtype=dtype) * 2 - 1) * bound).requires_grad_()

    weights = [uniform(gates, I_), uniform(gates, h_size)]
    weights += [uniform(gates), uniform(gates)] if bias else [None, None]
    if mode == "LSTM":
        weights.append(uniform(P_, H_) if proj else None)
    state = [torch.randn(B_, h_size, generator=g, dtype=dtype).requires_grad_()]
    if mode == "LSTM":
        state.append(torch.randn(B_, H_, generator=g, dtype=dtype).requires_grad_())
    if packed:
        batch_sizes = batch_sizes_of(lengths)
        x = torch.randn(sum(batch_sizes), I_, generator=g, dtype=dtype).requires_grad_()  # (N, H_in)
    else:
        batch_sizes = None
        x = torch.randn(T_, B_, I_, generator=g, dtype=dtype).requires_grad_()  # (T, B, H_in)
    return x, batch_sizes, tuple(state), tuple(weights)


def leaves_of(x, state, weights) -> list[torch.Tensor]:
    return [t for t in (x, *state, *weights) if t is not None]


def outputs_and_grads(run, mode, x, batch_sizes, state, weights, reverse):
    """Run, then a loss that weighs every element of every output differently; return outputs and grads."""
    out, final = run(mode, x, batch_sizes, state, weights, reverse)
    outs = [out, *final]
    g = torch.Generator().manual_seed(7)
    # the loss weights are drawn in float64 so that both dtypes get the same numbers
    loss = sum((o * torch.randn(o.shape, generator=g, dtype=torch.float64).to(o.dtype)).sum() for o in outs)
    grads = torch.autograd.grad(loss, leaves_of(x, state, weights))
    return [o.detach() for o in outs], list(grads)


def readable_in_float64(mode, x, batch_sizes, state, weights, reverse):
    """The readable path's outputs and gradients on float64 copies of the case (the reference for float32)."""

    def to64(t):
        return None if t is None else t.detach().double().requires_grad_()

    x64, state64, weights64 = to64(x), tuple(map(to64, state)), tuple(map(to64, weights))
    return outputs_and_grads(_run_direction_readable, mode, x64, batch_sizes, state64, weights64, reverse)


def fused_runner(backend: str):
    def run(mode, x, batch_sizes, state, weights, reverse):
        return fused._run_direction(mode, x, batch_sizes, state, weights, reverse, backend=backend)

    return run


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    if request.param == "cpp" and not fused.extension_available():
        pytest.skip("RNNLAB_NO_EXT is set: the C++ back end is off")
    return request.param


# ------------------------------------------------------------------------------------------------------
# Parity with the readable path
# ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("packed", [False, True], ids=["padded", "packed"])
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize(("mode", "proj"), VARIANTS, ids=VARIANT_IDS)
def test_matches_readable(backend, mode, proj, bias, reverse, packed, dtype):
    x, batch_sizes, state, weights = make_case(mode, proj, bias, packed, dtype)
    want_outs, want_grads = outputs_and_grads(
        _run_direction_readable, mode, x, batch_sizes, state, weights, reverse
    )
    got_outs, got_grads = outputs_and_grads(
        fused_runner(backend), mode, x, batch_sizes, state, weights, reverse
    )
    for got, want in zip(got_outs + got_grads, want_outs + want_grads, strict=True):
        assert got.shape == want.shape
        torch.testing.assert_close(got, want, **tol(dtype))


@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize(("mode", "proj"), VARIANTS, ids=VARIANT_IDS)
def test_matches_readable_across_chunks(backend, mode, proj, reverse):
    """More rows than one chunk of the C++ loop (1024): the projection and the weight gradients are done
    chunk by chunk, with chunk edges inside the packed batch's uneven steps."""
    lengths = sorted([37] * 20 + [30] * 13 + [9] * 11 + [1] * 6, reverse=True)  # B = 50, N = 1595
    x, batch_sizes, state, weights = make_case(
        mode, proj, True, True, torch.float64, sizes=(37, 50, 3, 5, 2), lengths=lengths
    )
    want_outs, want_grads = outputs_and_grads(
        _run_direction_readable, mode, x, batch_sizes, state, weights, reverse
    )
    got_outs, got_grads = outputs_and_grads(
        fused_runner(backend), mode, x, batch_sizes, state, weights, reverse
    )
    for got, want in zip(got_outs + got_grads, want_outs + want_grads, strict=True):
        torch.testing.assert_close(got, want, **tol(torch.float64))


@pytest.mark.parametrize(("mode", "proj"), VARIANTS, ids=VARIANT_IDS)
def test_no_grad_path_matches_training_path(backend, mode, proj):
    """Inference (no workspace kept, rolling buffers) gives the training path's numbers."""
    x, batch_sizes, state, weights = make_case(mode, proj, True, True, torch.float64, seed=3)
    run = fused_runner(backend)
    out, final = run(mode, x, batch_sizes, state, weights, True)
    assert out.requires_grad
    with torch.no_grad():
        out_ng, final_ng = run(mode, x, batch_sizes, state, weights, True)
    assert not out_ng.requires_grad
    for got, want in zip([out_ng, *final_ng], [out, *final], strict=True):
        torch.testing.assert_close(got, want.detach(), rtol=0, atol=0)


@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize(("mode", "proj"), VARIANTS, ids=VARIANT_IDS)
def test_float32_on_a_larger_case(backend, mode, proj, reverse):
    """float32 on sizes that run the C++ gate loops' 8-wide vector bodies and tails (H = 67), split a step's
    rows across threads (B = 64) and span several chunks, against the readable path in float64."""
    lengths = sorted([40, 40, 33, 20, 20, 19, 7, 1] * 8, reverse=True)
    case = make_case(
        mode, proj, True, True, torch.float32, seed=5, sizes=(40, 64, 37, 67, 19), lengths=lengths
    )
    x, batch_sizes, state, weights = case
    got_outs, got_grads = outputs_and_grads(
        fused_runner(backend), mode, x, batch_sizes, state, weights, reverse
    )
    want_outs, want_grads = readable_in_float64(mode, x, batch_sizes, state, weights, reverse)
    for got, want in zip(got_outs + got_grads, want_outs + want_grads, strict=True):
        # float32's rounding, accumulated over 40 steps and sums of ~1500 rows, relative to the tensor's scale
        torch.testing.assert_close(got.double(), want, rtol=1e-4, atol=1e-5 * float(want.abs().max()))


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


@pytest.mark.usefixtures("two_threads")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("split", ["rows", "cols"])
@pytest.mark.parametrize("packed", [False, True], ids=["padded", "packed"])
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize(("mode", "proj"), VARIANTS, ids=VARIANT_IDS)
def test_two_threads_split_by_rows_or_by_hidden_units(monkeypatch, mode, proj, reverse, packed, split, dtype):
    """The C++ forward shares a step out between threads by rows or by hidden units (each thread its own
    slice of W_hh, 67 units cut at 32: not a multiple of 16 or of the 8-wide vectors); both give the
    readable path's outputs and gradients, and the no-grad pass the training pass's numbers (to rounding:
    BLAS may sum in another order for buffers at other addresses). The LSTM with a projection always
    splits by rows: it needs all of m for m W_hr^T."""
    if not fused.extension_available():
        pytest.skip("RNNLAB_NO_EXT is set: the C++ back end is off")
    monkeypatch.setenv("RNNLAB_FUSED_SPLIT", split)
    lengths = sorted([12] * 17 + [9] * 12 + [4] * 10 + [1], reverse=True)  # B = 40
    case = make_case(mode, proj, True, packed, dtype, seed=3, sizes=(12, 40, 9, 67, 19), lengths=lengths)
    x, batch_sizes, state, weights = case
    got_outs, got_grads = outputs_and_grads(
        fused_runner("cpp"), mode, x, batch_sizes, state, weights, reverse
    )
    want_outs, want_grads = readable_in_float64(mode, x, batch_sizes, state, weights, reverse)
    for got, want in zip(got_outs + got_grads, want_outs + want_grads, strict=True):
        if dtype == torch.float64:
            torch.testing.assert_close(got, want, **tol(dtype))
        else:
            torch.testing.assert_close(got.double(), want, rtol=1e-4, atol=1e-5 * float(want.abs().max()))
    with torch.no_grad():
        out_ng, final_ng = fused_runner("cpp")(mode, x, batch_sizes, state, weights, reverse)
    for got, want in zip([out_ng, *final_ng], got_outs, strict=True):
        torch.testing.assert_close(got, want, **tol(dtype))


def test_only_requested_gradients_are_computed(backend):
    """x without requires_grad (a first layer fed from data): no dx product, the rest unchanged."""
    x, batch_sizes, state, weights = make_case("LSTM", False, True, False, torch.float64)
    x_data = x.detach()
    out, (h_n, c_n) = fused_runner(backend)("LSTM", x_data, None, state, weights, False)
    (out.sum() + h_n.sum() + c_n.sum()).backward()
    assert x_data.grad is None
    out, (h_n, c_n) = _run_direction_readable("LSTM", x_data, None, state, weights, False)
    (want,) = torch.autograd.grad(out.sum() + h_n.sum() + c_n.sum(), weights[0])
    torch.testing.assert_close(weights[0].grad, want, **tol(torch.float64))


def test_backward_twice_with_retain_graph(backend):
    """The saved workspace is not consumed by a backward (torch.nn allows retain_graph=True)."""
    x, batch_sizes, state, weights = make_case("GRU", False, True, True, torch.float64)
    out, (h_n,) = fused_runner(backend)("GRU", x, batch_sizes, state, weights, False)
    loss = out.pow(2).sum() + h_n.sum()
    first = torch.autograd.grad(loss, leaves_of(x, state, weights), retain_graph=True)
    second = torch.autograd.grad(loss, leaves_of(x, state, weights))
    for a, b in zip(first, second, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_non_contiguous_input(backend):
    """A batch_first input transposed to time-major (what the layers pass) is a strided view."""
    x, _, state, weights = make_case("LSTM", False, True, False, torch.float64)
    x_bf = x.detach().transpose(0, 1).contiguous().requires_grad_()  # (B, T, H_in)
    view = x_bf.transpose(0, 1)  # (T, B, H_in), not contiguous
    want_outs, want_grads = outputs_and_grads(
        _run_direction_readable, "LSTM", view, None, state, weights, False
    )
    got_outs, got_grads = outputs_and_grads(fused_runner(backend), "LSTM", view, None, state, weights, False)
    for got, want in zip(got_outs + got_grads, want_outs + want_grads, strict=True):
        torch.testing.assert_close(got, want, **tol(torch.float64))


@pytest.mark.parametrize("lengths", [[1], [3, 3, 3], [5, 1, 1]], ids=["one_step", "equal", "mostly_short"])
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
def test_packed_edge_cases(backend, lengths, reverse):
    x, batch_sizes, state, weights = make_case(
        "LSTM", False, True, True, torch.float64, sizes=(max(lengths), len(lengths), I, H, P), lengths=lengths
    )
    want_outs, want_grads = outputs_and_grads(
        _run_direction_readable, "LSTM", x, batch_sizes, state, weights, reverse
    )
    got_outs, got_grads = outputs_and_grads(
        fused_runner(backend), "LSTM", x, batch_sizes, state, weights, reverse
    )
    for got, want in zip(got_outs + got_grads, want_outs + want_grads, strict=True):
        torch.testing.assert_close(got, want, **tol(torch.float64))


# ------------------------------------------------------------------------------------------------------
# gradcheck (float64) of the autograd Function, and double backward
# ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reverse", "packed"), [(False, False), (True, True)], ids=["fwd_padded", "rev_packed"]
)
@pytest.mark.parametrize(("mode", "proj"), VARIANTS, ids=VARIANT_IDS)
def test_gradcheck(backend, mode, proj, reverse, packed):
    x, batch_sizes, state, weights = make_case(
        mode, proj, True, packed, torch.float64, sizes=(3, 3, 2, 3, 2), lengths=[3, 2, 1]
    )
    leaves = leaves_of(x, state, weights)
    n_state = len(state)

    def fn(*args):
        x_, st_, w_ = args[0], args[1 : 1 + n_state], list(args[1 + n_state :])
        full_w = [w_.pop(0) if w is not None else None for w in weights]
        out, final = fused._run_direction(mode, x_, batch_sizes, st_, tuple(full_w), reverse, backend=backend)
        return (out, *final)

    assert torch.autograd.gradcheck(fn, leaves, eps=1e-6, atol=1e-7)


def test_double_backward_matches_readable(backend):
    """create_graph=True runs the readable equations inside the backward: second derivatives agree."""
    sizes = (3, 3, 2, 3, 2)
    x, batch_sizes, state, weights = make_case(
        "LSTM", False, True, True, torch.float64, sizes=sizes, lengths=[3, 2, 1]
    )

    def grad_norm(run):
        out, final = run("LSTM", x, batch_sizes, state, weights, True)
        loss = out.pow(2).sum() + final[1].sum()
        (gx,) = torch.autograd.grad(loss, x, create_graph=True)
        return torch.autograd.grad(gx.pow(2).sum(), leaves_of(x, state, weights))

    for got, want in zip(grad_norm(fused_runner(backend)), grad_norm(_run_direction_readable), strict=True):
        torch.testing.assert_close(got, want, **tol(torch.float64))


# ------------------------------------------------------------------------------------------------------
# Back-end selection
# ------------------------------------------------------------------------------------------------------


def test_extension_builds_unless_disabled(monkeypatch):
    """On a machine with a compiler (CI included) the C++ back end is what runs by default."""
    if fused._build._ext["error"] is None and not fused.extension_available():
        pytest.skip("RNNLAB_NO_EXT is set")
    assert fused._build._ext["error"] is None
    assert fused._backend(None) is not fused._torch_backend
    monkeypatch.setenv("RNNLAB_NO_EXT", "1")
    assert fused._backend(None) is fused._torch_backend
    assert not fused.extension_available()


def test_failed_build_warns_once_and_falls_back(monkeypatch):
    monkeypatch.delenv("RNNLAB_NO_EXT", raising=False)
    monkeypatch.setattr(fused._build, "_ext", {"tried": False, "ops": None, "error": None})

    def broken(verbose=False):
        raise OSError("no compiler here")

    monkeypatch.setattr(fused._build, "_load", broken)
    with pytest.warns(fused.FusedExtensionWarning, match="no compiler here"):
        assert fused._backend(None) is fused._torch_backend
    with pytest.raises(RuntimeError, match="not available"):
        fused._backend("cpp")
    assert fused._backend(None) is fused._torch_backend  # no second warning (warnings are errors in tests)
    x, batch_sizes, state, weights = make_case("GRU", False, True, False, torch.float64)
    out, _ = fused.run_direction("GRU", x, batch_sizes, state, weights, False)
    torch.testing.assert_close(out, _run_direction_readable("GRU", x, batch_sizes, state, weights, False)[0])


def test_cpp_ops_take_the_mode_by_name():
    """The mode crosses into C++ as torch.nn's name (no numbering shared with Python); others are refused."""
    if not fused.extension_available():
        pytest.skip("RNNLAB_NO_EXT is set: the C++ back end is off")
    ops = fused._backend("cpp")
    case = make_case("GRU", False, False, False, torch.float64)
    x, _, (h0,), (w_ih, w_hh, _, _) = case
    x, h0, w_ih, w_hh = x.detach(), h0.detach(), w_ih.detach(), w_hh.detach()
    args = (x, [B] * T, h0, None, w_ih, w_hh, None, None, None, False, False)
    out = ops.forward("GRU", *args)[0]
    want, _ = _run_direction_readable("GRU", x, None, (h0,), (w_ih, w_hh, None, None), False)
    torch.testing.assert_close(out.view(T, B, H), want, **tol(torch.float64))
    with pytest.raises(RuntimeError, match='mode must be .*got "GRU2"'):
        ops.forward("GRU2", *args)
    with pytest.raises(RuntimeError, match="weight shapes do not match"):
        ops.forward("LSTM", *args[:3], h0, *args[4:])  # 3H rows are no LSTM's 4H


# ------------------------------------------------------------------------------------------------------
# supports()
# ------------------------------------------------------------------------------------------------------


def test_supports_float_cpu_tensors():
    for mode, proj in VARIANTS:
        for dtype in (torch.float32, torch.float64):
            x, _, state, weights = make_case(mode, proj, True, False, dtype)
            assert fused.supports(mode, x, state, weights)


def test_supports_rejects_what_it_does_not_handle():
    x, _, state, weights = make_case("LSTM", False, True, False, torch.float32)
    assert not fused.supports("LSTM_PEEPHOLE", x, state, weights)
    assert not fused.supports("LSTM", x.detach().bfloat16(), state, weights)  # dtype
    assert not fused.supports("LSTM", x.detach().double(), state, weights)  # mixed dtypes
    assert not fused.supports("LSTM", x[:0], state, weights)  # empty
    assert not fused.supports("LSTM", x.to("meta"), state, weights)  # not on the CPU
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not fused.supports("LSTM", x, state, weights)
    seen = []

    def probe(x_):
        seen.append(fused.supports("LSTM", x_, state, weights))
        return x_.sum()

    torch.func.grad(probe)(x.detach())
    assert seen == [False]  # inside a torch.func transform


def test_layers_run_the_fused_path_by_default(monkeypatch):
    """rnnlab.nn.LSTM calls fused.run_direction for every (layer, direction) unless use_fused is off."""
    calls = []
    original = fused.run_direction

    def spy(*args):
        calls.append(args[0])
        return original(*args)

    monkeypatch.setattr(fused, "run_direction", spy)
    layer = rnn.LSTM(I, H, num_layers=2, bidirectional=True)
    out_fused, _ = layer(torch.randn(T, B, I))
    assert calls == ["LSTM"] * 4
    layer.use_fused = False
    torch.manual_seed(0)
    x = torch.randn(T, B, I)
    out_readable, _ = layer(x)
    assert len(calls) == 4
    layer.use_fused = True
    torch.testing.assert_close(layer(x)[0], out_readable, **tol(torch.float32))


@pytest.mark.parametrize(("mode", "proj"), VARIANTS, ids=VARIANT_IDS)
def test_matches_torch_nn_layer(mode, proj):
    """End to end, a 2-layer bidirectional layer on the default path equals torch.nn's on a packed batch."""
    cls = {"RNN_TANH": "RNN", "RNN_RELU": "RNN", "GRU": "GRU", "LSTM": "LSTM"}[mode]
    kwargs = dict(input_size=I, hidden_size=H, num_layers=2, bidirectional=True, batch_first=True)
    if mode == "RNN_RELU":
        kwargs["nonlinearity"] = "relu"
    if proj:
        kwargs["proj_size"] = P
    torch.manual_seed(0)
    ref = getattr(torch.nn, cls)(**kwargs).double()
    ours = getattr(rnn, cls)(**kwargs).double()
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(B, T, I, dtype=torch.float64, requires_grad=True)
    results = []
    for layer in (ref, ours):
        packed = pack_padded_sequence(x, torch.tensor([3, 6, 1, 5]), batch_first=True, enforce_sorted=False)
        out, state = layer(packed)
        state = state if isinstance(state, tuple) else (state,)
        loss = out.data.pow(2).sum() + sum(s.sum() for s in state)
        grads = torch.autograd.grad(loss, [x, *layer.parameters()])
        results.append([out.data, *state, *grads])
    for got, want in zip(results[1], results[0], strict=True):
        torch.testing.assert_close(got, want, **tol(torch.float64))


def test_torch_compile_traces_the_readable_path():
    """Under torch.compile the custom ops (no fake kernels) step aside; the compiled layer gives the same
    numbers as the eager one on the fast path."""
    layer = rnn.GRU(I, H, batch_first=True)
    x = torch.randn(B, T, I)
    compiled = torch.compile(layer, backend="eager", fullgraph=True)
    torch.testing.assert_close(compiled(x)[0], layer(x)[0], **tol(torch.float32))
