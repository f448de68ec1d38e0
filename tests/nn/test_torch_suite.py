"""PyTorch's own RNN tests, ported and run against rnnlab: each check asserts rnnlab does what torch.nn does.

Two sources (written in our own words; see the report table in the lead's closing note):

* test/test_modules.py's generic checks, over the ModuleInfo samples of RNN, GRU, LSTM and the three cells
  (ported in torch_suite_helpers.py, and checked against module_db itself in a child process);
* test/test_expanded_weights.py's module test; and what torch.nn's layers do under CPU autocast.

test/test_nn.py's tests about RNN, LSTM, GRU and their cells are ported in test_torch_suite_nn.py.

Checks that fail on rnnlab today are kept and marked ``xfail(strict=True)`` with what differs, so they
flip to failures (to be unmarked) once fixed. CUDA / cuDNN-only tests are not ported (nothing to run here).
"""

from __future__ import annotations

import copy
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from rnn_testing import tol
from torch import nn
from torch.autograd import gradcheck, gradgradcheck
from torch.nn.utils import rnn as rnn_utils
from torch_suite_helpers import (
    CELLS,
    LAYERS,
    LIBS,
    assert_same_outcome,
    build,
    describe,
    error_samples,
    flat,
    module_db_description,
    samples,
)

import rnnlab.nn as rnn

pytestmark = pytest.mark.usefixtures("one_thread")

DTYPES = [torch.float32, torch.float64]
# (module, use_fused): the layers on both of rnnlab's paths, the cells (which have one).
CASES = [(n, f) for n in LAYERS for f in (True, False)] + [(n, None) for n in CELLS]
CASE_IDS = [n if f is None else f"{n}-{'fused' if f else 'readable'}" for n, f in CASES]
PATHS = pytest.mark.parametrize("fused", [True, False], ids=["fused", "readable"])


def _module(lib, name, sample, fused, dtype=None, training=True):
    m = build(lib, name, *sample.args, use_fused=fused, **sample.kwargs)
    return (m if dtype is None else m.to(dtype)).train(training)


def _no_batch_dim_reference(m, name, sample, inputs):
    """torch's no_batch_dim_reference_*: the same call with a batch of one, squeezed back."""
    x, *state = inputs  # state: [] or [h] or [(h, c)]
    h_dim = 0 if name in CELLS else 1
    state = [
        tuple(s.unsqueeze(h_dim) for s in st) if isinstance(st, tuple) else st.unsqueeze(h_dim)
        for st in state
    ]
    if name in CELLS:
        return tuple(t.squeeze(0) for t in flat(m(x.unsqueeze(0), *state)))
    dim = 0 if sample.kwargs.get("batch_first") else 1
    out, *hs = flat(m(x.unsqueeze(dim), *state))
    return (out.squeeze(dim), *(h.squeeze(1) for h in hs))


# ---------------------------------------------------------------------------------------------------
# test/test_modules.py, over the ported ModuleInfo samples
# ---------------------------------------------------------------------------------------------------
def test_ported_samples_match_module_db():
    """The port describes exactly module_db's samples (constructor arguments, input shapes, errors)."""
    found = module_db_description(str(Path(__file__).parent))
    if isinstance(found, str):
        pytest.skip(f"module_db cannot be imported here: {found}")
    for name in LAYERS + CELLS:
        assert describe(samples(name)) == found[name]["samples"], name
        assert describe(error_samples(name, torch.float64)) == found[name]["errors"], name
        assert found[name]["train_and_eval_differ"] == (name in LAYERS), name


@pytest.mark.parametrize(
    ("dtype", "training"),
    [(torch.float32, True), (torch.float32, False), (torch.float64, True)],  # no dropout in the samples
    ids=["f32-train", "f32-eval", "f64-train"],
)
@pytest.mark.parametrize(("name", "fused"), CASES, ids=CASE_IDS)
def test_forward(name, fused, dtype, training):
    """test_forward: outputs equal torch's and torch's no-batch-dim reference; .float()/.double() work."""
    for sample in samples(name):
        inputs = sample.inputs(dtype, requires_grad=False)
        outs = {}
        for key, lib in LIBS.items():
            m = _module(lib, name, sample, fused, dtype, training)
            outs[key] = flat(m(*inputs))
            torch.testing.assert_close(outs[key], _no_batch_dim_reference(m, name, sample, inputs))
            getattr(m, "double" if dtype == torch.float64 else "float")()
            m(*inputs)
            assert all(p.dtype == dtype for p in m.parameters())
        torch.testing.assert_close(outs["rnnlab"], outs["torch"], **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name", LAYERS + CELLS)
def test_factory_kwargs(name, dtype):
    """test_factory_kwargs: device= and dtype= reach every parameter, the same ones as torch's."""
    for sample in samples(name):
        made = {}
        for key, lib in LIBS.items():
            m = getattr(lib, name)(*sample.args, **sample.kwargs, device="cpu", dtype=dtype)
            made[key] = [(n, p.dtype, p.device, p.shape) for n, p in m.named_parameters()]
            assert all(d == dtype and dev.type == "cpu" for _, d, dev, _ in made[key])
        assert made["rnnlab"] == made["torch"]


@pytest.mark.parametrize("name", LAYERS + CELLS)
def test_repr(name):
    """test_repr, made stronger: the very same text as torch's."""
    for sample in samples(name):
        assert repr(_module(rnn, name, sample, None)) == repr(_module(nn, name, sample, None))


@pytest.mark.parametrize(("name", "fused"), CASES, ids=CASE_IDS)
def test_pickle(name, fused):
    """test_pickle: torch.save / torch.load of the module gives the same outputs (and the same as torch)."""
    for sample in samples(name):
        inputs = sample.inputs(torch.float32, requires_grad=False)
        for lib in LIBS.values():
            m = _module(lib, name, sample, fused)
            buf = io.BytesIO()
            torch.save(m, buf)
            buf.seek(0)
            copy_ = torch.load(buf, weights_only=False)  # a whole module: torch's test loads it unrestricted
            assert type(copy_) is type(m) and getattr(copy_, "use_fused", None) == getattr(
                m, "use_fused", None
            )
            torch.testing.assert_close(flat(copy_(*inputs)), flat(m(*inputs)), rtol=0, atol=0)


@pytest.mark.parametrize("name", LAYERS + CELLS)
def test_save_load(name):
    """state_dict through torch.save / torch.load (weights-only): loads strictly into a fresh module of
    either library, which then gives the same outputs."""
    for sample in samples(name):
        inputs = sample.inputs(torch.float32, requires_grad=False)
        source = _module(nn, name, sample, None)
        buf = io.BytesIO()
        torch.save(source.state_dict(), buf)
        for lib in LIBS.values():
            buf.seek(0)
            target = build(lib, name, *sample.args, seed=1, **sample.kwargs)
            target.load_state_dict(torch.load(buf), strict=True)
            torch.testing.assert_close(flat(target(*inputs)), flat(source(*inputs)), **tol(torch.float32))


def _noncontiguous(obj):
    """torch's trick: every tensor re-made with a stride of 2 in its last dimension."""
    if isinstance(obj, tuple):
        return tuple(_noncontiguous(o) for o in obj)
    out = torch.repeat_interleave(obj, 2, dim=-1)[..., ::2].detach()
    return out.requires_grad_(obj.requires_grad)


def _leaves(inputs):
    return [t for x in inputs for t in (x if isinstance(x, tuple) else (x,))]


@pytest.mark.parametrize(("name", "fused"), CASES, ids=CASE_IDS)
def test_non_contiguous_tensors(name, fused):
    """test_non_contiguous_tensors: strided inputs and output gradients give the same outputs and grads."""
    for sample in samples(name)[::3]:  # an odd stride: samples with and without a state, of every option
        m = _module(rnn, name, sample, fused, torch.float64)
        ref = _module(nn, name, sample, None, torch.float64)
        base = sample.inputs(torch.float64, requires_grad=True)
        g = torch.Generator().manual_seed(1)
        grad_out = tuple(torch.randn(t.shape, dtype=t.dtype, generator=g) for t in flat(ref(*base)))
        expected = flat(ref(*base))
        want = torch.autograd.grad(expected, _leaves(base) + list(ref.parameters()), grad_out)
        for inputs in (base, _noncontiguous(base)):
            for go in (grad_out, _noncontiguous(grad_out)):
                out = flat(m(*inputs))
                got = torch.autograd.grad(out, _leaves(inputs) + list(m.parameters()), go)
                torch.testing.assert_close(out, expected)
                torch.testing.assert_close(got, want)


def _gradient_check(check, name, fused, every):
    for sample in samples(name)[::every]:  # odd strides: layer samples alternate (no state, state)
        m = _module(rnn, name, sample, fused, torch.float64)
        inputs = sample.inputs(torch.float64, requires_grad=True)
        leaves = _leaves(inputs)
        n_in = len(leaves)

        def fn(*flat_inputs, m=m, inputs=inputs, n_in=n_in):
            it = iter(flat_inputs[:n_in])
            args = [tuple(next(it) for _ in x) if isinstance(x, tuple) else next(it) for x in inputs]
            return flat(m(*args))

        # torch's common_utils wrappers: batched gradients checked, fast mode
        assert check(fn, (*leaves, *m.parameters()), check_batched_grad=True, fast_mode=True)


@pytest.mark.parametrize(("name", "fused"), CASES, ids=CASE_IDS)
def test_grad(name, fused):
    """test_grad: gradcheck (float64, batched gradients, fast mode) of inputs and parameters together."""
    _gradient_check(gradcheck, name, fused, every=5 if name in LAYERS else 1)


@pytest.mark.parametrize(("name", "fused"), CASES, ids=CASE_IDS)
def test_gradgrad(name, fused):
    """test_gradgrad: gradgradcheck with the same settings (ModuleInfo: supports_gradgrad)."""
    _gradient_check(gradgradcheck, name, fused, every=15 if name in LAYERS else 1)


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize(("name", "fused"), CASES, ids=CASE_IDS)
def test_memory_format(name, fused, training):
    """test_memory_format (no 4-D/5-D inputs here: contiguous format only): contiguous outputs and grads."""
    for sample in samples(name):
        m = _module(rnn, name, sample, fused, torch.float32, training)
        inputs = sample.inputs(torch.float32, requires_grad=True)
        outs = flat(m(*inputs))
        assert all(o.is_contiguous() for o in outs)
        grads = torch.autograd.grad(
            outs, _leaves(inputs) + list(m.parameters()), [torch.rand_like(o) for o in outs]
        )
        assert all(g.is_contiguous() for g in grads)


@pytest.mark.parametrize(("name", "fused"), CASES, ids=CASE_IDS)
def test_if_train_and_eval_modes_differ(name, fused):
    """A forward that reads ``training`` must belong to a module flagged train_and_eval_differ (layers)."""
    for sample in samples(name):
        for lib in LIBS.values():
            m = _module(lib, name, sample, fused)
            delattr(m, "training")
            try:
                m(*sample.inputs(torch.float32, requires_grad=False))
            except AttributeError as e:
                assert "'training'" in str(e) and name in LAYERS


@pytest.mark.parametrize("name", LAYERS + CELLS)
def test_device_ctx_init(name):
    """Built under ``with torch.device('meta')``: meta parameters with the CPU ones' metadata."""
    for sample in samples(name):
        for lib in LIBS.values():
            cpu = getattr(lib, name)(*sample.args, **sample.kwargs)
            with torch.device("meta"):
                meta = getattr(lib, name)(*sample.args, **sample.kwargs)
            for p_meta, p_cpu in zip(meta.parameters(), cpu.parameters(), strict=True):
                assert p_meta.is_meta
                assert (p_meta.shape, p_meta.dtype, p_meta.stride()) == (
                    p_cpu.shape,
                    p_cpu.dtype,
                    p_cpu.stride(),
                )


def _error_params():
    for name in LAYERS + CELLS:
        for dtype in DTYPES:
            for i, _ in enumerate(error_samples(name, dtype)):
                yield pytest.param(name, dtype, i, id=f"{name}-{str(dtype)[6:]}-{i}")


@pytest.mark.parametrize(("name", "dtype", "index"), list(_error_params()))
def test_errors(name, dtype, index):
    """test_errors: the error type and torch's regex, and rnnlab's message equal to torch's own."""
    err = error_samples(name, dtype)[index]

    def run(lib):
        kwargs = {**err.sample.kwargs, **({"dtype": dtype} if err.module_dtype else {})}
        m = getattr(lib, name)(*err.sample.args, **kwargs)  # torch's test builds cells in float32
        return m(*err.sample.inputs(err.input_dtype or dtype, requires_grad=False)) if err.on_forward else m

    for lib in (nn, rnn):
        with pytest.raises(err.error, match=err.regex):
            run(lib)
    assert_same_outcome(run, raises=True)


@pytest.mark.parametrize("swap", [False, True], ids=["assign", "swap"])
@pytest.mark.parametrize("name", LAYERS + CELLS)
def test_to(name, swap):
    """test_to: .to(float64) keeps (or, with swap_tensors, swaps) the parameter objects and their grads."""

    def run(lib):
        before = torch.__future__.get_swap_module_params_on_conversion()
        torch.__future__.set_swap_module_params_on_conversion(swap)
        try:
            sample = samples(name)[-1]
            m = _module(lib, name, sample, None)
            params = list(m.parameters())
            sum(o.sum() for o in flat(m(*sample.inputs(torch.float32, False)))).backward()
            m.to(torch.float64)
            out = flat(m(*sample.inputs(torch.float64, False)))
            kept = [a is b for a, b in zip(params, m.parameters(), strict=True)]
            return kept, [p.grad.dtype for p in m.parameters()], [o.dtype for o in out]
        finally:
            torch.__future__.set_swap_module_params_on_conversion(before)

    assert_same_outcome(run, raises=False)


@pytest.mark.parametrize("name", LAYERS + CELLS)
def test_to_empty(name):
    """test_to_empty: a module built on the meta device is materialised on the CPU by to_empty()."""

    def run(lib):
        m = getattr(lib, name)(*samples(name)[0].args, **samples(name)[0].kwargs, device="meta")
        m.to_empty(device="cpu")
        return [(n, p.device.type, tuple(p.shape)) for n, p in m.named_parameters()]

    assert_same_outcome(run, raises=False)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA only (test_cpu_gpu_parity)")
@pytest.mark.parametrize("name", LAYERS + CELLS)
def test_cpu_gpu_parity(name):
    """test_cpu_gpu_parity / test_multiple_device_transfer: rnnlab on CUDA equals rnnlab on the CPU."""
    for sample in samples(name):
        cpu = _module(rnn, name, sample, None, torch.float64)
        gpu = copy.deepcopy(cpu).cuda()
        inputs = sample.inputs(torch.float64, requires_grad=False)
        on_gpu = tuple(tuple(t.cuda() for t in x) if isinstance(x, tuple) else x.cuda() for x in inputs)
        torch.testing.assert_close(tuple(o.cpu() for o in flat(gpu(*on_gpu))), flat(cpu(*inputs)))
        gpu.cpu()
        torch.testing.assert_close(flat(gpu(*inputs)), flat(cpu(*inputs)))


# ---------------------------------------------------------------------------------------------------
# beyond test_modules.py: test_expanded_weights.py's module test (module_db driven), and CPU autocast
# (aten::lstm and aten::rnn_* run in bfloat16 there, aten::gru in float32)
# ---------------------------------------------------------------------------------------------------
@PATHS
@pytest.mark.parametrize("mode", LAYERS)
def test_cpu_autocast(mode, fused):
    """torch.autocast('cpu', bfloat16) as in torch.nn: the same output and state dtypes (aten::lstm and
    aten::rnn_* run whole in bfloat16; aten::gru returns float32 from bfloat16 products) and values within
    bfloat16's rounding (torch's GRU under autocast is itself ~1e-3 from its float32 result)."""

    def run(lib, autocast=True):
        m = build(lib, mode, 8, 16, 2, use_fused=fused)
        x = torch.randn(5, 3, 8, generator=torch.Generator().manual_seed(1), requires_grad=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            out = flat(m(x))
        sum(o.float().sum() for o in out).backward()
        return [o.dtype for o in out], [o.float() for o in out], x.grad

    try:
        reference = run(LIBS["torch"])
    except RuntimeError as e:  # oneDNN has no bfloat16 LSTM on CPUs without AVX-512 BF16: torch.nn fails
        if "primitive descriptor" not in str(e):
            raise
        # Then torch's own answer is its float32 run, rounded as autocast would label it: rnnlab must still
        # give the dtypes torch.nn gives elsewhere and values within bfloat16's rounding of float32.
        dtypes, values, grad = run(LIBS["torch"], autocast=False)
        reference = ([torch.bfloat16] * len(dtypes) if mode != "GRU" else dtypes), values, grad
    got = run(LIBS["rnnlab"])
    assert got[0] == reference[0]
    if mode != "GRU":
        assert set(reference[0]) == {torch.bfloat16}
    torch.testing.assert_close(got[1:], reference[1:], rtol=2e-2, atol=2e-2)


# Once torch's dynamo has run in a process (the ONNX exporter's tests may share a test worker), torch.nn's own
# LSTM and GRU fail under ExpandedWeights ("RuntimeError when making fake tensor call"), and
# torch._dynamo.reset() does not undo it: the per-sample-gradient cases run in a process of their own.
_FRESH = "RNNLAB_TEST_FRESH_PROCESS"


def test_per_sample_grads():
    """test_expanded_weights_module's cases, run by pytest in a fresh interpreter; every case must pass."""
    child = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", "-p", "no:cacheprovider", __file__,
         "-k", "test_expanded_weights_module"],
        env={**os.environ, _FRESH: "1"}, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert child.returncode == 0, child.stdout[-4000:] + child.stderr[-2000:]
    assert "6 passed" in child.stdout and "6 xfailed" in child.stdout, child.stdout[-2000:]


PACKED_PER_SAMPLE = (
    "a PackedSequence's steps hold batch_sizes[t] < B rows, and ExpandedWeights refuses a product whose "
    "batch is not B ('Expected ExpandedWeights to have batch size matching input'); torch.nn decomposes "
    "its packed RNN ops for per-sample gradients, rnnlab's step functions do not"
)


@pytest.mark.parametrize(
    "packed",
    [False, pytest.param(True, marks=pytest.mark.xfail(strict=True, reason=PACKED_PER_SAMPLE))],
    ids=["padded", "packed"],
)
@pytest.mark.parametrize("mode", LAYERS)
@pytest.mark.filterwarnings("ignore:TF32 acceleration on top of oneDNN:UserWarning")  # from mkldnn.flags()
@PATHS
@pytest.mark.skipif(os.environ.get(_FRESH) != "1", reason="runs in a fresh process (test_per_sample_grads)")
def test_expanded_weights_module(mode, packed, fused):
    """test_expanded_weights.py's test_module for RNN/GRU/LSTM: per-sample gradients of every parameter."""
    from torch.nn.utils._per_sample_grad import call_for_per_sample_grads

    x = torch.randn(4, 5, 2, generator=torch.Generator().manual_seed(1))

    def run(lib):
        m = build(lib, mode, 2, 3, batch_first=True, use_fused=fused)
        inp = rnn_utils.pack_padded_sequence(x, [5, 3, 3, 2], batch_first=True) if packed else x
        with torch.backends.mkldnn.flags(enabled=False):  # torch.nn's LSTM: the oneDNN kernel has no rule
            out = call_for_per_sample_grads(m, batch_size=4)(inp)[0]
            (out.data if packed else out).sum().backward()
        return [p.grad_sample for p in m.parameters()]

    assert_same_outcome(run, **tol(torch.float32), raises=False)
