"""Sentiment classification of reviews, end to end: config -> data -> model -> trainer -> evaluation.

The motivating example of the second seed note: tell positive from negative shopping reviews. In Python::

    from rnnlab.tasks import sentiment
    config = sentiment.SentimentConfig()                 # BiLSTM + attention pooling on reviews-zh
    result = sentiment.train(config, "runs/sentiment")   # writes the run folder, returns test metrics
    sentiment.evaluate("runs/sentiment")                 # accuracy, macro-F1, confusion matrix
    Predictor.from_checkpoint("runs/sentiment").predict(["物流很快，东西很好"])

A run folder holds ``config.json`` (the resolved config), ``run.json`` (task, data split with fingerprints),
``metrics.csv`` (one row per epoch), the checkpoints ``best/`` and ``last/`` and, for the bundled data sets,
``test_metrics.json``. The ``run_*`` functions at the end are the command line's hooks (see rnnlab.tasks).
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from rnnlab.data import (
    DATASETS,
    DataError,
    Splits,
    TextBatches,
    Vocab,
    load_data,
    make_splits,
    make_tokenizer,
)
from rnnlab.data.batching import fingerprint
from rnnlab.data.sources import read_labeled_file
from rnnlab.inference.predictor import Predictor, encode_texts
from rnnlab.models.classifier import ClassifierConfig, RecurrentClassifier
from rnnlab.tasks.config import ConfigError, config_from_dict, config_to_dict, validate
from rnnlab.tasks.runs import RUN_FILES, check_run_dir, train_from_args
from rnnlab.training import Trainer, TrainerConfig, accuracy, atomic_write_text, confusion_matrix, macro_f1

__all__ = [
    "DataConfig",
    "SentimentConfig",
    "TrainResult",
    "train",
    "evaluate",
    "load_run_config",
    "RUN_FILES",
]

TASK = "sentiment"


@dataclass
class DataConfig:
    """Where the texts come from and how they become batches."""

    dataset: str = "reviews-zh"  # a bundled data set (reviews-zh, movies-en) or a CSV / TSV / JSONL path
    valid_path: str | None = None  # a separate validation file; None: hold out valid_fraction of the data
    text_column: str = "text"  # column (CSV/TSV) or key (JSONL) holding the text, for files
    label_column: str = "label"  # column or key holding the label (any strings), for files
    tokenizer: str = field(default="auto", metadata={"choices": ("auto", "char", "word")})  # auto: by script
    lowercase: bool = True  # lowercase Latin letters before tokenizing
    min_freq: int = field(default=2, metadata={"min": 1})  # a token needs this many training occurrences
    max_vocab: int = field(default=30000, metadata={"min": 3})  # vocabulary cap, <pad> and <unk> included
    max_len: int = field(default=256, metadata={"min": 1, "max": 100_000})  # tokens kept per text (truncate)
    batch_size: int = field(default=64, metadata={"min": 1, "max": 8192})  # training batch size
    eval_batch_size: int = field(default=256, metadata={"min": 1, "max": 8192})  # evaluation batch size
    valid_fraction: float = field(default=0.1, metadata={"min": 0.01, "max": 0.5})  # held out for validation
    test_fraction: float = field(default=0.1, metadata={"min": 0.01, "max": 0.5})  # held out (bundled sets)
    split_seed: int = field(default=0, metadata={"min": 0})  # seed of the stratified split


def _default_train() -> TrainerConfig:
    # Tuned on reviews-zh (see benchmarks/quality_sentiment.py): 6 epochs of AdamW at 3e-3 with a cosine decay
    # fit the main job's 10 minutes on 2 CPU cores; validation accuracy peaks around epoch 5, then overfits.
    return TrainerConfig(
        epochs=6, lr=3e-3, weight_decay=0.01, grad_clip=1.0, lr_schedule="cosine", patience=2
    )


@dataclass
class SentimentConfig:
    """The whole task: data, model and training sections (``data.max_len=128``, ``model.cell=gru``, ...)."""

    data: DataConfig = field(default_factory=DataConfig)  # texts, tokenizer, vocabulary, batches
    model: ClassifierConfig = field(default_factory=ClassifierConfig)  # embedding -> encoder -> pooling
    train: TrainerConfig = field(default_factory=_default_train)  # optimizer, schedule, early stopping


@dataclass
class TrainResult:
    """What :func:`train` returns."""

    run_dir: Path  # the run folder
    best_epoch: int  # 1-based epoch whose weights are in best/
    valid_metrics: dict  # the best epoch's validation row
    test_metrics: dict | None  # on the held-out test split (bundled data sets), else None
    history: list[dict]  # one row per epoch, as in metrics.csv
    stopped_early: bool  # patience ran out before train.epochs


def load_run_config(run_dir: str | Path) -> SentimentConfig:
    """The resolved config saved in a run folder (``config.json``)."""
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise DataError(f"{run_dir}: not a sentiment run folder (no config.json)")
    try:
        return config_from_dict(SentimentConfig, json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, TypeError) as err:  # bad JSON, or keys this version does not know
        raise ConfigError(f"{path}: not a valid sentiment config ({err})") from None


def load_splits(cfg: DataConfig) -> Splits:
    """Load the data named in ``cfg`` (de-duplicated by the loaders) and split it as ``cfg`` says."""
    data = load_data(cfg.dataset, cfg.text_column, cfg.label_column)
    if cfg.dataset in DATASETS:
        return make_splits(data, cfg.valid_fraction, cfg.test_fraction, cfg.split_seed)
    valid = (
        None
        if cfg.valid_path is None
        else read_labeled_file(cfg.valid_path, cfg.text_column, cfg.label_column)
    )
    return make_splits(data, cfg.valid_fraction, 0.0, cfg.split_seed, valid)


def _batches(part, names: list[str], tokenizer, vocab: Vocab, cfg: DataConfig, train: bool, seed: int = 0):
    ids, _ = encode_texts(part.texts, tokenizer, vocab, cfg.max_len)
    labels = [names.index(label) for label in part.labels]
    size = cfg.batch_size if train else cfg.eval_batch_size
    return TextBatches(ids, labels, size, shuffle=train, seed=seed, pad_id=vocab.pad_id)


def _step(model: RecurrentClassifier, batch) -> torch.Tensor:
    logits, _ = model(batch.ids.to(model.embedding.weight.device), batch.lengths)
    return F.cross_entropy(logits, batch.labels.to(logits.device))


def classify_metrics(model: RecurrentClassifier, batches, label_names: list[str]) -> dict[str, float]:
    """Loss, accuracy, macro-F1 and the confusion matrix (as ``cm_<true>_<pred>`` counts) over ``batches``."""
    logits, targets = [], []
    for batch in batches:
        out, _ = model(batch.ids.to(model.embedding.weight.device), batch.lengths)
        logits.append(out.float().cpu())
        targets.append(batch.labels)
    all_logits, target = torch.cat(logits), torch.cat(targets)  # (N, C), (N,)
    pred = all_logits.argmax(-1)  # (N,)
    metrics = {
        "valid_loss": F.cross_entropy(all_logits, target).item(),
        "accuracy": accuracy(pred, target),
        "macro_f1": macro_f1(pred, target, len(label_names)),
    }
    cm = confusion_matrix(pred, target, len(label_names))  # (C, C): rows true, columns predicted
    for i, true in enumerate(label_names):
        for j, guess in enumerate(label_names):
            metrics[f"cm_{true}_{guess}"] = float(cm[i, j])
    return metrics


def train(
    config: SentimentConfig | None = None,
    run_dir: str | Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
) -> TrainResult:
    """Train a review classifier into ``run_dir``; returns validation and (bundled data) test metrics.

    Args:
        config: the task config (validated here: ranges and choices raise :class:`ConfigError`); None for
            the defaults.
        run_dir: the run folder to write; None for a new ``runs/sentiment-<date>-<time>``.
        resume: continue the interrupted run in ``run_dir``; its data and model config must be unchanged,
            and the result equals that of an uninterrupted run.
        overwrite: replace an earlier run in ``run_dir`` (otherwise that is an error).

    Every check (config, run folder, data) runs before the first file is written, so a failing call leaves an
    earlier run untouched.
    """
    config = validate(copy.deepcopy(config or SentimentConfig()))
    run_dir = Path(run_dir or Path("runs") / time.strftime("sentiment-%Y%m%d-%H%M%S"))
    check_run_dir(run_dir, resume, overwrite)
    cfg = config.data
    splits = load_splits(cfg)
    names = sorted(set(splits.train.labels))
    tokenizer = make_tokenizer(cfg.tokenizer, splits.train.texts, cfg.lowercase)
    vocab = Vocab.build((tokenizer(t) for t in splits.train.texts), cfg.min_freq, cfg.max_vocab)
    config.model.vocab_size, config.model.num_classes, config.model.padding_idx = len(vocab), len(names), 0
    if resume:
        saved = load_run_config(run_dir)
        for section in ("data", "model"):
            if getattr(saved, section) != getattr(config, section):
                raise ConfigError(f"--resume: the {section} config differs from {run_dir / 'config.json'}")
    seed = config.train.seed
    train_batches = _batches(splits.train, names, tokenizer, vocab, cfg, train=True, seed=seed)
    valid_batches = _batches(splits.valid, names, tokenizer, vocab, cfg, train=False)

    if overwrite and not resume:
        for name in RUN_FILES:
            target = run_dir / name
            shutil.rmtree(target) if target.is_dir() else target.unlink(missing_ok=True)
    resolved = config_to_dict(config)
    atomic_write_text(run_dir / "config.json", json.dumps(resolved, indent=2, ensure_ascii=False) + "\n")
    run_info = {"task": TASK, "data": splits.info, "labels": names, "vocab_size": len(vocab)}
    atomic_write_text(run_dir / "run.json", json.dumps(run_info, indent=2, ensure_ascii=False) + "\n")

    torch.manual_seed(seed)  # the initial weights depend on the seed only
    model = RecurrentClassifier(config.model)
    meta = {"task": TASK, "config": resolved, "labels": names, "tokenizer": tokenizer.to_dict()}
    meta["vocab"] = vocab.to_dict()
    fit = Trainer(config.train, run_dir).fit(
        model,
        train_batches,
        valid_batches,
        _step,
        lambda m, batches: classify_metrics(m, batches, names),
        meta=meta,
        resume=resume,
        restore_best=True,
    )
    test_metrics = None
    if splits.test is not None:
        model.eval()
        with torch.no_grad():
            test_metrics = classify_metrics(
                model, _batches(splits.test, names, tokenizer, vocab, cfg, False), names
            )
        test_metrics["n"] = len(splits.test)
        atomic_write_text(run_dir / "test_metrics.json", json.dumps(test_metrics, indent=2) + "\n")
    return TrainResult(
        run_dir, fit.best_epoch, fit.best_metrics, test_metrics, fit.history, fit.stopped_early
    )


def _evaluation_data(run_dir: Path, cfg: DataConfig, data: str | None, text_column, label_column):
    """The examples ``evaluate`` scores, and a description of them."""
    if data is None or data == cfg.dataset:
        splits = load_splits(cfg)
        part, name = (splits.test, "test") if splits.test is not None else (splits.valid, "valid")
        recorded = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))["data"][name]["fingerprint"]
        if recorded != fingerprint(part.texts):
            raise DataError(
                f"{cfg.dataset}: the {name} split differs from the one recorded in {run_dir}/run.json"
            )
        return part, f"{cfg.dataset} ({name} split, {len(part)} examples)"
    if data in DATASETS:
        part = load_data(data)
    else:
        part = read_labeled_file(data, text_column or cfg.text_column, label_column or cfg.label_column)
    return part, f"{data} (all {len(part)} examples)"


def evaluate(
    run_dir: str | Path,
    data: str | None = None,
    text_column: str | None = None,
    label_column: str | None = None,
    batch_size: int | None = None,
) -> dict:
    """Score a trained run: accuracy, macro-F1 and the confusion matrix.

    Args:
        run_dir: a run folder written by :func:`train` (its ``best/`` checkpoint is used).
        data: None or the run's own data: its test split (bundled data) or validation split (a file);
            another bundled name or a file path: all of its examples.
        text_column, label_column: column names for a file (default: those the run was trained with).
        batch_size: texts per forward pass (default: the run's ``data.eval_batch_size``).

    Returns:
        ``accuracy``, ``macro_f1``, ``confusion_matrix`` (rows true, columns predicted), ``labels``, ``n``,
        ``data`` (what was scored).
    """
    run_dir = Path(run_dir)
    predictor = Predictor.from_checkpoint(run_dir)
    config = load_run_config(run_dir)
    part, description = _evaluation_data(run_dir, config.data, data, text_column, label_column)
    names = predictor.label_names
    unseen = sorted(set(part.labels) - set(names))
    if unseen:
        raise DataError(f"{data}: labels {unseen} were never seen in training; the model knows {names}")
    probs = predictor.probabilities(part.texts, batch_size or config.data.eval_batch_size)  # (N, C)
    target = torch.tensor([names.index(label) for label in part.labels])  # (N,)
    pred = probs.argmax(-1)  # (N,)
    return {
        "accuracy": accuracy(pred, target),
        "macro_f1": macro_f1(pred, target, len(names)),
        "confusion_matrix": confusion_matrix(pred, target, len(names)).tolist(),
        "labels": names,
        "n": len(part),
        "data": description,
    }


# -- command-line hooks (see rnnlab.tasks): they call the functions above and print what they return --------


def add_train_arguments(parser) -> None:
    """Options of ``rnnlab train sentiment``; each is a shortcut for a ``data.*`` override."""
    parser.add_argument("--data", help="reviews-zh (default), movies-en, or a CSV / TSV / JSONL file")
    parser.add_argument("--valid", help="a validation file (default: hold out data.valid_fraction)")
    parser.add_argument("--text-column", help="text column of a file (default: text)")
    parser.add_argument("--label-column", help="label column of a file (default: label)")
    defaults = config_to_dict(SentimentConfig())
    keys = [
        f"  {section}.{key}={value}" for section, fields in defaults.items() for key, value in fields.items()
    ]
    parser.epilog = "config keys for KEY=VALUE, with their defaults:\n" + "\n".join(keys)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter


def run_train(args) -> int:
    shortcuts = {"data.dataset": args.data, "data.valid_path": args.valid}
    shortcuts.update({"data.text_column": args.text_column, "data.label_column": args.label_column})
    result = train_from_args(args, SentimentConfig(), load_run_config, train, shortcuts)
    best = result.valid_metrics
    print(f"run: {result.run_dir}  best epoch: {result.best_epoch} of {len(result.history)}")
    print(f"valid: accuracy {best['accuracy']:.4f}  macro-F1 {best['macro_f1']:.4f}")
    if result.test_metrics is not None:
        t = result.test_metrics
        print(f"test:  accuracy {t['accuracy']:.4f}  macro-F1 {t['macro_f1']:.4f}  ({t['n']} examples)")
    return 0


def format_evaluation(result: dict) -> str:
    """The evaluation as text: accuracy, macro-F1 and the confusion matrix (rows true, columns predicted)."""
    labels = result["labels"]
    w = max(8, *(len(x) + 2 for x in labels))
    lines = [f"data:      {result['data']}", f"accuracy:  {result['accuracy']:.4f}"]
    lines += [
        f"macro-F1:  {result['macro_f1']:.4f}",
        "confusion matrix (rows: true label, columns: predicted):",
    ]
    lines.append(" " * w + "".join(f"{x:>{w}}" for x in labels))
    for label, row in zip(labels, result["confusion_matrix"], strict=True):
        lines.append(f"{label:<{w}}" + "".join(f"{n:>{w}}" for n in row))
    return "\n".join(lines)


def run_evaluate(args) -> int:
    result = evaluate(args.run_dir, args.data, args.text_column, args.label_column)
    print(json.dumps(result, ensure_ascii=False) if args.json else format_evaluation(result))
    return 0


def _predict(run_dir: Path, texts: list[str]) -> tuple[Predictor, list[dict]]:
    predictor = Predictor.from_checkpoint(run_dir)
    results = predictor.predict(texts)
    for i, r in enumerate(results, start=1):
        if r["truncated"]:
            n = len(r["tokens"])
            print(f"note: text {i} has {r['num_tokens']} tokens; the model read the first {n} (data.max_len)",
                  file=sys.stderr)  # fmt: skip
    return predictor, results


def run_predict(args) -> int:
    texts = args.texts or [line for line in sys.stdin.read().splitlines() if line.strip()]
    if not texts:
        raise DataError("predict: no texts; pass them as arguments or on stdin, one per line")
    for r in _predict(args.run_dir, texts)[1]:
        if args.json:
            keys = ["text", "label", "probabilities", "tokens", "num_tokens", "truncated"]
            keys += ["attention"] if r["attention"] is not None else []
            print(json.dumps({k: r[k] for k in keys}, ensure_ascii=False))
        else:
            probabilities = " ".join(f"{label}={p:.3f}" for label, p in r["probabilities"].items())
            print(f"{r['label']}\t{probabilities}\t{r['text']}")
    return 0


def run_plot_attention(args) -> int:
    from rnnlab.viz.plots import plot_attention

    predictor, (r,) = _predict(args.run_dir, [args.text])
    if r["attention"] is None:
        raise ConfigError(
            f"{args.run_dir}: model.pooling={predictor.model.config.pooling}; no attention to plot"
        )
    title = f"{r['label']} ({r['probabilities'][r['label']]:.2f})"
    print(plot_attention(r["attention"], r["tokens"], path=args.output, title=title))
    return 0
