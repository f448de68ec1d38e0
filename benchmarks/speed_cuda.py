"""``benchmarks/speed.py --device cuda``: the Triton path's correctness on a GPU, then its speed vs cuDNN.

Made for one call on a machine that reaches no package registry, with what its image holds (the device
image has torch 2.11 and triton 3.6; this was tested on the CPU with torch 2.13 and triton 3.9 and 3.6,
the kernels under the interpreter), nothing installed, nothing imported beyond torch, triton, rnnlab.nn
and the standard library (pytest and, if present, pytest-xdist for the tests)::

    PYTHONPATH=src python3 benchmarks/speed.py --device cuda --out $OUT/speed-cuda.md

One deadline (``--deadline``, 420 s by default) covers every phase, and ``--out`` is rewritten after every
row, so a run stopped at any moment leaves a complete table of what it measured:

1. the ``triton`` tests (``tests/nn/test_triton_*.py``) compiled, on CUDA tensors (the interpreter off,
   ``RNNLAB_TRITON_TEST_DEVICE=cuda``), in parallel child processes (pytest-xdist when it imports, else
   one process per file), within at most 40 % of the deadline; their full output goes beside ``--out``
   (``*-tests.log``) and their result into the table's header (a failure marks every figure suspect);
2. in the order of :func:`_cuda_plan.plan` (the headline shape, then each single change from it, batch 1
   first), until the deadline: LSTM and GRU, B in {64, 1, 256, 16}, H in {512, 256, 1024} (input size
   H), T 256, one layer and two bidirectional layers, float32 and bfloat16, forward (under ``no_grad``)
   and forward + backward of a sum, rnnlab (the Triton back end) against torch.nn (cuDNN) with the same
   weights, interleaved; and LayerNormLSTM's fused Triton path against the same cell as a Python loop;
3. one line per target of issue 25, met / NOT met / not measured, printed and in the table.

float32 rows run without TF32 on both sides, so that both compute in float32.

``--cuda-rehearsal`` (hidden) runs the same code on CPU tensors, toy shapes, the Triton kernels under the
interpreter: it checks the script, it measures nothing.
"""

from __future__ import annotations

import datetime
import importlib.util
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from _cuda_plan import Deadline, Report, Row, execute, plan, run_parallel
from torch import nn

import rnnlab
import rnnlab.nn as rnn
from rnnlab.nn.fused import _layernorm_lstm as _ln_fused

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
# Each dimension in order of preference: the first values make the headline row (see _cuda_plan.plan).
CELLS = ("LSTM", "GRU")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
CONFIGS = ((1, False), (2, True))  # (layers, bidirectional)
BATCHES, HIDDEN, STEPS = (64, 1, 256, 16), (512, 256, 1024), 256
LN_SHAPES = ((64, 256), (1, 256), (16, 256), (64, 1024))  # (B, H) of the LayerNormLSTM rows, fp32
DEADLINE_S = 420.0  # the whole run: the tests and every row
TESTS_SHARE = 0.4  # of the deadline, at most, for the tests
REPS_BUDGET_S = 0.3  # seconds per implementation, phase and row
TEST_FILES = ("tests/nn/test_triton_kernels.py", "tests/nn/test_triton_layers.py",
              "tests/nn/test_triton_layernorm.py", "tests/nn/test_triton_host.py")  # fmt: skip


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def median_times(fns: dict, device: str, budget_s: float, max_reps: int = 15) -> dict[str, float]:
    """Median milliseconds of each fn, interleaved (the first one rotates), after two warm-up calls."""
    cost = 0.0
    for fn in fns.values():
        fn()
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        cost = max(cost, time.perf_counter() - start)
    reps = int(max(3, min(max_reps, budget_s / max(cost, 1e-6))))
    names = list(fns)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(reps):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            start = time.perf_counter()
            fns[name]()
            sync(device)
            times[name].append(time.perf_counter() - start)
    return {n: 1e3 * statistics.median(t) for n, t in times.items()}


def forward_fn(layer: nn.Module, x: torch.Tensor):
    def run() -> None:
        with torch.no_grad():
            layer(x)

    return run


def train_fn(layer: nn.Module, x: torch.Tensor):
    params = list(layer.parameters())
    leaf = x.detach().requires_grad_()

    def run() -> None:
        leaf.grad = None
        for p in params:
            p.grad = None
        out, _ = layer(leaf)
        out.float().sum().backward()

    return run


def triton_test_commands(device: str, have_xdist: bool, workers: int) -> list[list[str]]:
    """The triton tests as child commands: one pytest with ``-n workers`` when pytest-xdist imports, else
    one pytest per file, all run at once. The rehearsal (CPU) runs a single interpreted test."""
    base = [sys.executable, "-m", "pytest", "-q", "-m", "triton", "-p", "no:cacheprovider"]
    if device != "cuda":
        return [[*base, "-p", "no:xdist", TEST_FILES[0], "-k", "lstmp and packed and f32 and rev"]]
    if have_xdist:
        return [[*base, "-n", str(workers), *TEST_FILES]]
    return [[*base, "-p", "no:xdist", f] for f in TEST_FILES]


def child_env(device: str) -> dict:
    """The children's environment: the checkout's ``src`` importable, the interpreter as the device needs."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"), env.get("PYTHONPATH")) if p)
    if device == "cuda":
        env["RNNLAB_TRITON_TEST_DEVICE"] = "cuda"
        env.pop("TRITON_INTERPRET", None)
    return env


def measure(row: Row, device: str, T: int) -> dict:
    """Milliseconds of torch.nn and rnnlab, forward and forward + backward, same weights and input."""
    dtype = DTYPES[row.dtype]
    kwargs = dict(num_layers=row.layers, bidirectional=row.bidirectional, batch_first=True)
    torch.manual_seed(0)
    ref = getattr(nn, row.cell)(row.H, row.H, **kwargs).to(device, dtype)
    ours = getattr(rnn, row.cell)(row.H, row.H, **kwargs).to(device, dtype)
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(row.B, T, row.H, device=device, dtype=dtype)  # (B, T, H_in)
    result = {}
    for phase, make in (("fwd", forward_fn), ("f+b", train_fn)):
        for layer in (ref, ours):
            layer.train(phase == "f+b")
        times = median_times({"torch.nn": make(ref, x), "rnnlab": make(ours, x)}, device, REPS_BUDGET_S)
        result[phase] = (times["torch.nn"], times["rnnlab"])
    return result


class LoopLayerNormLSTM(nn.Module):
    """LayerNormLSTM (one layer) as a plain Python loop of torch ops, on rnnlab's parameters."""

    def __init__(self, cell: nn.Module) -> None:
        super().__init__()
        self.cell = cell

    def forward(self, x: torch.Tensor):  # x: (B, T, H_in)
        c = self.cell
        B, H = x.size(0), c.hidden_size
        h = x.new_zeros(B, H)
        s = x.new_zeros(B, H)
        outs = []
        for t in range(x.size(1)):
            gates = c.ln_ih(x[:, t] @ c.weight_ih.t()) + c.ln_hh(h @ c.weight_hh.t()) + c.gate_bias  # (B, 4H)
            i, f, g, o = gates.chunk(4, 1)
            s = torch.sigmoid(f) * s + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c.ln_c(s))
            outs.append(h)
        return torch.stack(outs, 1), (h, s)  # (B, T, H)


def measure_ln(row: Row, device: str, T: int) -> dict:
    """LayerNormLSTM (one layer, float32) on its fused path against :class:`LoopLayerNormLSTM` on the same
    parameters: ``{"fwd": (loop ms, fused ms), "f+b": ...}``, or a note where the fused path is not taken."""
    torch.manual_seed(0)
    ours = rnn.LayerNormLSTM(row.H, row.H, batch_first=True).to(device)
    loop = LoopLayerNormLSTM(ours.cells[0])
    x = torch.randn(row.B, T, row.H, device=device)  # (B, T, H)
    zeros = x.new_zeros(1, row.B, row.H)
    if not _ln_fused.supports(x.transpose(0, 1), (zeros, zeros), ours.cells):
        return {"note": "the fused path does not apply here: not timed"}
    result = {}
    for phase, make in (("fwd", forward_fn), ("f+b", train_fn)):
        times = median_times({"loop": make(loop, x), "fused": make(ours, x)}, device, REPS_BUDGET_S)
        result[phase] = (times["loop"], times["fused"])
    return result


def main(args) -> None:
    rehearsal = args.cuda_rehearsal
    device = "cpu" if rehearsal else "cuda"
    deadline = Deadline(args.deadline)
    if not rehearsal and not torch.cuda.is_available():
        sys.exit(
            f"speed.py --device cuda: torch sees no CUDA device "
            f"(torch {torch.__version__}, CUDA build {torch.version.cuda})"
        )
    try:
        import triton
    except ImportError as e:
        sys.exit(f"speed.py --device cuda: rnnlab's CUDA path needs triton ({e})")
    if rehearsal:
        os.environ["RNNLAB_FUSED_BACKEND"] = "triton"  # CPU tensors through the Triton back end ...
        os.environ["TRITON_INTERPRET"] = "1"  # ... its kernels interpreted (read when they are imported)
        rows = plan(("LSTM", "GRU"), ("fp32",), ((1, False),), (4, 1), (8,), ((2, 8),))
        T, out = 6, args.out or RESULTS / "speed-cuda.rehearsal.tmp"
        gpu = "CPU (rehearsal: Triton's interpreter, toy shapes; these numbers mean nothing)"
    else:
        rows = plan(CELLS, tuple(DTYPES), CONFIGS, BATCHES, HIDDEN, LN_SHAPES)
        T, out = STEPS, args.out or RESULTS / "speed-cuda.md"
        gpu = torch.cuda.get_device_name()
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    header = [
        "# Speed on CUDA: rnnlab's Triton path against torch.nn (cuDNN)",
        "",
        f"`python benchmarks/speed.py --device cuda`, {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}: "
        f"{gpu}, torch {torch.__version__} (CUDA {torch.version.cuda}), triton {triton.__version__}, "
        f"rnnlab {rnnlab.__version__}; T {T}, input size = H, batch_first; float32 without TF32 on both "
        f"sides. Milliseconds, median of interleaved repetitions; **ratio** = rnnlab / cuDNN (below 1 is "
        "faster); fwd: under `no_grad`; f+b: forward + backward of `output.sum()`.",
    ]
    report = Report(Path(out), header, rows, deadline_s=args.deadline)
    report.write()
    if args.tests:
        workers = max(1, min(8, (os.cpu_count() or 2) // 2))
        cmds = triton_test_commands(device, importlib.util.find_spec("xdist") is not None, workers)
        budget = min(TESTS_SHARE * args.deadline, deadline.remaining())
        log = report.path.with_name(report.path.stem + "-tests.log")
        report.tests = run_parallel(cmds, budget, ROOT, child_env(device), log)
        print(f"triton tests on {device}: {'passed' if report.tests[0] else 'FAILED'} ({report.tests[1]})")
    report.elapsed_s = deadline.elapsed()
    report.write()

    def on_row(row: Row, result: dict | None) -> None:
        if result is not None:
            report.results.append((row, result))
            print(f"{deadline.elapsed():5.0f} s  {row.label()}: {result}", flush=True)
        report.elapsed_s = deadline.elapsed()
        report.write()

    def run_row(row: Row) -> dict:
        return measure(row, device, T) if row.kind == "rnn" else measure_ln(row, device, T)

    report.skipped = execute(rows, run_row, deadline, on_row)
    report.finished, report.elapsed_s = True, deadline.elapsed()
    report.write()
    print("\n".join(report.targets()))
    print(f"written to {report.path} in {report.elapsed_s:.0f} s", file=sys.stderr)
