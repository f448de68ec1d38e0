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
import csv
import json
import random
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
SMALL = "movies-en-3k"  # a seeded 3,000-row sample of movies-en, trained as a user's file (no overrides)
SMALL_ROWS = 3000
REFERENCE_NGRAMS = {"reviews-zh": ("char", (1, 2)), "movies-en": ("word", (1, 2))}
# The strongest linear models found (sentiment_tuning.md): sublinear TF-IDF over character 1-3-grams (Chinese)
# or word 1-2-grams (English), then LinearSVC (C = 1) or logistic regression (C = 4). Fixed settings, not
# tuned on the test split.
STRONG_NGRAMS = {"reviews-zh": ("char", (1, 3)), "movies-en": ("word", (1, 2))}
REFERENCES = ("tfidf+lr", "tfidf+svc", "tfidf+lr-c4")


def reference(dataset: str, seed: int, model: str = "tfidf+lr", data_file: Path | None = None) -> dict:
    """A TF-IDF linear model on the models' split: ``tfidf+lr`` is the earlier reference (1-2-grams,
    default LR); ``tfidf+svc`` / ``tfidf+lr-c4`` the strongest ones (:data:`STRONG_NGRAMS`, sublinear TF).

    With ``data_file`` the split is the one ``rnnlab train sentiment --data FILE`` makes (90/10, scored on
    the 10 % validation part)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.svm import LinearSVC

    if data_file is None:
        splits = make_splits(load_data(dataset), 0.1, 0.1, seed)
        test = splits.test
    else:
        splits = make_splits(load_data(str(data_file)), 0.1, 0.0, seed)
        test = splits.valid
    start, cpu_start = time.perf_counter(), time.process_time()
    if model == "tfidf+lr":
        analyzer, ngrams = REFERENCE_NGRAMS[dataset]
        vectorizer = TfidfVectorizer(analyzer=analyzer, ngram_range=ngrams)
        classifier = LogisticRegression(max_iter=2000)
    else:
        analyzer, ngrams = STRONG_NGRAMS[dataset]
        vectorizer = TfidfVectorizer(analyzer=analyzer, ngram_range=ngrams, sublinear_tf=True)
        classifier = LinearSVC(C=1.0) if model == "tfidf+svc" else LogisticRegression(C=4.0, max_iter=3000)
    features = vectorizer.fit_transform(splits.train.texts)
    classifier.fit(features, splits.train.labels)
    predicted = classifier.predict(vectorizer.transform(test.texts))
    return {
        "accuracy": accuracy_score(test.labels, predicted),
        "macro_f1": f1_score(test.labels, predicted, average="macro"),
        "seconds": time.perf_counter() - start,
        "cpu_seconds": time.process_time() - cpu_start,
    }


def small_sample(seed: int, folder: Path, rows: int = SMALL_ROWS) -> Path:
    """A seeded ``rows``-row sample of movies-en as a CSV, the kind of file a user brings."""
    data = load_data("movies-en")
    keep = sorted(random.Random(seed).sample(range(len(data.texts)), rows))
    path = folder / f"movies-en-{rows}-{seed}.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows([data.texts[i], data.labels[i]] for i in keep)
    return path


def recurrent(
    dataset: str, model: str, pooling: str, seed: int, extra: list[str], data_file: Path | None = None
) -> dict:
    """Train one configuration with the sentiment task and return its test metrics and training time.

    ``model = "default"``: the task's defaults with no override but the seeds (the main job's model); with
    ``data_file``, trained as ``rnnlab train sentiment --data FILE`` and scored on its validation split."""
    overrides = [
        f"data.dataset={data_file or dataset}",
        f"data.split_seed={seed}",
        f"train.seed={seed}",
        "train.progress=false",
        "data.baseline=false",  # the references are their own rows
    ]
    if model != "default":
        overrides += [*DATASET_OVERRIDES[dataset], *MODELS[model], f"model.pooling={pooling}"]
    config = apply_overrides(SentimentConfig(), [*overrides, *extra])
    with tempfile.TemporaryDirectory() as tmp:
        start, cpu_start = time.perf_counter(), time.process_time()
        result = train(config, Path(tmp) / "run")
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    test = result.test_metrics if result.test_metrics is not None else result.valid_metrics
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
    models = [*REFERENCES, "default", *MODELS]
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
        "--datasets", nargs="+", default=list(DATASET_OVERRIDES), choices=[*DATASET_OVERRIDES, SMALL]
    )
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--poolings", nargs="+", default=list(POOLINGS), choices=list(POOLINGS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument(
        "--quick", action="store_true", help="seed 0, BiLSTM + attention and the reference only"
    )
    parser.add_argument(
        "--final",
        action="store_true",
        help="the issue's comparison: the default model (no overrides) against every reference",
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
    references = REFERENCES if args.final else ("tfidf+lr",)
    jobs = [(d, r, "-", s) for d in args.datasets for s in args.seeds for r in references]
    jobs = [] if args.no_reference else jobs
    if args.final:
        jobs += [(d, "default", "-", s) for d in args.datasets for s in args.seeds]
    else:
        jobs += [
            (d, m, p, s)
            for d in args.datasets
            if d != SMALL
            for s in args.seeds
            for m in args.models
            for p in args.poolings
        ]
    scratch = tempfile.TemporaryDirectory()
    for dataset, model, pooling, seed in jobs:
        row = {"dataset": dataset, "model": model, "pooling": pooling, "seed": seed}
        row["overrides"] = [] if model in REFERENCES else list(args.overrides)
        if _key(row) in done:
            continue
        data_file = small_sample(seed, Path(scratch.name)) if dataset == SMALL else None
        name = "movies-en" if dataset == SMALL else dataset
        if model in REFERENCES:
            row.update(reference(name, seed, model, data_file))
        else:
            row.update(recurrent(name, model, pooling, seed, args.overrides, data_file))
        print(json.dumps(row), flush=True)
        with args.results.open("a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        rows.append(row)
        done.add(_key(row))
    scratch.cleanup()
    markdown = table(_load(args.results))  # everything measured so far, by this run or another one
    (RESULTS / "quality_sentiment.md").write_text(markdown + "\n", encoding="utf-8")
    print(markdown)
    return markdown


if __name__ == "__main__":
    main()
