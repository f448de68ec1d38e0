"""Sequence to sequence quality, side by side: no attention vs additive vs dot vs general, greedy vs beam 5.

On ``dates`` (generated, held-out test dates never seen in training): exact match on the test set, and the
*digit alignment*: for each target digit, does its strongest attention (teacher-forced on the reference)
fall on the source characters it came from? :mod:`rnnlab.data.dates` records them: the ``3`` of ``2036`` for
a copied digit, ``March`` or ``二十四`` for a component written another way. Plus each variant's training
time.

On ``de-en`` (Debian package ``trans-de-en``, when installed): test BLEU of each variant against a
copy-the-source baseline (the German tokens as the "translation").

Writes the markdown table to stdout and ``benchmarks/results/quality_seq2seq.md``, and the additive model's
alignment of two dates to ``benchmarks/results/quality_seq2seq_attention.png`` (and ``..._zh.png``).

    python benchmarks/quality_seq2seq.py            # the full run (about an hour of 2-core CPU)
    python benchmarks/quality_seq2seq.py --quick    # a few CPU-minutes: 6,000 dates, no de-en
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch

from rnnlab.data.dates import generate_dates
from rnnlab.data.pairs import DE_EN_PATH, PairBatches, load_parallel
from rnnlab.data.text import CharTokenizer, WordTokenizer
from rnnlab.tasks.config import apply_overrides
from rnnlab.tasks.translate import (
    DataConfig,
    TranslateConfig,
    evaluate,
    load_translator,
    plot_attention,
    train,
)
from rnnlab.training.metrics import corpus_bleu, exact_match

RESULTS = Path(__file__).resolve().parent / "results"
VARIANTS = ("none", "additive", "dot", "general")
EXAMPLES = ("Monday, March 24, 2036", "二〇三六年三月二十四日")


def cpu_seconds() -> float:
    """User + system CPU time of this process (all threads), so the load of other processes does not count."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def train_variant(base: TranslateConfig, attention: str, run_dir: Path) -> tuple[dict, float, float, int]:
    overrides = [f"model.attention={attention}"]
    if attention == "none":
        overrides.append("model.input_feeding=false")  # nothing to feed without attention
    config = apply_overrides(base, overrides)
    wall, cpu = time.perf_counter(), cpu_seconds()
    result = train(config, run_dir, overwrite=True)
    return result.test_metrics, time.perf_counter() - wall, cpu_seconds() - cpu, len(result.history)


def digit_alignment(run_dir: Path, data: DataConfig) -> float:
    """Share of target digits whose teacher-forced attention argmax falls in the span they came from."""
    t = load_translator(run_dir)
    split = generate_dates(
        data.n_train, data.n_valid, data.n_test, data.split_seed, data.first_year, data.last_year
    )
    examples = split.test
    sources = t.source_ids([e.source for e in examples])
    targets = [t.tgt_vocab.encode(t.tgt_tokenizer(e.target)) for e in examples]
    hits = total = 0
    with torch.no_grad():
        for batch in PairBatches(sources, targets, 256, vocab=t.tgt_vocab):
            _, attention = t.model(batch.src, batch.src_lengths, batch.tgt_in)  # (B, S, T)
            best = attention.argmax(-1)  # (B, S) source token of the strongest weight per target step
            for row, i in enumerate(batch.index):
                ex = examples[i]
                # character position -> token position: the char tokenizer drops whitespace
                token_of = [sum(not c.isspace() for c in ex.source[:k]) for k in range(len(ex.source) + 1)]
                for p, span in enumerate(ex.spans):
                    if span is None:
                        continue
                    start, end = token_of[span[0]], token_of[span[1]]
                    hits += start <= int(best[row, p]) < end
                    total += 1
    return hits / total


def copy_baseline(corpus_test, tokenizer) -> tuple[float, float]:
    """Exact match and BLEU of copying the source tokens."""
    hyps = [tokenizer(s) for s, _ in corpus_test]
    refs = [tokenizer(t) for _, t in corpus_test]
    return exact_match(hyps, refs), corpus_bleu(hyps, refs)


def fmt_time(wall: float, cpu: float) -> str:
    return f"{wall / 60:.1f} min ({cpu / 60:.1f} CPU-min)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="6,000 training dates, batch 32, no de-en")
    parser.add_argument("--epochs", type=int, default=3, help="dates epochs (default 3)")
    parser.add_argument("--de-en-epochs", type=int, default=8, help="de-en epochs (default 8)")
    parser.add_argument("--skip-de-en", action="store_true", help="leave out de-en even when installed")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    parser.add_argument("--runs", type=Path, default=None, help="keep the run folders here (default: temp)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave benchmarks/results alone")
    args = parser.parse_args(argv)
    # One thread: these matrices are small, and on a shared 2-core machine a second OpenMP thread mostly waits
    # (we measured 10x slower steps with 2 threads while other processes ran).
    torch.set_num_threads(args.threads)
    epochs = args.epochs
    sizes = (
        ["data.n_train=6000", "data.n_valid=500", "data.n_test=1000", "data.batch_size=32"]
        if args.quick
        else []
    )
    base = apply_overrides(TranslateConfig(), [*sizes, f"train.epochs={epochs}", "train.progress=false"])
    runs = args.runs or Path(tempfile.mkdtemp(prefix="rnnlab-seq2seq-"))
    load_start = os.getloadavg()[0]

    def save(lines: list[str]) -> str:
        """Write the table so far (a crash late in a long run keeps the rows already measured)."""
        text = "\n".join(lines) + "\n"
        if not args.no_write:
            RESULTS.mkdir(parents=True, exist_ok=True)
            name = "quality_seq2seq_quick.md" if args.quick else "quality_seq2seq.md"
            (RESULTS / name).write_text(text, encoding="utf-8")
        return text

    lines = [
        "# Sequence to sequence quality (`benchmarks/quality_seq2seq.py`)",
        "",
        f"{dt.date.today()} · torch {torch.__version__} · {platform.machine()} · {os.cpu_count()} cores, "
        f"{args.threads} torch thread(s) · load average at start {load_start:.1f}",
        "",
        f"## dates: {base.data.n_train:,} training dates, {base.data.n_test:,} held-out test dates "
        f"(never seen in training)",
        "",
        f"GRU, bidirectional encoder, hidden {base.model.hidden_size}, "
        f"embeddings {base.model.embedding_dim}, character tokens, batch {base.data.batch_size}, "
        f"AdamW lr {base.train.lr} cosine, {epochs} epoch(s) "
        "(early stopping on validation exact match); input feeding with attention.",
        "",
        "| model | exact match, greedy | exact match, beam 5 | digit alignment | training time | epochs |",
        "|---|---|---|---|---|---|",
    ]
    corpus = load_parallel(base.data)
    copy_em, _ = copy_baseline(corpus.test, CharTokenizer())
    lines.append(f"| copy the source | {copy_em:.2%} | | | | |")
    for attention in VARIANTS:
        run_dir = runs / f"dates-{attention}"
        print(f"[dates] training attention={attention} ...", file=sys.stderr, flush=True)
        test, wall, cpu, n_epochs = train_variant(base, attention, run_dir)
        beam = evaluate(run_dir, beam=5)
        align = "n/a" if attention == "none" else f"{digit_alignment(run_dir, base.data):.2%}"
        lines.append(
            f"| {attention} | {test['exact_match']:.2%} | {beam['exact_match']:.2%} | {align} | "
            f"{fmt_time(wall, cpu)} | {n_epochs} |"
        )
        print(lines[-1], file=sys.stderr, flush=True)
        save(lines)
        if attention == "additive" and not args.no_write:
            RESULTS.mkdir(parents=True, exist_ok=True)
            plot_attention(run_dir, EXAMPLES[0], RESULTS / "quality_seq2seq_attention.png")
            plot_attention(run_dir, EXAMPLES[1], RESULTS / "quality_seq2seq_attention_zh.png")

    if not args.quick and not args.skip_de_en:
        lines += [
            "",
            "## de-en: German -> English sentence pairs (Debian `trans-de-en`, at most 10 words)",
            "",
        ]
        if not DE_EN_PATH.is_file():
            lines.append("Skipped: the package is not installed (`apt-get install trans-de-en`).")
        else:
            de_base = apply_overrides(
                base,
                [
                    "data.dataset=de-en",
                    "data.min_freq=2",
                    f"train.epochs={args.de_en_epochs}",
                    "train.patience=3",
                    "model.embedding_dim=128",
                    "model.hidden_size=256",
                    "model.attention_size=256",
                    "model.dropout=0.3",
                    "train.lr=2e-3",
                ],
            )
            de = load_parallel(de_base.data)
            _, copy_bleu = copy_baseline(de.test, WordTokenizer())
            lines += [
                f"{len(de.train):,} training / {len(de.valid):,} validation / {len(de.test):,} test pairs, "
                "split by German sentence; lower-cased word tokens (seen once in training: `<unk>`); "
                f"GRU, hidden {de_base.model.hidden_size}, dropout {de_base.model.dropout}, up to "
                f"{args.de_en_epochs} epochs with early stopping on validation BLEU.",
                "",
                "| model | test BLEU, greedy | test BLEU, beam 5 | training time | epochs |",
                "|---|---|---|---|---|",
                f"| copy the source | {copy_bleu:.2f} | | | |",
            ]
            for attention in VARIANTS:
                run_dir = runs / f"de-en-{attention}"
                print(f"[de-en] training attention={attention} ...", file=sys.stderr, flush=True)
                test, wall, cpu, n_epochs = train_variant(de_base, attention, run_dir)
                beam = evaluate(run_dir, beam=5, length_penalty=0.6)
                lines.append(
                    f"| {attention} | {test['bleu']:.2f} | {beam['bleu']:.2f} | {fmt_time(wall, cpu)} | "
                    f"{n_epochs} |"
                )
                print(lines[-1], file=sys.stderr, flush=True)
                save(lines)
        save(lines)

    lines += [
        "",
        f"Load average at the end: {os.getloadavg()[0]:.1f}. Training time is wall-clock (validation "
        "included); CPU-min counts this process's CPU time only, which stays meaningful when other processes "
        "share the machine. Digit alignment: share of target digits whose teacher-forced attention argmax "
        "falls on the source characters the digit came from.",
    ]
    print(save(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
