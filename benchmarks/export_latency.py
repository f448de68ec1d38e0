"""Inference latency of the ONNX export: onnxruntime against rnnlab's fast path and torch.nn, same weights.

Two models, at batch 1 and batch 32, float32 on the CPU:

* the default sentiment classifier (``ClassifierConfig()``: BiLSTM 128 + attention pooling) over texts of
  ``--text-len`` tokens, a padded batch with lengths (rnnlab and torch.nn read it packed, onnxruntime with
  ``sequence_lens``); "torch.nn" is the same classifier with its encoder swapped for ``torch.nn.LSTM``;
* an LSTM with H 512 (input 512) over ``--seq-len`` steps, batch-first;
* the default char LM (``CharLM``: LSTM 512, embedding 64, V ``--chars``), one sampling step (T 1) with the
  state carried in and out; "torch.nn" swaps its stack for ``torch.nn.LSTM``;
* the default forecaster (an ensemble of 5 LSTM 32 members, window 24, horizon 12, 2 calendar features, as a
  monthly run has), one forecast; "torch.nn" swaps each member's encoder for ``torch.nn.LSTM``.

Each time is the median over ``--reps`` calls after warm-up, the three implementations interleaved call by
call so that a change in the machine's load hits all alike; ratios are to torch.nn. The last column is the
largest difference between onnxruntime's output and rnnlab's.

    python benchmarks/export_latency.py                # the table, to stdout (and --out FILE.md)
    python benchmarks/export_latency.py --quick        # tiny sizes, 3 reps: a smoke run, not a measurement
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import rnnlab.nn as rnn
from rnnlab.export import to_onnx
from rnnlab.models.charlm import CharLM, CharLMConfig
from rnnlab.models.classifier import ClassifierConfig, RecurrentClassifier
from rnnlab.models.forecaster import ForecasterConfig, RecurrentForecaster


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


def _torch_lstm(layer: torch.nn.Module) -> torch.nn.LSTM:
    """torch.nn's LSTM with ``layer``'s weights (the same parameter names)."""
    twin = torch.nn.LSTM(layer.input_size, layer.hidden_size, layer.num_layers, batch_first=layer.batch_first)
    twin.load_state_dict(layer.state_dict())
    return twin.eval()


def _charlm_rows(args, folder: Path) -> list[tuple]:
    torch.manual_seed(0)
    config = CharLMConfig(vocab_size=args.chars, embedding_dim=64, hidden_size=32 if args.quick else 512)
    model = CharLM(config).eval()
    baseline = copy.deepcopy(model)
    baseline.rnn = _torch_lstm(model.rnn)
    sess = _session(to_onnx(model, (torch.randint(2, args.chars, (2, 3)),), folder / "lm.onnx"), args.threads)
    rows = []
    for B in (1, 32):
        ids = torch.randint(2, args.chars, (B, 1))
        h0, c0 = torch.randn(1, B, config.hidden_size), torch.randn(1, B, config.hidden_size)
        feeds = {"ids": ids.numpy(), "h0": h0.numpy(), "c0": c0.numpy()}
        with torch.no_grad():
            ms = _median_ms(
                {
                    "torch.nn": lambda ids=ids, s=(h0, c0): baseline(ids, s),
                    "rnnlab": lambda ids=ids, s=(h0, c0): model(ids, s),
                    "onnxruntime": lambda feeds=feeds: sess.run(None, feeds),
                },
                args.reps,
            )
            diff = float(np.abs(sess.run(None, feeds)[0] - model(ids, (h0, c0))[0].numpy()).max())
        rows.append((f"char LM step, H {config.hidden_size}", B, ms, diff))
    return rows


def _forecaster_rows(args, folder: Path) -> list[tuple]:
    torch.manual_seed(0)
    config = ForecasterConfig(window=24, horizon=12, num_features=2, period=12)
    model = RecurrentForecaster(config).eval()
    baseline = copy.deepcopy(model)
    for member in baseline.members:
        member.encoder = _torch_lstm(member.encoder)
    example = (torch.randn(2, 24), torch.randn(2, 24, 2))
    sess = _session(to_onnx(model, example, folder / "forecaster.onnx"), args.threads)
    rows = []
    for B in (1, 32):
        x, cal = torch.randn(B, 24), torch.randn(B, 24, 2)
        feeds = {"x": x.numpy(), "calendar": cal.numpy()}
        with torch.no_grad():
            ms = _median_ms(
                {
                    "torch.nn": lambda x=x, cal=cal: baseline.predict(x, cal),
                    "rnnlab": lambda x=x, cal=cal: model.predict(x, cal),
                    "onnxruntime": lambda feeds=feeds: sess.run(None, feeds),
                },
                args.reps,
            )
            diff = float(np.abs(sess.run(None, feeds)[0] - model.predict(x, cal).numpy()).max())
        rows.append(("forecaster, 5 x LSTM 32, W 24", B, ms, diff))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch and onnxruntime intra-op threads")
    parser.add_argument("--reps", type=int, default=50)
    parser.add_argument("--text-len", type=int, default=100, help="tokens per text (sentiment)")
    parser.add_argument("--seq-len", type=int, default=64, help="steps (LSTM H 512)")
    parser.add_argument("--vocab", type=int, default=4000, help="vocabulary size of the sentiment model")
    parser.add_argument("--chars", type=int, default=67, help="vocabulary size of the char LM")
    parser.add_argument("--quick", action="store_true", help="tiny sizes and 3 reps: a smoke run")
    parser.add_argument("--out", type=Path, help="also write the table to this Markdown file")
    args = parser.parse_args(argv)
    if args.quick:
        args.reps, args.text_len, args.seq_len = 3, 8, 8
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        rows = _classifier_rows(args, folder) + _lstm_rows(args, folder)
        rows += _charlm_rows(args, folder) + _forecaster_rows(args, folder)
    lines = [
        f"torch {torch.__version__}, {args.threads} thread(s), median of {args.reps} calls (ms); "
        f"1-minute load average {load_before:.1f} before and {os.getloadavg()[0]:.1f} after, on "
        f"{os.cpu_count()} CPUs (other work on the machine slows all three columns alike, not equally)",
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
