"""``benchmarks/speed.py --device cuda``: the Triton path's correctness on a GPU, then its speed vs cuDNN.

One command does both, so that one short GPU session yields a checked table:

1. the ``triton`` tests (``tests/nn/test_triton_*.py``) compiled, on CUDA tensors (the interpreter off,
   ``RNNLAB_TRITON_TEST_DEVICE=cuda``); their result goes into the table's header (a failure does not stop
   the timing, it marks every figure below as untrustworthy);
2. LSTM and GRU, B in {1, 16, 64, 256}, H in {256, 512, 1024} (input size H), T 256, as one layer and as two
   bidirectional layers, float32 and bfloat16: forward (under ``no_grad``) and forward + backward of a sum,
   rnnlab (its default, the Triton back end) against torch.nn (cuDNN) with the same weights, interleaved;
3. rnnlab's LayerNormLSTM on its fused Triton path (:mod:`rnnlab.nn.fused._triton_layernorm`) against the
   same model written as a plain Python loop of torch ops, forward and forward + backward.

float32 rows run without TF32 on both sides (``torch.backends.cuda.matmul.allow_tf32`` and
``torch.backends.cudnn.allow_tf32`` off), so that both compute in float32. Repetitions are sized so that the
whole run stays within about 8 minutes on an H200; past ``TABLE_LIMIT_S`` of timing the remaining rows are
skipped and the table says so. The table goes to ``benchmarks/results/speed-cuda.md``.

``--cuda-rehearsal`` (hidden) runs the same code on CPU tensors, toy shapes, the Triton kernels under the
interpreter: it checks the script, it measures nothing.
"""

from __future__ import annotations

import datetime
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn

import rnnlab
import rnnlab.nn as rnn
from rnnlab.nn.fused import _layernorm_lstm as _ln_fused

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
CELLS = ("LSTM", "GRU")
BATCHES, HIDDEN, STEPS = (1, 16, 64, 256), (256, 512, 1024), 256
CONFIGS = ((1, False), (2, True))  # (layers, bidirectional)
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
LN_SHAPES = ((1, 256), (16, 256), (64, 256), (64, 1024))  # (B, H) of the LayerNormLSTM rows, T = STEPS, fp32
TABLE_LIMIT_S = 330.0  # seconds of timing, after the tests (which take one to two minutes)
REPS_BUDGET_S = 0.6  # seconds per implementation, phase and row
TEST_TIMEOUT_S = 240


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def median_times(fns: dict, device: str, budget_s: float, max_reps: int = 25) -> dict[str, float]:
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


def run_tests(device: str) -> tuple[bool, str]:
    """The triton tests on ``device`` in a child process: (passed, pytest's last line)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", "-m", "triton", "-p", "no:cacheprovider"]
    cmd += [
        "tests/nn/test_triton_kernels.py",
        "tests/nn/test_triton_layers.py",
        "tests/nn/test_triton_layernorm.py",
    ]
    if device == "cuda":
        env["RNNLAB_TRITON_TEST_DEVICE"] = "cuda"
        env.pop("TRITON_INTERPRET", None)
    else:  # the rehearsal: a handful of the interpreted tests, to check this step runs
        cmd += ["-k", "lstmp and packed and f32 and rev"]
    try:
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=TEST_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return False, f"timed out after {TEST_TIMEOUT_S} s"
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    if done.returncode != 0:
        print(done.stdout[-6000:], done.stderr[-2000:], sep="\n", file=sys.stderr)
    return done.returncode == 0, lines[-1] if lines else f"exit {done.returncode}"


def measure(cell: str, B: int, H: int, layers: int, bidi: bool, dtype: torch.dtype, device: str, T: int):
    """Milliseconds of torch.nn and rnnlab, forward and forward + backward, same weights and input."""
    kwargs = dict(num_layers=layers, bidirectional=bidi, batch_first=True)
    torch.manual_seed(0)
    ref = getattr(nn, cell)(H, H, **kwargs).to(device, dtype)
    ours = getattr(rnn, cell)(H, H, **kwargs).to(device, dtype)
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(B, T, H, device=device, dtype=dtype)  # (B, T, H_in)
    row = {}
    for phase, make in (("fwd", forward_fn), ("f+b", train_fn)):
        for layer in (ref, ours):
            layer.train(phase == "f+b")
        times = median_times({"torch.nn": make(ref, x), "rnnlab": make(ours, x)}, device, REPS_BUDGET_S)
        row[phase] = (times["torch.nn"], times["rnnlab"])
    return row


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


def ln_rows(device: str, shapes, T: int) -> list[str]:
    """LayerNormLSTM (one layer, float32) on its fused path against :class:`LoopLayerNormLSTM` on the
    same parameters; a row whose input the fused path does not take says so instead of timing."""
    lines = [
        "| B | H | fused fwd ms | loop fwd ms | speed-up | fused f+b ms | loop f+b ms "
        "| speed-up (target >= 10x) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for B, H in shapes:
        torch.manual_seed(0)
        ours = rnn.LayerNormLSTM(H, H, batch_first=True).to(device)
        loop = LoopLayerNormLSTM(ours.cells[0])
        x = torch.randn(B, T, H, device=device)
        zeros = x.new_zeros(1, B, H)
        if not _ln_fused.supports(x.transpose(0, 1), (zeros, zeros), ours.cells):
            lines.append(f"| {B} | {H} | the fused path does not apply here: not timed | | | | | |")
            continue
        cells = []
        for make in (forward_fn, train_fn):
            times = median_times({"fused": make(ours, x), "loop": make(loop, x)}, device, REPS_BUDGET_S)
            cells += [
                f"{times['fused']:.3g}",
                f"{times['loop']:.3g}",
                f"**{times['loop'] / times['fused']:.2f}x**",
            ]
        lines.append(f"| {B} | {H} | " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)
    return lines


def summary(rows: list[dict]) -> list[str]:
    """The issue's targets, each as measured here: met or not met."""
    out = []
    for dname in DTYPES:
        ratios = [r["f+b"][1] / r["f+b"][0] for r in rows if r["dtype"] == dname]
        if not ratios:
            continue
        med, worst = statistics.median(ratios), max(ratios)
        met = "met" if med <= 1.25 and worst <= 2.0 else "NOT met"
        out.append(
            f"- {dname} fwd+bwd rnnlab / cuDNN: median **{med:.2f}x**, worst **{worst:.2f}x** over "
            f"{len(ratios)} shapes (target median <= 1.25x, none > 2x): {met}"
        )
        one = [
            max(r["fwd"][1] / r["fwd"][0], r["f+b"][1] / r["f+b"][0])
            for r in rows
            if r["dtype"] == dname and r["B"] == 1
        ]
        if one:
            out.append(
                f"- {dname} batch 1, worst of fwd and fwd+bwd: **{max(one):.2f}x** (target <= 1x): "
                + ("met" if max(one) <= 1.0 else "NOT met")
            )
    return out


def main(args) -> None:
    rehearsal = args.cuda_rehearsal
    device = "cpu" if rehearsal else "cuda"
    if not rehearsal and not torch.cuda.is_available():
        sys.exit(
            f"speed.py --device cuda: torch sees no CUDA device "
            f"(torch {torch.__version__}, CUDA build {torch.version.cuda})"
        )
    try:
        import triton
    except ImportError as e:
        sys.exit(f"speed.py --device cuda: rnnlab's CUDA path needs triton ({e}); pip install -e '.[dev]'")
    if rehearsal:
        os.environ["RNNLAB_FUSED_BACKEND"] = "triton"  # CPU tensors through the Triton back end ...
        os.environ["TRITON_INTERPRET"] = "1"  # ... its kernels interpreted (read when they are imported)
        batches, hidden, T, ln_shapes = (1, 4), (8,), 6, ((2, 8),)
        out = args.out or RESULTS / "speed-cuda.rehearsal.tmp"
    else:
        batches, hidden, T, ln_shapes = BATCHES, HIDDEN, STEPS, LN_SHAPES
        out = args.out or RESULTS / "speed-cuda.md"
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    start = time.perf_counter()
    tests_ok, tests_line = run_tests(device)
    tests_s = time.perf_counter() - start
    print(f"triton tests on {device}: {'passed' if tests_ok else 'FAILED'} ({tests_line}), {tests_s:.0f} s")

    rows, skipped = [], 0
    table_start = time.perf_counter()
    lines = [
        "| cell | dtype | layers | B | H | cuDNN fwd | rnnlab fwd | ratio | cuDNN f+b | rnnlab f+b | ratio |"
    ]
    lines.append("|" + "---|" * 11)
    for dname, dtype in DTYPES.items():
        for cell in CELLS:
            for layers, bidi in CONFIGS:
                for B in batches:
                    for H in hidden:
                        if time.perf_counter() - table_start > TABLE_LIMIT_S:
                            skipped += 1
                            continue
                        r = measure(cell, B, H, layers, bidi, dtype, device, T)
                        r.update(dtype=dname, B=B)
                        rows.append(r)
                        (cf, rf), (cb, rb) = r["fwd"], r["f+b"]
                        config = f"{layers}{' bidir' if bidi else ''}"
                        lines.append(
                            f"| {cell} | {dname} | {config} | {B} | {H} | {cf:.3g} | {rf:.3g} "
                            f"| **{rf / cf:.2f}x** | {cb:.3g} | {rb:.3g} | **{rb / cb:.2f}x** |"
                        )
                        print(lines[-1], flush=True)
    ln = ln_rows(device, ln_shapes, T)
    gpu = torch.cuda.get_device_name() if device == "cuda" else "CPU (rehearsal)"
    header = [
        "# Speed on CUDA: rnnlab's Triton path against torch.nn (cuDNN)",
        "",
        f"`{shlex.join(['python', 'benchmarks/speed.py', '--device', 'cuda'])}`, "
        f"{datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}: {gpu}, torch {torch.__version__} "
        f"(CUDA {torch.version.cuda}), triton {triton.__version__}, rnnlab {rnnlab.__version__}; T {T}, "
        "input size = H, batch_first; float32 without TF32 on both sides.",
        "",
        f"**Correctness first**: the triton tests on {device}: "
        + (
            f"passed ({tests_line})."
            if tests_ok
            else f"**FAILED** ({tests_line}): the figures below are suspect."
        ),
        "",
        "Milliseconds, median of interleaved repetitions; **ratio** = rnnlab / cuDNN (below 1 is faster). "
        "fwd: under `no_grad`; f+b: forward + backward of `output.sum()`.",
    ]
    if rehearsal:
        header.append(
            "\n**Rehearsal on the CPU (Triton interpreter, toy shapes): these numbers mean nothing.**"
        )
    if skipped:
        header.append(f"\n**{skipped} rows skipped**: the run reached its {TABLE_LIMIT_S:.0f} s time limit.")
    notes = [
        "",
        "LayerNormLSTM: the fused path is one product for the input side of all steps, then per step one "
        "product and one Triton kernel (LN_hh, gates, LN_c, h), and a hand-written backward with one kernel "
        "per step; the loop is the same cell as torch ops, autograd's backward.",
    ]
    text = (
        "\n".join(
            header
            + ["", *lines, "", *summary(rows), "", "## LayerNormLSTM, one layer, float32", "", *ln, *notes]
        )
        + "\n"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial.tmp")  # written whole, then renamed
    partial.write_text(text, encoding="utf-8")
    partial.replace(out)
    print(text)
    print(f"written to {out} in {time.perf_counter() - start:.0f} s", file=sys.stderr)
