"""Quality of the sentiment task: recurrent models against a TF-IDF + logistic-regression reference.

For each data set (``reviews-zh``, ``movies-en``) and seed, the data is de-duplicated and split 80/10/10
(stratified, ``data.split_seed = seed``); every model trains on the same 80 % (``train.seed = seed``), picks
its best epoch on the 10 % validation part and is scored once on the 10 % test part. The reference
(scikit-learn: TF-IDF over character 1-2-grams for Chinese, word 1-2-grams for English, then logistic
regression) fits the same 80 % and is scored on the same test part. No pretrained embeddings anywhere.

Models: LSTM, GRU (one direction) and BiLSTM, each with last / mean / attention pooling; everything else is
the task's defaults (see ``rnnlab.tasks.sentiment``) plus the per-data-set overrides in ``DATASET_OVERRIDES``.

    python benchmarks/quality_sentiment.py                      # the whole table: hours on 2 CPU cores
    python benchmarks/quality_sentiment.py --quick              # seed 0: BiLSTM + attention, the reference
    python benchmarks/quality_sentiment.py --datasets movies-en --models gru --poolings mean --seeds 0 1 2

Every finished run is appended to ``benchmarks/results/quality_sentiment.jsonl`` and skipped when the script
runs again with the same settings, so an interrupted benchmark continues where it stopped. The markdown
table (mean +- standard deviation over seeds) is printed and written to ``quality_sentiment.md``. Times are
the training's wall-clock and process CPU seconds (all threads); on a shared machine only CPU time compares.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from rnnlab.data import load_data, make_splits
from rnnlab.tasks.config import apply_overrides
from rnnlab.tasks.sentiment import SentimentConfig, train

RESULTS = Path(__file__).resolve().parent / "results"
MODELS = {  # name -> overrides
    "lstm": ["model.cell=lstm", "model.bidirectional=false"],
    "gru": ["model.cell=gru", "model.bidirectional=false"],
    "bilstm": ["model.cell=lstm", "model.bidirectional=true"],
}
POOLINGS = ("last", "mean", "attention")
# Short English sentences (~20 words): words instead of characters (automatic), shorter cap on length.
DATASET_OVERRIDES = {"reviews-zh": [], "movies-en": ["data.max_len=64"]}
REFERENCE_NGRAMS = {"reviews-zh": ("char", (1, 2)), "movies-en": ("word", (1, 2))}


def reference(dataset: str, seed: int) -> dict:
    """TF-IDF n-grams + logistic regression on the same split as the models."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score

    splits = make_splits(load_data(dataset), 0.1, 0.1, seed)
    start, cpu_start = time.perf_counter(), time.process_time()
    analyzer, ngrams = REFERENCE_NGRAMS[dataset]
    vectorizer = TfidfVectorizer(analyzer=analyzer, ngram_range=ngrams)
    features = vectorizer.fit_transform(splits.train.texts)
    classifier = LogisticRegression(max_iter=2000).fit(features, splits.train.labels)
    predicted = classifier.predict(vectorizer.transform(splits.test.texts))
    return {
        "accuracy": accuracy_score(splits.test.labels, predicted),
        "macro_f1": f1_score(splits.test.labels, predicted, average="macro"),
        "seconds": time.perf_counter() - start,
        "cpu_seconds": time.process_time() - cpu_start,
    }


def recurrent(dataset: str, model: str, pooling: str, seed: int, extra: list[str]) -> dict:
    """Train one configuration with the sentiment task and return its test metrics and training time."""
    overrides = [
        f"data.dataset={dataset}",
        f"data.split_seed={seed}",
        f"train.seed={seed}",
        "train.progress=false",
    ]
    overrides += [*DATASET_OVERRIDES[dataset], *MODELS[model], f"model.pooling={pooling}", *extra]
    config = apply_overrides(SentimentConfig(), overrides)
    with tempfile.TemporaryDirectory() as tmp:
        start, cpu_start = time.perf_counter(), time.process_time()
        result = train(config, Path(tmp) / "run")
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    test = result.test_metrics
    row = {"accuracy": test["accuracy"], "macro_f1": test["macro_f1"], "seconds": seconds}
    return row | {"cpu_seconds": cpu_seconds, "best_epoch": result.best_epoch, "epochs": len(result.history)}


def _key(row: dict) -> tuple:
    return (row["dataset"], row["model"], row["pooling"], row["seed"], tuple(row["overrides"]))


def _load(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def table(rows: list[dict]) -> str:
    """Markdown: one line per (data set, model, pooling), mean +- std over seeds."""

    def stat(values: list[float], digits: int) -> str:
        mean = statistics.fmean(values)
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        return f"{mean:.{digits}f} ± {spread:.{digits}f}"

    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        group = (row["dataset"], row["model"], row["pooling"], tuple(row["overrides"]))
        groups.setdefault(group, []).append(row)
    lines = [
        "| data set | model | pooling | test accuracy | test macro-F1 | wall (s) | CPU (s) | seeds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    models = ["tfidf+lr", *MODELS]
    poolings = ["-", *POOLINGS]

    def position(item: tuple) -> tuple:
        dataset, model, pooling, extra = item[0]
        return dataset, models.index(model), poolings.index(pooling), extra

    for (dataset, model, pooling, extra), group in sorted(groups.items(), key=position):
        name = model + (f" ({' '.join(extra)})" if extra else "")
        accuracy = stat([r["accuracy"] for r in group], 4)
        f1 = stat([r["macro_f1"] for r in group], 4)
        seconds = stat([r["seconds"] for r in group], 0)
        cpu = [r["cpu_seconds"] for r in group if "cpu_seconds" in r]
        cpu_text = stat(cpu, 0) if cpu else "-"
        lines.append(
            f"| {dataset} | {name} | {pooling} | {accuracy} | {f1} | {seconds} | {cpu_text} | {len(group)} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--datasets", nargs="+", default=list(DATASET_OVERRIDES), choices=list(DATASET_OVERRIDES)
    )
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--poolings", nargs="+", default=list(POOLINGS), choices=list(POOLINGS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument(
        "--quick", action="store_true", help="seed 0, BiLSTM + attention and the reference only"
    )
    parser.add_argument("--no-reference", action="store_true", help="skip the TF-IDF + LR rows")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--results", type=Path, default=RESULTS / "quality_sentiment.jsonl")
    parser.add_argument("overrides", nargs="*", help="extra config overrides for every recurrent model")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.models, args.poolings = [0], ["bilstm"], ["attention"]
    torch.set_num_threads(args.threads)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    rows = _load(args.results)
    done = {_key(r) for r in rows}
    jobs = [(d, "tfidf+lr", "-", s) for d in args.datasets for s in args.seeds if not args.no_reference]
    jobs += [
        (d, m, p, s) for d in args.datasets for s in args.seeds for m in args.models for p in args.poolings
    ]
    for dataset, model, pooling, seed in jobs:
        row = {"dataset": dataset, "model": model, "pooling": pooling, "seed": seed}
        row["overrides"] = [] if model == "tfidf+lr" else list(args.overrides)
        if _key(row) in done:
            continue
        if model == "tfidf+lr":
            row.update(reference(dataset, seed))
        else:
            row.update(recurrent(dataset, model, pooling, seed, args.overrides))
        print(json.dumps(row), flush=True)
        with args.results.open("a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        rows.append(row)
        done.add(_key(row))
    markdown = table(_load(args.results))  # everything measured so far, by this run or another one
    (RESULTS / "quality_sentiment.md").write_text(markdown + "\n", encoding="utf-8")
    print(markdown)
    return markdown


if __name__ == "__main__":
    main()
