"""The Triton paths' host side: what the interpreter's results cannot show.

* every kernel launch runs under the tensors' CUDA device (:func:`device_guard`): Triton launches on the
  current device, so a layer on ``cuda:1`` would otherwise run on ``cuda:0``;
* one step and the next differ only in the unspecialized row offsets: every other argument has the same
  specialization key (dtype, 16-byte alignment of pointers, divisibility of integers), so one compiled
  kernel serves every step of a layer;
* the time loop allocates nothing and copies nothing per step: each step is its products written with
  ``out=`` into buffers allocated once, views and the kernel launches (bfloat16 included, whose backward
  product used to be a temporary copied into the float32 state);
* the gate kernels' grid is (rows, H-blocks), and a hidden size over one block (the last block masked) is
  computed right.

The host-side checks replace the kernels by stubs that record their launches (no interpreter, fast); the
last check runs the real kernels (interpreted on the CPU).
"""

from __future__ import annotations

import contextlib
import inspect
from collections import Counter

import pytest
import torch
import triton
from torch.utils._python_dispatch import TorchDispatchMode
from triton_testing import DEVICE, load_backend, load_layernorm, triton_env  # noqa: F401

from rnnlab.nn import fused
from rnnlab.nn._loop import run_direction_readable

pytestmark = [pytest.mark.triton, pytest.mark.usefixtures("triton_env")]

TB = load_backend()
LN = load_layernorm()
K = TB.K
GATE_KERNELS = ["rnn_forward", "rnn_backward", "lstm_forward", "lstm_backward", "gru_forward", "gru_backward"]
LN_KERNELS = ["ln_rows_forward", "ln_rows_backward", "ln_lstm_forward", "ln_lstm_backward"]
MODES = [("RNN_TANH", False), ("RNN_RELU", False), ("GRU", False), ("LSTM", False), ("LSTM", True)]
MODE_IDS = ["rnn_tanh", "rnn_relu", "gru", "lstm", "lstmp"]
I, H, P = 3, 6, 4  # H = 6: float32 rows of 24 bytes, so row offsets fall on and off 16-byte boundaries
LENGTHS = [5, 5, 3, 1]  # packed: batch sizes 4, 3, 3, 2, 2


class Guard:
    """A stand-in for :func:`device_guard` that says whether a launch happens inside it, and for what."""

    def __init__(self) -> None:
        self.active = 0
        self.devices: list[torch.device] = []

    @contextlib.contextmanager
    def __call__(self, device: torch.device):
        self.devices.append(device)
        self.active += 1
        try:
            yield
        finally:
            self.active -= 1


class Recorder:
    """Stands for a kernel: ``kernel[grid](*args, **meta)`` records the launch (and runs it if ``run``)."""

    def __init__(self, name, kernel, log, guard, run):
        self.name, self.kernel, self.log, self.guard, self.run = name, kernel, log, guard, run
        self.params = list(inspect.signature(kernel.fn).parameters)

    def __getitem__(self, grid):
        def launch(*args, **meta):
            self.log.append(
                {
                    "name": self.name,
                    "grid": tuple(grid),
                    "args": args,
                    "meta": meta,
                    "guarded": self.guard.active,
                }
            )
            if self.run:
                self.kernel[grid](*args, **meta)

        return launch


def declared_unspecialized(kernel) -> set[str]:
    """The parameters a kernel declares ``do_not_specialize`` (compiled or interpreted)."""
    names = getattr(kernel, "do_not_specialize", None)
    if names is None:  # triton's InterpretedFunction keeps jit()'s keywords
        names = kernel.kwargs.get("do_not_specialize") or []
    params = list(inspect.signature(kernel.fn).parameters)
    return {params[n] if isinstance(n, int) else n for n in names}


def specialization_key(launch, params, unspecialized) -> tuple:
    """What Triton compiles a kernel for: each tensor's dtype and 16-byte alignment, each integer's
    divisibility by 16 and equality to 1 (except the unspecialized ones), the constexprs."""
    key = []
    for name, arg in zip(params, launch["args"], strict=False):
        if name in unspecialized:
            continue
        if isinstance(arg, torch.Tensor):
            key.append((name, arg.dtype, arg.data_ptr() % 16 == 0))
        elif isinstance(arg, bool) or not isinstance(arg, int):
            key.append((name, type(arg).__name__, arg if isinstance(arg, bool) else None))
        else:
            key.append((name, arg == 1, arg % 16 == 0))
    return (*key, *sorted((k, str(v)) for k, v in launch["meta"].items()))


@pytest.fixture
def recorded(monkeypatch):
    """Every gate and LayerNormLSTM kernel replaced by a recorder (not run), and the guard by a probe."""
    log: list[dict] = []
    guard = Guard()
    monkeypatch.setattr(TB, "device_guard", guard)
    for name in GATE_KERNELS:
        monkeypatch.setattr(K, name, Recorder(name, getattr(K, name), log, guard, run=False))
    for name in LN_KERNELS:
        monkeypatch.setattr(LN, name, Recorder(name, getattr(LN, name), log, guard, run=False))
    return log, guard


def gate_case(mode, proj, packed, dtype, T=5, hidden=H, seed=0):
    """Arguments of one direction: x, batch sizes, h0, c0, the weights (no autograd: the ops directly)."""
    g = torch.Generator().manual_seed(seed)
    G = {"LSTM": 4, "GRU": 3}.get(mode, 1) * hidden
    h_size = P if proj else hidden
    lengths = LENGTHS if packed else [T] * len(LENGTHS)
    bs = [sum(1 for n in lengths if n > t) for t in range(T)]

    def rand(*shape):
        return (torch.rand(*shape, generator=g, dtype=torch.float64) * 2 - 1).to(DEVICE, dtype)

    x = rand(sum(bs), I)  # (N, H_in)
    h0, c0 = rand(len(lengths), h_size), rand(len(lengths), hidden) if mode == "LSTM" else None
    w_hr = rand(P, hidden) if proj else None
    return x, bs, h0, c0, (rand(G, I), rand(G, h_size), rand(G), rand(G)), w_hr


def run_ops(mode, proj, packed, dtype, reverse, T=5, hidden=H):
    """The back end's forward and backward of one direction, called as the autograd Function does."""
    x, bs, h0, c0, (w_ih, w_hh, b_ih, b_hh), w_hr = gate_case(mode, proj, packed, dtype, T, hidden)
    out, hn, cn, ws_g, ws_s, ws_m = TB.forward(
        mode, x, bs, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, reverse, True
    )
    dy, dhn = torch.ones_like(out), torch.ones_like(hn)
    dcn = torch.ones_like(cn) if mode == "LSTM" else None
    TB.backward(
        mode, dy, dhn, dcn, x, bs, h0, c0, w_ih, w_hh, w_hr, True, reverse, out, ws_g, ws_s, ws_m, True, True
    )
    return x.device


def ln_case(T, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    B, G = 3, 4 * H

    def rand(*shape):
        return (torch.rand(*shape, generator=g, dtype=torch.float64) * 2 - 1).to(DEVICE, dtype)

    lns = [(rand(G), rand(G), 1e-5), (rand(G), rand(G), 1e-5), (rand(H), rand(H), 1e-5)]
    return rand(T, B, I), rand(B, H), rand(B, H), rand(G, I), rand(G, H), rand(G), lns


def run_ln_ops(dtype, reverse, T=5):
    x, h0, c0, w_ih, w_hh, bias, lns = ln_case(T, dtype)
    out, hn, cn, ws = LN.forward(x, h0, c0, w_ih, w_hh, bias, *lns, reverse)
    LN.backward(torch.ones_like(out), torch.ones_like(hn), torch.ones_like(cn), ws, h0, c0, w_ih, w_hh, *lns,
                reverse)  # fmt: skip
    return x.device


def test_device_guard():
    assert isinstance(TB.device_guard(torch.device("cpu")), contextlib.nullcontext)
    guard = TB.device_guard(torch.device("cuda", 1))  # built, not entered: this machine may have no CUDA
    assert isinstance(guard, torch.cuda.device) and guard.idx == 1


@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize(("mode", "proj"), MODES, ids=MODE_IDS)
def test_every_gate_launch_is_guarded_and_compiles_once(recorded, mode, proj, reverse):
    log, guard = recorded
    device = run_ops(mode, proj, True, torch.float32, reverse)
    assert log and all(launch["guarded"] for launch in log)
    assert guard.devices == [device] * 2  # forward, backward: each under the tensors' device
    for name in {launch["name"] for launch in log}:
        kernel = getattr(K, name).kernel
        params = list(inspect.signature(kernel.fn).parameters)
        unspecialized = declared_unspecialized(kernel)
        assert unspecialized == {p for p in params if p in K.ROW_OFFSETS}  # every row offset, nothing else
        launches = [launch for launch in log if launch["name"] == name]
        assert len(launches) == len(LENGTHS) + 1  # one per step
        keys = {specialization_key(launch, params, unspecialized) for launch in launches}
        assert len(keys) == 1, f"{name} would compile {len(keys)} times"
        offsets = {launch["args"][params.index("row0")] for launch in launches}
        assert offsets == {0, 4, 7, 10, 12}  # the packed steps' first rows: they do vary


@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
def test_every_layernorm_launch_is_guarded_and_compiles_once(recorded, reverse):
    log, guard = recorded
    device = run_ln_ops(torch.float32, reverse)
    assert {launch["name"] for launch in log} == set(LN_KERNELS)
    assert all(launch["guarded"] for launch in log)
    assert guard.devices == [device] * 2  # forward, backward: each under the tensors' device
    for name in ("ln_lstm_forward", "ln_lstm_backward"):
        kernel = getattr(LN, name).kernel
        params = list(inspect.signature(kernel.fn).parameters)
        unspecialized = declared_unspecialized(kernel)
        assert unspecialized == {"row0", "prev0"}
        keys = {specialization_key(launch, params, unspecialized) for launch in log if launch["name"] == name}
        assert len(keys) == 1, f"{name} would compile {len(keys)} times"


class CountOps(TorchDispatchMode):
    """Counts the aten ops that run under it, by overload name."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: Counter[str] = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops[str(func)] += 1
        return func(*args, **(kwargs or {}))


# What a step may do on the host besides its launches: products written into existing buffers (out=) and
# views (slices, transposes). Anything else (a fresh product, copy_, add_, to) allocates or copies per step.
VIEW_OPS = {
    "aten.slice.Tensor",
    "aten.t.default",
    "aten.transpose.int",
    "aten.view.default",
    "aten.alias.default",
}


def per_step_ops(run) -> Counter[str]:
    """The aten ops one more step adds: the ops of 8 steps minus those of 4, over 4."""
    counts = []
    for T in (4, 8):
        with CountOps() as mode:
            run(T)
        counts.append(mode.ops)
    extra = counts[1] - counts[0]
    assert all(n % 4 == 0 for n in extra.values()), extra
    return Counter({op: n // 4 for op, n in extra.items()})


def assert_no_allocation_per_step(ops: Counter[str]) -> None:
    bad = {op: n for op, n in ops.items() if not op.endswith(".out") and op not in VIEW_OPS}
    assert not bad, f"per step, besides products into buffers and views: {bad}"


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32], ids=["bf16", "f32"])
@pytest.mark.parametrize(("mode", "proj"), MODES, ids=MODE_IDS)
def test_the_time_loop_allocates_and_copies_nothing(recorded, mode, proj, dtype):
    ops = per_step_ops(lambda T: run_ops(mode, proj, False, dtype, False, T=T))
    assert_no_allocation_per_step(ops)
    products = ops["aten.mm.out"] + ops["aten.addmm.out"]
    assert products == (2 if not proj else 4)  # h W_hh^T and dG W_hh (+ m W_hr^T and dh W_hr)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32], ids=["bf16", "f32"])
def test_the_layernorm_time_loop_allocates_and_copies_nothing(recorded, dtype):
    ops = per_step_ops(lambda T: run_ln_ops(dtype, True, T=T))
    assert_no_allocation_per_step(ops)
    assert ops["aten.mm.out"] == 2


def test_the_grid_is_rows_by_hidden_blocks(recorded):
    log, _ = recorded
    hidden = 300  # two blocks of 256 units, the second one masked past unit 300
    run_ops("LSTM", False, True, torch.float32, False, hidden=hidden)
    assert TB.block_h(hidden) == 256 and TB.block_h(H) == 8
    bs = [sum(1 for n in LENGTHS if n > t) for t in range(len(LENGTHS) + 1)]
    for name in ("lstm_forward", "lstm_backward"):
        launches = [launch for launch in log if launch["name"] == name]
        want = bs if name == "lstm_forward" else bs[::-1]
        assert [launch["grid"] for launch in launches] == [(b, 2) for b in want]
        assert {launch["meta"]["BLOCK"] for launch in launches} == {256}


@pytest.mark.parametrize("mode", ["RNN_TANH", "GRU", "LSTM"])
def test_a_hidden_size_over_one_block_matches_readable(mode):
    """The real kernels (interpreted on the CPU) where H spans two programs per row, the second masked."""
    hidden, T = 260, 2
    x, bs, h0, c0, weights, _ = gate_case(mode, False, True, torch.float64, T=T, hidden=hidden)
    leaves = [t.requires_grad_() for t in (x, h0, *weights)]
    state = (h0, c0.requires_grad_()) if mode == "LSTM" else (h0,)
    if mode == "LSTM":
        leaves.append(c0)
    results = []
    for run in (run_direction_readable, None):
        if run is None:
            out, final = fused._run_direction(mode, x, bs, state, weights, True, backend="triton")
        else:
            out, final = run(mode, x, bs, state, weights, True)
        outs = [out, *final]
        loss = sum((o * torch.linspace(-1, 1, o.numel(), dtype=o.dtype).view(o.shape)).sum() for o in outs)
        results.append([o.detach() for o in outs] + list(torch.autograd.grad(loss, leaves)))
    for got, want in zip(results[1], results[0], strict=True):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-11)
    assert triton.cdiv(hidden, TB.block_h(hidden)) == 2
