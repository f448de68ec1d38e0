"""Speed of rnnlab's recurrent layers against torch.nn's, measured side by side.

For LSTM, GRU and RNN (tanh) on the shapes below, batch-first, float32, with 1 and 2 threads: the time of
torch.nn's layer, rnnlab's fast path (the default, ``use_fused=True``) and rnnlab's readable path
(``use_fused=False``), for inference (forward under ``no_grad``) and for training (forward + backward of
``output.sum()``). The three run interleaved in one process, repetition by repetition, so a change in the
machine's load hits all of them alike; each time is the median over repetitions and each ratio is to
torch.nn's median. Also reported, for the fast path: GFLOP/s and the share of a measured GEMM ceiling
(the time the same matrix products take on their own, at the speed torch.mm reaches on those shapes), and
for all three the peak memory of one forward + backward (resident set high-water mark, measured in a child
process where every large buffer is returned to the OS on free, so the peak is real and not a cache) and
the memory autograd keeps from the forward for the backward (which small, recycled allocations cannot hide).
Last, the sentiment task's training throughput (samples/s) with rnnlab's layers and with torch.nn's.

    python benchmarks/speed.py                 # the table, written to benchmarks/results/speed.md
    python benchmarks/speed.py --quick         # a smoke run on small shapes (seconds), not a measurement
    PYTHONPATH=src python3 benchmarks/speed.py --device cuda --out $OUT/speed-cuda.md   # GPU: speed_cuda.py

The benchmark refuses to report on a busy machine: it waits (``--wait`` seconds) for the 1-minute load
average to drop below ``--max-load``, then gives up; and each row is re-measured when a calibration GEMM
shows that the machine slowed down meanwhile. On a machine that stays shared, ``--threads 1 --cpu-time``
times with the process's CPU time instead, which other processes' time slices do not inflate (written to
``speed-cpu-time.md``); two threads can only be measured on a quiet machine.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import datetime
import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence

import rnnlab
import rnnlab.nn as rnn
from rnnlab.nn import fused

RESULTS = Path(__file__).resolve().parent / "results"
CLOCK = time.perf_counter  # wall time; --cpu-time switches to the process's CPU time
CELLS = {"LSTM": 4, "GRU": 3, "RNN": 1}  # name -> gates
IMPLS = ("torch.nn", "fast", "readable")


@dataclass(frozen=True)
class Shape:
    name: str
    B: int  # batch
    T: int  # steps (the longest sequence when packed)
    I: int  # input size
    H: int  # hidden size
    layers: int = 1
    bidirectional: bool = False
    packed: bool = False  # mixed lengths in [T // 10, T], as a PackedSequence

    def lengths(self) -> list[int]:
        if not self.packed:
            return [self.T] * self.B
        g = torch.Generator().manual_seed(0)
        lengths = torch.randint(max(1, self.T // 10), self.T + 1, (self.B,), generator=g).tolist()
        lengths[0] = self.T
        return lengths


SHAPES = [
    Shape("B32 T100 I128 H256", 32, 100, 128, 256),
    Shape("B64 T200 I100 H128 2 layers, bidirectional", 64, 200, 100, 128, 2, True),
    Shape("B1 T500 I64 H64", 1, 500, 64, 64),
    Shape("B256 T50 I300 H512", 256, 50, 300, 512),
    Shape("packed B64 T<=200 I128 H256 (mixed lengths)", 64, 200, 128, 256, packed=True),
    Shape("padded twin of the packed batch", 64, 200, 128, 256),
]
QUICK_SHAPES = [
    Shape("B8 T20 I16 H32", 8, 20, 16, 32),
    Shape("B4 T12 I8 H16 2 layers, bidirectional", 4, 12, 8, 16, 2, True),
    Shape("packed B8 T<=20 I16 H32", 8, 20, 16, 32, packed=True),
]


# ------------------------------------------------------------------------------------------------------
# Building and running the layers
# ------------------------------------------------------------------------------------------------------


def build(cell: str, shape: Shape, device: str) -> dict[str, torch.nn.Module]:
    """torch.nn's layer and rnnlab's twins (fast and readable) with the same weights."""
    kwargs = dict(num_layers=shape.layers, bidirectional=shape.bidirectional, batch_first=True)
    torch.manual_seed(0)
    ref = getattr(torch.nn, cell)(shape.I, shape.H, **kwargs).to(device)
    layers = {"torch.nn": ref}
    for impl in ("fast", "readable"):
        ours = getattr(rnn, cell)(shape.I, shape.H, **kwargs).to(device)
        ours.load_state_dict(ref.state_dict())
        ours.use_fused = impl == "fast"
        layers[impl] = ours
    return layers


def make_input(shape: Shape, device: str, requires_grad: bool):
    """(B, T, I), or a PackedSequence whose data is a leaf (gradients stop there, as after an embedding)."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(shape.B, shape.T, shape.I, generator=g).to(device)
    if shape.packed:
        packed = pack_padded_sequence(
            x, torch.tensor(shape.lengths()), batch_first=True, enforce_sorted=False
        )
        data = packed.data.detach().requires_grad_(requires_grad)
        return PackedSequence(data, packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices)
    return x.requires_grad_(requires_grad)


def forward_fn(layer, inp) -> Callable[[], None]:
    def run() -> None:
        with torch.no_grad():
            layer(inp)

    return run


def train_fn(layer, inp) -> Callable[[], None]:
    leaf = inp.data if isinstance(inp, PackedSequence) else inp
    params = list(layer.parameters())

    def run() -> None:
        leaf.grad = None
        for p in params:
            p.grad = None
        out, _ = layer(inp)
        (out.data if isinstance(out, PackedSequence) else out).sum().backward()

    return run


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def interleaved(fns: dict[str, Callable[[], None]], device: str, budget_s: float, max_reps: int) -> dict:
    """Median seconds per call of each fn, timed in turns (the starting one rotates each round)."""
    costs = {}
    for name, fn in fns.items():  # two warm-up calls: primitive caches, first-touch of buffers, the build
        fn()
        sync(device)
        start = CLOCK()
        fn()
        sync(device)
        costs[name] = CLOCK() - start
    reps = int(max(3, min(max_reps, budget_s / max(sum(costs.values()), 1e-9))))
    times: dict[str, list[float]] = {name: [] for name in fns}
    names = list(fns)
    for r in range(reps):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            start = CLOCK()
            fns[name]()
            sync(device)
            times[name].append(CLOCK() - start)
    return {name: statistics.median(t) for name, t in times.items()}


# ------------------------------------------------------------------------------------------------------
# FLOPs and the GEMM ceiling
# ------------------------------------------------------------------------------------------------------

_gemm_cache: dict[tuple, float] = {}


def gemm_gflops(m: int, k: int, n: int, device: str) -> float:
    """GFLOP/s of torch.mm on (m, k) @ (k, n) with the current thread count (best of 3 blocks)."""
    key = (m, k, n, device, torch.get_num_threads())
    if key not in _gemm_cache:
        a, b = torch.randn(m, k, device=device), torch.randn(k, n, device=device)
        out = torch.empty(m, n, device=device)
        torch.mm(a, b, out=out)
        reps = max(1, int(2e8 / (2 * m * k * n)))
        best = float("inf")
        for _ in range(3):
            sync(device)
            start = CLOCK()
            for _ in range(reps):
                torch.mm(a, b, out=out)
            sync(device)
            best = min(best, (CLOCK() - start) / reps)
        _gemm_cache[key] = 2 * m * k * n / best / 1e9
    return _gemm_cache[key]


def flops_and_ceiling(cell: str, shape: Shape, train: bool, device: str) -> tuple[float, float]:
    """(FLOPs of the matrix products, seconds they take at torch.mm's speed on the same shapes).

    Per layer and direction, with N tokens and G = gates * H: the input projection (N, I) @ (I, G) and the
    per-step products (B, H) @ (H, G); the backward adds dx and dW_ih (like the projection), dW_hh (one
    large product) and the per-step dh (like the step product). Elementwise work is not counted.
    """
    N = sum(shape.lengths())
    G = CELLS[cell] * shape.H
    D = 2 if shape.bidirectional else 1
    flops = ceiling = 0.0
    for layer in range(shape.layers):
        I = shape.I if layer == 0 else D * shape.H
        big = 2 * N * I * G * (3 if train else 1) + (2 * N * G * shape.H if train else 0)
        step = 2 * N * shape.H * G * (2 if train else 1)
        flops += D * (big + step)
        ceiling += (
            D * (big / gemm_gflops(N, I, G, device) + step / gemm_gflops(shape.B, shape.H, G, device)) / 1e9
        )
    return flops, ceiling


# ------------------------------------------------------------------------------------------------------
# Peak memory (child processes where glibc returns every buffer >= 4 KiB to the OS on free, so the resident
# set's high-water mark during one step is that step's peak)
# ------------------------------------------------------------------------------------------------------


def _status_mb(key: str) -> float:
    match = re.search(key + r":\s+(\d+) kB", Path("/proc/self/status").read_text())
    return int(match.group(1)) / 1024 if match else float("nan")


def memory_child(cell: str, shape: Shape, impl: str) -> dict[str, float]:
    """Peak MB above the resident set of one forward + backward, after one warm-up step; and the MB that
    autograd keeps from the forward for the backward (distinct storages, the input and the parameters not
    counted). The second does not depend on the allocator: at batch 1 torch.nn's per-step tensors are a
    few hundred bytes each, recycled from the warm heap, which the resident set does not show."""
    torch.set_num_threads(1)
    layer = build(cell, shape, "cpu")[impl]
    inp = make_input(shape, "cpu", requires_grad=True)
    step = train_fn(layer, inp)
    step()  # warm: the extension, oneDNN's primitive, the .grad buffers
    base = _status_mb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset the high-water mark to the current RSS
    step()
    peak = _status_mb("VmHWM") - base
    leaf = inp.data if isinstance(inp, PackedSequence) else inp
    skip = {t.untyped_storage().data_ptr() for t in [leaf, *layer.parameters()]}
    saved: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in skip:
            saved[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        layer(inp)
    return {"peak": peak, "saved": sum(saved.values()) / 2**20}


def peak_memory(cells: list[str], shapes: list[Shape]) -> dict[tuple[str, str], dict[str, dict[str, float]]]:
    """memory_child's numbers per (cell, shape name) and implementation, 1 thread, each in a fresh
    process (in a shared one, memory freed by one implementation is reused by the next unseen)."""
    if not Path("/proc/self/clear_refs").exists():  # not Linux: no high-water mark to reset
        return {}
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="4096", MALLOC_TRIM_THRESHOLD_="4096")
    result: dict[tuple[str, str], dict[str, float]] = {}
    for cell in cells:
        for shape in shapes:
            for impl in IMPLS:
                spec = json.dumps({"cell": cell, "shape": shape.__dict__, "impl": impl})
                command = [sys.executable, __file__, "--memory-child", spec]
                proc = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
                result.setdefault((cell, shape.name), {})[impl] = json.loads(
                    proc.stdout.strip().splitlines()[-1]
                )
    return result


# ------------------------------------------------------------------------------------------------------
# The sentiment task's training throughput
# ------------------------------------------------------------------------------------------------------


def review_lengths(max_len: int) -> list[int]:
    """Token counts of reviews-zh (characters, capped at the task's max_len); synthetic if unavailable."""
    try:
        from rnnlab.data import load_data

        return [max(1, min(len(text), max_len)) for text in load_data("reviews-zh").texts]
    except Exception:  # the data's package missing: a log-normal with the corpus' rough shape
        g = torch.Generator().manual_seed(0)
        return (torch.randn(5000, generator=g) * 0.8 + 3.8).exp().clamp(2, max_len).long().tolist()


def sentiment_throughput(steps: int, batch_size: int = 64) -> dict[str, float]:
    """Samples/s of the task's default model (BiLSTM + attention pooling) training on bucketed batches."""
    from rnnlab.models.classifier import ClassifierConfig, RecurrentClassifier

    config = ClassifierConfig(vocab_size=5000, num_classes=2)
    torch.manual_seed(0)
    ours = RecurrentClassifier(config)
    theirs = copy.deepcopy(ours)
    twin = torch.nn.LSTM(
        config.embedding_dim, config.hidden_size, num_layers=config.num_layers, batch_first=True,
        bidirectional=config.bidirectional,
    )  # fmt: skip
    twin.load_state_dict(ours.encoder.state_dict())
    theirs.encoder = twin
    g = torch.Generator().manual_seed(0)
    pool = review_lengths(256)
    picks = torch.randint(len(pool), (steps * batch_size,), generator=g)
    lengths = sorted(pool[i] for i in picks.tolist())  # bucketed by length, as the task's sampler does
    batches = []
    for k in torch.randperm(steps, generator=g).tolist():
        lens = torch.tensor(lengths[k * batch_size : (k + 1) * batch_size])
        ids = torch.randint(2, config.vocab_size, (batch_size, int(lens.max())), generator=g)
        ids = ids.masked_fill(torch.arange(ids.size(1)) >= lens.unsqueeze(1), 0)
        batches.append((ids, lens, torch.randint(2, (batch_size,), generator=g)))
    models = {"rnnlab": ours, "torch.nn": theirs}
    optims = {name: torch.optim.AdamW(m.parameters(), lr=1e-3) for name, m in models.items()}
    spent = dict.fromkeys(models, 0.0)
    for i, (ids, lens, labels) in enumerate(batches * 2):
        for name, model in models.items():
            start = CLOCK()
            logits, _ = model(ids, lens)
            loss = torch.nn.functional.cross_entropy(logits, labels)
            optims[name].zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optims[name].step()
            if i >= len(batches):  # the first pass warms up
                spent[name] += CLOCK() - start
    return {name: steps * batch_size / seconds for name, seconds in spent.items()}


# ------------------------------------------------------------------------------------------------------
# The run
# ------------------------------------------------------------------------------------------------------


def wait_until_quiet(max_load: float, wait_s: float) -> float:
    """The 1-minute load average once it is below max_load; exits if it stays above for wait_s seconds."""
    deadline = time.time() + wait_s
    while True:
        load = os.getloadavg()[0]
        if load <= max_load:
            return load
        if time.time() > deadline:
            sys.exit(
                f"speed.py: the machine is busy (1-minute load {load:.2f} > --max-load {max_load}); "
                "not reporting. Retry when it is quiet, or raise --max-load knowingly."
            )
        print(f"  load {load:.2f} > {max_load}: waiting...", file=sys.stderr)
        time.sleep(20)


def calibration(device: str) -> float:
    """Seconds for a fixed GEMM: a probe of how much of the machine we have right now."""
    a = torch.randn(256, 256, device=device)
    sync(device)
    best = float("inf")
    for _ in range(5):
        start = CLOCK()
        for _ in range(20):
            a @ a
        sync(device)
        best = min(best, CLOCK() - start)
    return best


def measure_row(cell: str, shape: Shape, args) -> dict:
    layers = build(cell, shape, args.device)
    impls = [i for i in IMPLS if args.readable or i != "readable"]
    row: dict = {"cell": cell, "shape": shape.name, "batch": shape.B}
    for phase, make in (("fwd", forward_fn), ("train", train_fn)):
        train = phase == "train"
        fns = {}
        for impl in impls:
            inp = make_input(shape, args.device, requires_grad=train)
            layers[impl].train(train)
            fns[impl] = make(layers[impl], inp)
        budget = args.budget if shape.B * shape.T * shape.H < 2e6 else 2 * args.budget
        times = interleaved(fns, args.device, budget, args.max_reps)
        for impl, seconds in times.items():
            row[f"{phase} {impl}"] = seconds * 1e3
        flops, ceiling = flops_and_ceiling(cell, shape, train, args.device)
        row[f"{phase} gflops"] = flops / times["fast"] / 1e9
        row[f"{phase} ceiling"] = ceiling / times["fast"]
    return row


def fmt_ms(ms: float) -> str:
    return f"{ms:.3g}" if ms < 100 else f"{ms:.0f}"


def table(rows: list[dict], readable: bool) -> list[str]:
    head = ["cell", "shape", "torch.nn fwd", "fast fwd", "readable fwd", "torch.nn f+b", "fast f+b"]
    head += ["readable f+b", "fast GFLOP/s f+b (% GEMM)", "peak MB f+b: torch.nn / fast / readable"]
    head += ["MB saved for the backward: torch.nn / fast / readable"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["cell"], r["shape"]]
        for phase in ("fwd", "train"):
            base = r[f"{phase} torch.nn"]
            cells.append(fmt_ms(base))
            for impl in ("fast", "readable"):
                if f"{phase} {impl}" in r:
                    cells.append(f"{fmt_ms(r[f'{phase} {impl}'])} (**{r[f'{phase} {impl}'] / base:.2f}x**)")
                else:
                    cells.append("-")
        cells.append(f"{r['train gflops']:.1f} ({100 * r['train ceiling']:.0f} %)")
        mem = r.get("memory")
        for key, digits in (("peak", 0), ("saved", 1)):
            cells.append(" / ".join(f"{mem[i][key]:.{digits}f}" for i in IMPLS) if mem else "-")
        lines.append("| " + " | ".join(cells) + (" ~" if r.get("noisy") else "") + " |")
    return lines


def summary(rows: list[dict]) -> list[str]:
    out = []
    train = [r["train fast"] / r["train torch.nn"] for r in rows if "twin" not in r["shape"]]
    out.append(
        f"- fwd+bwd, fast / torch.nn: median **{statistics.median(train):.2f}x**, "
        f"worst **{max(train):.2f}x** (target <= 1.0x median, <= 1.25x worst)"
    )
    big = [r["fwd fast"] / r["fwd torch.nn"] for r in rows if r["batch"] >= 32]
    if big:
        out.append(f"- forward at batch >= 32: worst **{max(big):.2f}x** (target <= 1.1x)")
    one = [r for r in rows if r["batch"] == 1]
    if one:
        worst = max(
            max(r["fwd fast"] / r["fwd torch.nn"], r["train fast"] / r["train torch.nn"]) for r in one
        )
        out.append(f"- batch 1, forward and fwd+bwd: worst **{worst:.2f}x** (target <= 2x)")
    large = [r for r in rows if r["shape"].startswith("B256")]
    if large:
        shares = ", ".join(f"{r['cell']} {100 * r['train ceiling']:.0f} %" for r in large)
        out.append(f"- large shape, fwd+bwd share of the GEMM ceiling: {shares} (target >= 80 %)")
    for r in rows:
        if r["shape"].startswith("packed"):
            twin = next((t for t in rows if t["cell"] == r["cell"] and "twin" in t["shape"]), None)
            if twin:
                s = next(s for s in SHAPES if s.packed)
                frac = sum(s.lengths()) / (s.B * s.T)
                train_share = r["train fast"] / twin["train fast"]
                fwd_share = r["fwd fast"] / twin["fwd fast"]
                out.append(
                    f"- {r['cell']} packed batch, time over its padded twin's: fwd+bwd {train_share:.2f}, "
                    f"forward {fwd_share:.2f}, for {frac:.2f} of the tokens"
                )
    mem = [r for r in rows if r.get("memory")]
    if mem:
        checks = (("peak", "peak memory fwd+bwd", 0.5), ("saved", "memory saved for the backward", 0.05))
        for key, what, slack in checks:
            worse = [
                f"{r['cell']} {r['shape']}"
                for r in mem
                if r["memory"]["fast"][key] > r["memory"]["torch.nn"][key] + slack
            ]
            out.append(f"- {what} above torch.nn's: {', '.join(worse) if worse else 'none'}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small shapes, 1 thread, few repetitions")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--cells", nargs="+", default=list(CELLS), choices=list(CELLS))
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--no-readable", dest="readable", action="store_false", help="skip the readable path")
    parser.add_argument("--no-memory", dest="memory", action="store_false", help="skip peak memory")
    parser.add_argument("--no-sentiment", dest="sentiment", action="store_false", help="skip the task")
    parser.add_argument("--budget", type=float, default=3.0, help="seconds of timing per row and phase")
    parser.add_argument("--max-reps", type=int, default=30)
    parser.add_argument("--max-load", type=float, default=0.5, help="refuse above this 1-minute load")
    parser.add_argument(
        "--cpu-time",
        action="store_true",
        help="time with the process's CPU time, which other processes' time slices do not inflate: "
        "trustworthy ratios on a shared machine, with --threads 1 only (no load check then)",
    )
    parser.add_argument("--wait", type=float, default=600, help="seconds to wait for a quiet machine")
    parser.add_argument("--out", type=Path, default=None, help="markdown output (default results/speed.md)")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    parser.add_argument("--cuda-rehearsal", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--deadline", type=float, default=420.0, help="--device cuda: seconds, all phases")
    parser.add_argument("--no-tests", dest="tests", action="store_false", help="--device cuda: time only")
    args = parser.parse_args()
    if args.device == "cuda" or args.cuda_rehearsal:  # its own script: tests first, then the table
        import speed_cuda

        return speed_cuda.main(args)

    if args.memory_child:  # internal: one peak-memory measurement, in a fresh process
        spec = json.loads(args.memory_child)
        print(json.dumps(memory_child(spec["cell"], Shape(**spec["shape"]), spec["impl"])))
        return
    global CLOCK
    if args.cpu_time:
        if args.threads != [1]:
            parser.error("--cpu-time measures one thread's work: use it with --threads 1")
        CLOCK = time.process_time
    shapes = QUICK_SHAPES if args.quick else SHAPES
    if args.quick:
        args.threads, args.budget, args.max_reps = [1], 0.05, 3
        out = args.out or RESULTS / "speed.quick.tmp"  # not a result: git ignores *.tmp there
    else:
        name = "speed" if args.device == "cpu" else f"speed-{args.device}"
        out = args.out or RESULTS / (name + ("-cpu-time" if args.cpu_time else "") + ".md")
    if args.device == "cpu" and not args.quick and not args.cpu_time:
        load_start = wait_until_quiet(args.max_load, args.wait)
    else:
        load_start = os.getloadavg()[0]
    backend = "C++" if fused.extension_available() else "pure PyTorch (the C++ extension is not built)"

    memory = {}
    if args.memory and args.device == "cpu":  # a smoke run measures one case, to exercise the code
        memory = peak_memory(args.cells[:1], shapes[:1]) if args.quick else peak_memory(args.cells, shapes)
    sections = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        rows = []
        best_probe = calibration(args.device)
        for cell in args.cells:
            for shape in shapes:
                for _attempt in range(3):
                    probe = calibration(args.device)
                    best_probe = min(best_probe, probe)
                    row = measure_row(cell, shape, args)
                    after = calibration(args.device)
                    row["noisy"] = max(probe, after) > 1.25 * best_probe
                    if not row["noisy"] or args.quick:
                        break
                    print("  the machine slowed down during this row: measuring it again", file=sys.stderr)
                    time.sleep(10)
                row["memory"] = memory.get((cell, shape.name))
                rows.append(row)
                fwd_ratio = row["fwd fast"] / row["fwd torch.nn"]
                train_ratio = row["train fast"] / row["train torch.nn"]
                print(f"{threads} thr {cell:4s} {shape.name:45s} fwd {fwd_ratio:.2f}x f+b {train_ratio:.2f}x")
        sections += [f"\n## {threads} thread{'s' if threads > 1 else ''}\n", *table(rows, args.readable)]
        sections += ["", *summary(rows)]
    if args.sentiment and args.device == "cpu":
        sections.append("\n## The sentiment task's training throughput (samples/s, BiLSTM 128 + attention)\n")
        sections.append("| threads | torch.nn | rnnlab | rnnlab / torch.nn |")
        sections.append("|---|---|---|---|")
        for threads in args.threads:
            torch.set_num_threads(threads)
            result = sentiment_throughput(steps=1, batch_size=16) if args.quick else sentiment_throughput(20)
            sections.append(
                f"| {threads} | {result['torch.nn']:.0f} | {result['rnnlab']:.0f} | "
                f"**{result['rnnlab'] / result['torch.nn']:.2f}x** |"
            )

    # the options as given, the output path left out (a local path says nothing about the run)
    command_args = [
        a
        for a in sys.argv[1:]
        if a != "--out" and not a.startswith("--out=") and (args.out is None or a != str(args.out))
    ]
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError, AttributeError):
        cpu = re.search(r"model name\s*:\s*(.*)", Path("/proc/cpuinfo").read_text()).group(1)
    header = [
        "# Speed: rnnlab's recurrent layers against torch.nn",
        "",
        f"`{shlex.join(['python', 'benchmarks/speed.py', *command_args])}`, "
        f"{datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}: {cpu}, {os.cpu_count()} cores, "
        f"torch {torch.__version__}, rnnlab {rnnlab.__version__}, fused back end: {backend}, "
        f"ISA {torch.backends.cpu.get_cpu_capability()}; device {args.device}, float32, batch_first. "
        f"1-minute load {load_start:.2f} at the start, {os.getloadavg()[0]:.2f} at the end. "
        + ("Clock: **process CPU time** (--cpu-time)." if args.cpu_time else "Clock: wall time."),
        "",
        "Milliseconds, median of interleaved repetitions; **ratio** = time / torch.nn's time in the same "
        "process (below 1 is faster). fwd: inference under `no_grad`; f+b: forward + backward of "
        "`output.sum()`. fast: rnnlab's default path; readable: `use_fused=False`. % GEMM: the time the "
        "layer's matrix products take on their own at torch.mm's speed on the same shapes, over the "
        "measured time. Peak MB: resident high-water mark of one forward + backward, measured in a "
        "separate process. MB saved: what autograd keeps from the forward for the backward (distinct "
        "storages; the input and the parameters not counted). A row marked ~ stayed noisy after three tries.",
    ]
    if args.quick:
        header.append("\n**--quick: a smoke run on toy shapes; these numbers mean nothing.**")
    text = "\n".join(header + sections) + "\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial.tmp")  # written whole, then renamed: never half a table
    partial.write_text(text, encoding="utf-8")
    partial.replace(out)
    print(text)
    print(f"written to {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
