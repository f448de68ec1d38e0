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
    python benchmarks/quality_sentiment.py --behavioural RUN [RUN ...]   # trained runs on the behavioural set

Every finished run is appended to ``benchmarks/results/quality_sentiment.jsonl`` and skipped when the script
runs again with the same settings, so an interrupted benchmark continues where it stopped. The markdown
table (mean +- standard deviation over seeds) is printed and written to ``quality_sentiment.md``. Times are
the training's wall-clock and process CPU seconds (all threads); on a shared machine only CPU time compares.

``--behavioural RUN ...`` trains nothing: it scores sentiment run folders (``neg`` / ``pos`` labels; a
from-scratch run beside a pretrained one, say) on the behavioural test set of the run's language
(:mod:`rnnlab.data.behavioural`: negation, contrast, double negation, comparison), beside TF-IDF + LinearSVC
(C = 1) and TF-IDF + logistic regression (C = 4) fit on the run's own training split over the run
tokenizer's n-grams (1-3 characters, 1-2 words; sublinear TF), and prints a table: overall accuracy, the share
of minimal pairs with both items right, and accuracy per phenomenon. It is written to
``quality_sentiment_behavioural.md`` (``--behavioural-out``).
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import statistics
import tempfile
import time
from functools import partial
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


def _linear_predictors(train_part, tokenizer) -> dict:
    """TF-IDF over the run tokenizer's n-grams (sublinear TF), then LinearSVC (C = 1) or logistic regression
    (C = 4), fit on ``train_part``: reference name -> a function texts -> labels."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import LinearSVC

    from rnnlab.training.linear_baseline import NGRAM_MAX, token_ngrams

    ngram_max = NGRAM_MAX.get(tokenizer.name, 2)
    vectorizer = TfidfVectorizer(
        analyzer=lambda text: token_ngrams(tokenizer(text), ngram_max), sublinear_tf=True
    )
    features = vectorizer.fit_transform(train_part.texts)
    classifiers = {"tfidf+svc": LinearSVC(C=1.0), "tfidf+lr-c4": LogisticRegression(C=4.0, max_iter=3000)}
    predictors = {}
    for name, classifier in classifiers.items():
        classifier.fit(features, train_part.labels)
        predictors[name] = partial(_predict_linear, vectorizer, classifier)
    return predictors


def _predict_linear(vectorizer, classifier, texts: list[str]) -> list[str]:
    return [str(label) for label in classifier.predict(vectorizer.transform(texts))]


def _predict_run(predictor, texts: list[str]) -> list[str]:
    return [result["label"] for result in predictor.predict(texts)]


def behavioural(run_dirs: list[Path]) -> list[dict]:
    """Each run and the linear references of its training split, scored on the behavioural set of its
    language: one row each (references once per distinct data section)."""
    from rnnlab.data.behavioural import score_behavioural
    from rnnlab.data.pretrain import language_of
    from rnnlab.inference.predictor import Predictor
    from rnnlab.tasks import runs, sentiment
    from rnnlab.tasks.config import config_to_dict

    rows, seen = [], set()
    for run_dir in run_dirs:
        config = sentiment.load_run_config(run_dir)
        predictor = Predictor.from_checkpoint(run_dir)
        if sorted(predictor.label_names) != ["neg", "pos"]:
            raise SystemExit(
                f"--behavioural: expected a run with labels ['neg', 'pos'], received {predictor.label_names} "
                f"({run_dir})"
            )
        splits = sentiment.load_splits(config.data)
        runs.check_split(run_dir, "train", splits.train.texts, config.data.dataset)
        lang = language_of(splits.train.texts[:2000])
        data = f"{Path(config.data.dataset).name} (split seed {config.data.split_seed})"
        key = json.dumps([config_to_dict(config.data), predictor.tokenizer.to_dict()], sort_keys=True)
        models = {}
        if key not in seen:  # runs of one split share their references
            seen.add(key)
            models.update(_linear_predictors(splits.train, predictor.tokenizer))
        init = config.model.init  # a charlm run folder, or two (FWD,BWD): named by their last parts
        init = "init " + ",".join(Path(p).name for p in init.split(",")) if init else "from scratch"
        models[f"run: {run_dir.name} ({init})"] = partial(_predict_run, predictor)
        for name, predict in models.items():
            score = score_behavioural(predict, lang)
            score.pop("predictions")
            rows.append({"model": name, "data": data, "lang": lang, **score})
    return rows


def behavioural_table(rows: list[dict]) -> str:
    """Markdown: one line per model and data, overall then per phenomenon."""
    from rnnlab.data.behavioural import PHENOMENA

    head = ["model", "data", "lang", "n", "accuracy", "pairs both right", *PHENOMENA]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [row["model"], row["data"], row["lang"], str(row["n"])]
        cells += [f"{row['accuracy']:.3f}", f"{row['pairs_both_right']:.3f}"]
        cells += [f"{row['per_phenomenon'][p]:.3f}" if p in row["per_phenomenon"] else "-" for p in PHENOMENA]
        lines.append("| " + " | ".join(cells) + " |")
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
    parser.add_argument(
        "--behavioural",
        nargs="+",
        type=Path,
        metavar="RUN",
        help="score these sentiment runs and the linear references on the behavioural set; trains nothing",
    )
    parser.add_argument(
        "--behavioural-out", type=Path, default=RESULTS / "quality_sentiment_behavioural.md", metavar="FILE"
    )
    parser.add_argument("overrides", nargs="*", help="extra config overrides for every recurrent model")
    args = parser.parse_args(argv)
    if args.behavioural:
        return _run_behavioural(args)
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


def _run_behavioural(args) -> str:
    missing = [str(run) for run in args.behavioural if not (run / "config.json").is_file()]
    if missing:
        raise SystemExit(
            f"--behavioural: expected sentiment run folders (with config.json), received {missing}"
        )
    torch.set_num_threads(args.threads)
    rows = behavioural(args.behavioural)
    for row in rows:
        print(json.dumps(row), flush=True)
    markdown = behavioural_table(rows)
    args.behavioural_out.parent.mkdir(parents=True, exist_ok=True)
    args.behavioural_out.write_text(markdown + "\n", encoding="utf-8")
    print(markdown)
    return markdown


if __name__ == "__main__":
    main()
