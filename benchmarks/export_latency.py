"""Inference latency of the ONNX export: onnxruntime against rnnlab's fast path and torch.nn, same weights.

Two models, at batch 1 and batch 32, float32 on the CPU:

* the default sentiment classifier (``ClassifierConfig()``: BiLSTM 128 + attention pooling) over texts of
  ``--text-len`` tokens, a padded batch with lengths (rnnlab and torch.nn read it packed, onnxruntime with
  ``sequence_lens``); "torch.nn" is the same classifier with its encoder swapped for ``torch.nn.LSTM``;
* an LSTM with H 512 (input 512) over ``--seq-len`` steps, batch-first.

Each time is the median over ``--reps`` calls after warm-up, the three implementations interleaved call by
call so that a change in the machine's load hits all alike; ratios are to torch.nn. The last column is the
largest difference between onnxruntime's output and rnnlab's.

    python benchmarks/export_latency.py                # the table, to stdout (and --out FILE.md)
    python benchmarks/export_latency.py --quick        # tiny sizes, 3 reps: a smoke run, not a measurement
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import rnnlab.nn as rnn
from rnnlab.export import to_onnx
from rnnlab.models.classifier import ClassifierConfig, RecurrentClassifier


def _session(path: Path, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _median_ms(calls: dict, reps: int) -> dict[str, float]:
    """Interleaved timing: every rep calls each implementation once; returns the median ms of each."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    for call in calls.values():  # warm-up
        call()
    for _ in range(reps):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append((time.perf_counter() - start) * 1e3)
    return {name: statistics.median(t) for name, t in times.items()}


def _classifier_rows(args, folder: Path) -> list[tuple]:
    torch.manual_seed(0)
    config = ClassifierConfig(vocab_size=args.vocab, num_classes=2)
    if args.quick:
        config = ClassifierConfig(
            vocab_size=50, num_classes=2, embedding_dim=16, hidden_size=16, attention_size=16
        )
    model = RecurrentClassifier(config).eval()
    baseline = copy.deepcopy(model)
    enc = model.encoder
    baseline.encoder = torch.nn.LSTM(enc.input_size, enc.hidden_size, enc.num_layers, batch_first=True,
                                     bidirectional=enc.bidirectional)  # fmt: skip
    baseline.encoder.load_state_dict(enc.state_dict())  # same parameter names as torch.nn
    example = (torch.randint(2, config.vocab_size, (2, 4)), torch.tensor([4, 3]))
    sess = _session(to_onnx(model, example, folder / "classifier.onnx"), args.threads)
    rows = []
    for B in (1, 32):
        g = torch.Generator().manual_seed(B)
        T = args.text_len
        lengths = torch.randint(max(1, T // 2), T + 1, (B,), generator=g)
        lengths[0] = T
        ids = torch.randint(2, config.vocab_size, (B, T), generator=g)
        ids = ids.masked_fill(torch.arange(T)[None] >= lengths[:, None], 0)
        feeds = {"ids": ids.numpy(), "lengths": lengths.numpy()}
        with torch.no_grad():
            ms = _median_ms(
                {
                    "torch.nn": lambda ids=ids, lengths=lengths: baseline(ids, lengths),
                    "rnnlab": lambda ids=ids, lengths=lengths: model(ids, lengths),
                    "onnxruntime": lambda feeds=feeds: sess.run(None, feeds),
                },
                args.reps,
            )
            diff = float(np.abs(sess.run(None, feeds)[0] - model(ids, lengths)[0].numpy()).max())
        rows.append((f"sentiment classifier, T {T}", B, ms, diff))
    return rows


def _lstm_rows(args, folder: Path) -> list[tuple]:
    torch.manual_seed(0)
    H = 32 if args.quick else 512
    layer = rnn.LSTM(H, H, batch_first=True).eval()
    baseline = torch.nn.LSTM(H, H, batch_first=True).eval()
    baseline.load_state_dict(layer.state_dict())
    sess = _session(to_onnx(layer, (torch.randn(2, 4, H),), folder / "lstm.onnx"), args.threads)
    rows = []
    for B in (1, 32):
        x = torch.randn(B, args.seq_len, H)
        feeds = {"input": x.numpy()}
        with torch.no_grad():
            ms = _median_ms(
                {
                    "torch.nn": lambda x=x: baseline(x),
                    "rnnlab": lambda x=x: layer(x),
                    "onnxruntime": lambda feeds=feeds: sess.run(None, feeds),
                },
                args.reps,
            )
            diff = float(np.abs(sess.run(None, feeds)[0] - layer(x)[0].numpy()).max())
        rows.append((f"LSTM H {H}, T {args.seq_len}", B, ms, diff))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch and onnxruntime intra-op threads")
    parser.add_argument("--reps", type=int, default=50)
    parser.add_argument("--text-len", type=int, default=100, help="tokens per text (sentiment)")
    parser.add_argument("--seq-len", type=int, default=64, help="steps (LSTM H 512)")
    parser.add_argument("--vocab", type=int, default=4000, help="vocabulary size of the sentiment model")
    parser.add_argument("--quick", action="store_true", help="tiny sizes and 3 reps: a smoke run")
    parser.add_argument("--out", type=Path, help="also write the table to this Markdown file")
    args = parser.parse_args(argv)
    if args.quick:
        args.reps, args.text_len, args.seq_len = 3, 8, 8
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        rows = _classifier_rows(args, Path(tmp)) + _lstm_rows(args, Path(tmp))
    lines = [
        f"torch {torch.__version__}, {args.threads} thread(s), median of {args.reps} calls (ms)",
        "",
        "| model | batch | torch.nn | rnnlab (fast path) | onnxruntime | rnnlab / torch.nn "
        "| onnxruntime / torch.nn | max abs diff ORT vs rnnlab |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, B, ms, diff in rows:
        base = ms["torch.nn"]
        lines.append(
            f"| {name} | {B} | {base:.3f} | {ms['rnnlab']:.3f} | {ms['onnxruntime']:.3f} | "
            f"{ms['rnnlab'] / base:.2f} | {ms['onnxruntime'] / base:.2f} | {diff:.1e} |"
        )
    table = "\n".join(lines) + "\n"
    sys.stdout.write(table)
    if args.out:
        args.out.write_text(table, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
