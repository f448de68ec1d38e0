"""Sequence to sequence with attention: dates, German -> English or your own pairs, end to end.

config -> pairs -> vocabularies -> Seq2Seq -> Trainer -> run folder; then evaluate, predict and plot the
alignment from the run folder alone. Python and the command line take the same steps::

    result = train(TranslateConfig(), "runs/dates")     # rnnlab train translate --out runs/dates
    evaluate("runs/dates")                              # rnnlab evaluate runs/dates
    predict("runs/dates", ["Monday, March 24, 2036"])   # rnnlab predict runs/dates "Monday, March 24, 2036"
    plot_attention("runs/dates", "24/03/2036", "a.png") # rnnlab plot attention runs/dates 24/03/2036 -o a.png

A run folder holds ``config.json`` (the resolved config), ``run.json`` (``"task": "translate"``, the data and
fingerprints of its splits), ``metrics.csv``, the checkpoints ``best/`` and ``last/`` and
``test_metrics.json``. Each checkpoint is self-describing: its meta carries the config, both vocabularies and
both tokenizers, so :func:`load_translator` rebuilds the model without the data. The data (``dates``,
``de-en`` or a TSV file) is described in :mod:`rnnlab.data.pairs`. Metrics: exact match and token accuracy
(teacher-forced, non-padding) over normalised tokens, and corpus BLEU (sacrebleu) on the same tokens:
characters for dates, lower-cased words for de-en. The ``run_*`` functions at the end are the command line's
hooks (see :mod:`rnnlab.tasks`).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from rnnlab.data.pairs import (
    DE_EN_PATH,
    PairBatch,
    PairBatches,
    PairVocab,
    ParallelDataConfig,
    default_tokenizers,
    load_parallel,
    read_pairs_file,
)
from rnnlab.data.sources import DataError
from rnnlab.data.text import make_tokenizer, tokenizer_from_dict
from rnnlab.inference.decoding import Decoded, beam_search, greedy_decode
from rnnlab.models.seq2seq import Seq2Seq, Seq2SeqConfig, sequence_loss
from rnnlab.tasks import runs
from rnnlab.tasks.config import ConfigError, config_from_dict, config_to_dict, rename_keys
from rnnlab.tasks.runs import RUN_FILES
from rnnlab.training import TrainerConfig, load_checkpoint
from rnnlab.training.metrics import corpus_bleu, exact_match

__all__ = [
    "TASK",
    "RUN_FILES",
    "DataConfig",
    "DecodeConfig",
    "TranslateConfig",
    "TranslateResult",
    "Translator",
    "train",
    "load_run_config",
    "load_translator",
    "evaluate",
    "predict",
    "plot_attention",
    "datasets",
]

TASK = "translate"
BUNDLED = ("dates", "de-en")
FORMATS = (".tsv (source<TAB>target lines)",)
PATHS = ("data.dataset",)  # config keys that may hold file paths (stored resolved)
DERIVED = ("model.src_vocab_size", "model.tgt_vocab_size", "model.pad_id", "model.bos_id", "model.eos_id")
# Old config keys -> the names every task uses; a saved config.json with the old ones still loads.
RENAMED = {
    "data.seed": "data.split_seed",
    "data.lower": "data.lowercase",
    "batch_size": "data.batch_size",
    "eval_batch_size": "data.eval_batch_size",
    "model.embed_size": "model.embedding_dim",
}
TRAIN_SHORTCUTS = {"data": "data.dataset"}  # option of `rnnlab train translate` -> the config key it sets
TRAIN_EXAMPLES = [
    "rnnlab train translate --data dates --out runs/dates",
    "rnnlab train translate --data pairs.tsv --out runs/mine model.attention=dot data.min_freq=2",
]


@dataclass
class DataConfig:
    """Which pairs, how they are split and tokenized, and how they become batches."""

    dataset: str = "dates"  # "dates" | "de-en" | path of a source<TAB>target file
    split_seed: int = field(default=0, metadata={"min": 0})  # seeds generation (dates) and the split (all)
    n_train: int = field(default=30000, metadata={"min": 1})  # dates: training examples (distinct dates)
    n_valid: int = field(default=1000, metadata={"min": 1})  # dates: validation examples
    n_test: int = field(default=2000, metadata={"min": 0})  # dates: held-out test dates, unseen in training
    first_year: int = field(default=1900, metadata={"min": 1, "max": 9999})  # dates: earliest year drawn
    last_year: int = field(default=2099, metadata={"min": 1, "max": 9999})  # dates: latest year drawn
    valid_fraction: float = field(default=0.05, metadata={"min": 0.0, "max": 0.9})  # de-en / file
    test_fraction: float = field(default=0.1, metadata={"min": 0.0, "max": 0.9})  # de-en / file
    max_words: int = field(default=10, metadata={"min": 1})  # de-en: pairs of at most this many words a side
    de_en_path: str = str(DE_EN_PATH)  # de-en: the Ding dictionary file of the trans-de-en package
    src_tokenizer: str = field(
        default="auto", metadata={"choices": ("auto", "char", "word")}
    )  # auto: by data
    tgt_tokenizer: str = field(default="auto", metadata={"choices": ("auto", "char", "word")})  # the targets
    lowercase: bool = True  # lower-case before tokenizing (both sides)
    min_freq: int = field(default=1, metadata={"min": 1})  # tokens seen fewer times in training become <unk>
    batch_size: int = field(default=64, metadata={"min": 1, "max": 8192})  # training pairs per step
    eval_batch_size: int = field(default=256, metadata={"min": 1, "max": 8192})  # pairs per decoding batch

    def validate(self) -> None:
        if self.first_year > self.last_year:
            raise ValueError(
                f"data.first_year, data.last_year: expected first <= last, received {self.first_year} "
                f"and {self.last_year}"
            )

    def parallel(self) -> ParallelDataConfig:
        """The data loader's config (:func:`rnnlab.data.pairs.load_parallel`) for this section."""
        fields = {f.name for f in dataclasses.fields(ParallelDataConfig)}
        mine = {k: v for k, v in dataclasses.asdict(self).items() if k in fields}
        return ParallelDataConfig(**mine, seed=self.split_seed, lower=self.lowercase)


@dataclass
class DecodeConfig:
    """How evaluate / predict decode (validation during training always decodes greedily)."""

    beam_size: int = field(default=1, metadata={"min": 1, "max": 100})  # 1: greedy; K: beam search
    length_penalty: float = field(default=0.0, metadata={"min": 0.0})  # Wu et al.'s alpha; 0: raw log-prob
    max_len: int = field(default=0, metadata={"min": 0})  # most output tokens with <eos>; 0: 2x longest + 10


def _default_train() -> TrainerConfig:
    # Tuned on dates (benchmarks/quality_seq2seq.py): validation exact match 99.8 % after one epoch, 100 %
    # after three. monitor "auto": exact_match on dates, bleu on sentences (resolved in train()).
    return TrainerConfig(epochs=3, lr=3e-3, patience=2, monitor="auto", monitor_mode="max")


@dataclass
class TranslateConfig:
    """The whole task, one section per concern (``data.dataset=de-en``, ``model.attention=dot``, ...)."""

    data: DataConfig = field(default_factory=DataConfig)  # pairs, split, tokenizers, batches
    model: Seq2SeqConfig = field(default_factory=Seq2SeqConfig)  # vocabulary sizes and ids set by train()
    train: TrainerConfig = field(default_factory=_default_train)  # optimizer, schedule, early stopping
    decode: DecodeConfig = field(default_factory=DecodeConfig)  # greedy or beam, for evaluate / predict
    teacher_forcing: float = field(default=1.0, metadata={"min": 0.0, "max": 1.0})  # P(feed the true token)
    label_smoothing: float = field(default=0.0, metadata={"min": 0.0, "max": 0.99})  # of the cross-entropy


Config = TranslateConfig  # the task's config root, under the name every task uses


def check_beam(beam: int | None, name: str = "beam") -> int | None:
    """``beam`` unchanged if None or within ``decode.beam_size``'s range, else a :class:`ConfigError`."""
    meta = {f.name: f.metadata for f in dataclasses.fields(DecodeConfig)}["beam_size"]
    low, high = meta["min"], meta["max"]
    if beam is not None and (isinstance(beam, bool) or not isinstance(beam, int) or not low <= beam <= high):
        raise ConfigError(
            f"{name}: expected an integer from {low} (greedy) to {high} (the beam search cap), "
            f"received {beam!r}"
        )
    return beam


@dataclass
class TranslateResult:
    """What :func:`train` returns."""

    run_dir: Path  # the run folder
    best_epoch: int  # 1-based epoch whose weights are in best/
    valid_metrics: dict  # the best epoch's validation row
    test_metrics: dict | None  # on the held-out test split (None when the split is empty)
    history: list[dict]  # one row per epoch, as in metrics.csv
    stopped_early: bool  # patience ran out before train.epochs
    train_seconds: float  # wall-clock time of the training loop (validation included)


@dataclass
class Translator:
    """A trained model with what turns text into text: vocabularies, tokenizers, decoding settings."""

    model: Seq2Seq
    config: TranslateConfig
    src_vocab: PairVocab
    tgt_vocab: PairVocab
    src_tokenizer: object  # CharTokenizer | WordTokenizer
    tgt_tokenizer: object  # CharTokenizer | WordTokenizer

    @property
    def max_len(self) -> int:
        return self.config.decode.max_len

    def source_ids(self, texts: list[str]) -> list[list[int]]:
        """Token ids of each source text; a text without any token is a :class:`DataError` naming it."""
        ids = []
        for text in texts:
            tokens = self.src_tokenizer(text)
            if not tokens:
                raise DataError(f"texts: expected text with at least one token, received {text!r}")
            ids.append(self.src_vocab.encode(tokens))
        return ids

    def detokenize(self, tokens: list[str]) -> str:
        return ("" if self.tgt_tokenizer.name == "char" else " ").join(tokens)

    def decode(self, batch: PairBatch, beam_size: int | None = None, length_penalty: float | None = None):
        """Decode a batch, greedy for beam 1; the config's settings unless given."""
        beam = self.config.decode.beam_size if beam_size is None else beam_size
        alpha = self.config.decode.length_penalty if length_penalty is None else length_penalty
        src = batch.src.to(next(self.model.parameters()).device)
        if beam == 1:
            return greedy_decode(self.model, src, batch.src_lengths, self.max_len)
        return beam_search(self.model, src, batch.src_lengths, beam, alpha, self.max_len)


def _encode_pairs(pairs, src_tok, tgt_tok, src_vocab, tgt_vocab):
    """Ids of the pairs whose sides both have tokens; returns (sources, targets, kept pairs)."""
    sources, targets, kept = [], [], []
    for src, tgt in pairs:
        s, t = src_tok(src), tgt_tok(tgt)
        if s and t:
            sources.append(src_vocab.encode(s))
            targets.append(tgt_vocab.encode(t))
            kept.append((src, tgt))
    return sources, targets, kept


def _score_batches(t: Translator, batches: PairBatches, kept, beam_size=None, length_penalty=None) -> dict:
    """Exact match, token accuracy, corpus BLEU and mean token loss of ``batches`` (of the ``kept`` pairs)."""
    model, pad = t.model, t.tgt_vocab.pad_id
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    hyps, refs = [], []
    correct = counted = 0
    loss_sum = 0.0
    with torch.no_grad():
        for batch in batches:
            b = batch.to(device)
            logits, _ = model(b.src, b.src_lengths, b.tgt_in)  # (B, S, V)
            keep = b.tgt_out != pad  # (B, S)
            n = int(keep.sum())
            correct += int(((logits.argmax(-1) == b.tgt_out) & keep).sum())
            counted += n
            loss_sum += float(sequence_loss(logits, b.tgt_out, pad)) * n
            decoded = t.decode(b, beam_size, length_penalty)
            for i, tokens in zip(batch.index, decoded.tokens, strict=True):
                hyps.append(t.tgt_vocab.decode(tokens))
                refs.append(t.tgt_tokenizer(kept[i][1]))  # the reference's own tokens: <unk> never matches
    model.train(was_training)
    return {
        "exact_match": exact_match(hyps, refs),
        "token_accuracy": correct / counted,
        "bleu": corpus_bleu(hyps, refs),
        "loss": loss_sum / counted,
    }


def _score(t: Translator, pairs, beam_size=None, length_penalty=None) -> dict:
    sources, targets, kept = _encode_pairs(pairs, t.src_tokenizer, t.tgt_tokenizer, t.src_vocab, t.tgt_vocab)
    if not kept:
        raise DataError("pairs: expected at least one pair with tokens on both sides, received none")
    batches = PairBatches(sources, targets, t.config.data.eval_batch_size, vocab=t.tgt_vocab)
    return {**_score_batches(t, batches, kept, beam_size, length_penalty), "n": len(kept)}


def load_run_config(run_dir: str | Path) -> TranslateConfig:
    """The resolved config saved in a run folder (``config.json``; old key names load, see RENAMED)."""
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise DataError(f"{run_dir}: not a translate run folder (no config.json)")
    return runs.load_config_file(TranslateConfig, path, RENAMED)


def train(
    config: TranslateConfig | None = None,
    run_dir: str | Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
) -> TranslateResult:
    """Train a sequence-to-sequence model into ``run_dir``; returns validation and test metrics.

    Args:
        config: the task config (validated here: ranges and choices raise :class:`ConfigError`).
        run_dir: the run folder to write; None for a new ``runs/translate-<date>-<time>``.
        resume: continue the interrupted run in ``run_dir`` (its data and model config must be unchanged).
        overwrite: replace an earlier run in ``run_dir`` (otherwise that is an error).

    The vocabularies come from the training split; the :class:`~rnnlab.training.Trainer` keeps ``best/`` (the
    best validation epoch by ``train.monitor``) and ``last/``; the best weights are then scored on the test
    split. The run lifecycle is :class:`~rnnlab.tasks.runs.RunFolder`'s: every check runs before the first
    file is written, and an earlier run is replaced only once the new one has written its first checkpoint.
    """
    # config
    config, run = runs.prepare(
        config or TranslateConfig(), run_dir, resume, overwrite, TASK, PATHS, BUNDLED, FORMATS
    )

    # data
    cfg = config.data
    corpus = load_parallel(cfg.parallel())
    auto_src, auto_tgt = default_tokenizers(corpus)
    src_tok = make_tokenizer(
        auto_src if cfg.src_tokenizer == "auto" else cfg.src_tokenizer, lower=cfg.lowercase
    )
    tgt_tok = make_tokenizer(
        auto_tgt if cfg.tgt_tokenizer == "auto" else cfg.tgt_tokenizer, lower=cfg.lowercase
    )
    src_vocab = PairVocab.build((src_tok(s) for s, _ in corpus.train), min_freq=cfg.min_freq)
    tgt_vocab = PairVocab.build((tgt_tok(t) for _, t in corpus.train), min_freq=cfg.min_freq)
    train_src, train_tgt, train_kept = _encode_pairs(corpus.train, src_tok, tgt_tok, src_vocab, tgt_vocab)
    valid_src, valid_tgt, valid_kept = _encode_pairs(corpus.valid, src_tok, tgt_tok, src_vocab, tgt_vocab)
    if not train_kept or not valid_kept:
        raise DataError(
            f"{corpus.name}: expected training and validation pairs with tokens on both sides, received "
            f"{len(train_kept)} and {len(valid_kept)}"
        )
    train_batches = PairBatches(train_src, train_tgt, cfg.batch_size, True, config.train.seed, tgt_vocab)
    valid_batches = PairBatches(valid_src, valid_tgt, cfg.eval_batch_size, vocab=tgt_vocab)

    # Resolve what depends on the data: vocabulary sizes and ids, the monitored metric, the decoding limit.
    config.model = dataclasses.replace(
        config.model,
        src_vocab_size=len(src_vocab),
        tgt_vocab_size=len(tgt_vocab),
        pad_id=tgt_vocab.pad_id,
        bos_id=tgt_vocab.bos_id,
        eos_id=tgt_vocab.eos_id,
    )
    if config.train.monitor == "auto":
        config.train.monitor = "exact_match" if corpus.name == "dates" else "bleu"
    config.train.monitor_mode = "min" if config.train.monitor in ("valid_loss", "train_loss") else "max"
    config.decode.max_len = config.decode.max_len or 2 * max(map(len, train_tgt)) + 10
    if resume:
        runs.check_unchanged(config, load_run_config(run.path), ("data", "model"), run.path)
    splits = {"train": train_kept, "valid": valid_kept, "test": corpus.test}
    run_info = {
        "task": TASK,
        "data": {
            "name": corpus.name,
            **corpus.info,
            **{name: runs.split_record([s for s, _ in pairs]) for name, pairs in splits.items()},
        },
        "src_vocab_size": len(src_vocab),
        "tgt_vocab_size": len(tgt_vocab),
        "tokenizers": [src_tok.name, tgt_tok.name],
    }

    # model
    torch.manual_seed(config.train.seed)  # the initial weights depend on the seed only
    model = Seq2Seq(config.model)
    translator = Translator(model, config, src_vocab, tgt_vocab, src_tok, tgt_tok)
    resolved = config_to_dict(config)
    meta = {
        "task": TASK,
        "config": resolved,
        "src_vocab": src_vocab.to_dict(),
        "tgt_vocab": tgt_vocab.to_dict(),
        "src_tokenizer": src_tok.to_dict(),
        "tgt_tokenizer": tgt_tok.to_dict(),
    }
    tf, smoothing, pad, device = (
        config.teacher_forcing,
        config.label_smoothing,
        tgt_vocab.pad_id,
        config.train.device,
    )

    def step_fn(m, batch: PairBatch) -> torch.Tensor:
        b = batch.to(device)
        logits, _ = m(b.src, b.src_lengths, b.tgt_in, teacher_forcing=tf)  # (B, S, V)
        return sequence_loss(logits, b.tgt_out, pad, smoothing)

    def eval_fn(m, batches) -> dict:
        return runs.validation_row(_score_batches(translator, batches, valid_kept, beam_size=1))  # greedy

    with run:
        run.write_json("config.json", resolved)
        run.write_json("run.json", run_info)
        # fit
        start = time.perf_counter()
        fit = run.trainer(config.train, TASK).fit(
            model, train_batches, valid_batches, step_fn, eval_fn, meta=meta, resume=resume, restore_best=True
        )
        seconds = time.perf_counter() - start
        # score
        test_metrics = None
        if corpus.test:
            test_metrics = {**_score(translator, corpus.test), "beam_size": config.decode.beam_size}
            run.write_json("test_metrics.json", test_metrics)
    return TranslateResult(
        run.path, fit.best_epoch, fit.best_metrics, test_metrics, fit.history, fit.stopped_early, seconds
    )


def load_translator(run_dir: str | Path, which: str = "best", device: str = "cpu") -> Translator:
    """Rebuild model, vocabularies and tokenizers of a translate run from its checkpoint alone.

    ``which`` is ``"best"`` (the best validation epoch; falls back to ``last`` when absent) or ``"last"``.
    """
    run_dir = Path(run_dir)
    path = run_dir / which
    if which == "best" and not path.exists() and (run_dir / "last").exists():
        path = run_dir / "last"
    ckpt = load_checkpoint(path, device=device)
    if ckpt.meta.get("task") != TASK:
        raise DataError(f"{path}: expected a {TASK!r} checkpoint, received task {ckpt.meta.get('task')!r}")
    config = config_from_dict(TranslateConfig, rename_keys(TranslateConfig, ckpt.meta["config"], RENAMED))
    model = Seq2Seq(config.model)
    model.load_state_dict(ckpt.state_dict)
    model.to(device).eval()
    return Translator(
        model,
        config,
        PairVocab.from_dict(ckpt.meta["src_vocab"]),
        PairVocab.from_dict(ckpt.meta["tgt_vocab"]),
        tokenizer_from_dict(ckpt.meta["src_tokenizer"]),
        tokenizer_from_dict(ckpt.meta["tgt_tokenizer"]),
    )


def _evaluation_pairs(run_dir: Path, config: TranslateConfig, data: str | None):
    """The pairs ``evaluate`` scores, and a description of them."""
    cfg = config.data
    if data is None or data == cfg.dataset:
        runs.check_saved_paths(config, PATHS, run_dir / "config.json", BUNDLED)
        corpus = load_parallel(cfg.parallel())
        name, part = ("test", corpus.test) if corpus.test else ("valid", corpus.valid)
        runs.check_split(run_dir, name, [s for s, _ in part], cfg.dataset)
        return part, f"{cfg.dataset} ({name} split, {len(part)} pairs)"
    runs.check_data_path(data, "--data", BUNDLED, FORMATS)
    if data in BUNDLED:
        part = load_parallel(dataclasses.replace(cfg, dataset=data).parallel()).test
        return part, f"{data} (test split, {len(part)} pairs)"
    part = read_pairs_file(data)
    return part, f"{data} (all {len(part)} pairs)"


def evaluate(
    run_dir: str | Path, data: str | None = None, beam: int | None = None, length_penalty: float | None = None
) -> dict:
    """Score a trained run (its ``best/`` checkpoint).

    Args:
        run_dir: a run folder written by :func:`train`.
        data: None or the run's own data: its test split (checked against the fingerprint in ``run.json``);
            ``"dates"`` / ``"de-en"``: that data set's test split; a path: every pair of that TSV file.
        beam: beam width (default: the run's ``decode.beam_size``; 1 is greedy).
        length_penalty: Wu et al.'s alpha for beam search (default: the run's ``decode.length_penalty``).

    Returns:
        ``exact_match``, ``token_accuracy``, ``bleu`` (0-100), ``loss``, ``n``, ``beam_size``, ``data``.
    """
    check_beam(beam)
    run_dir = Path(run_dir)
    t = load_translator(run_dir)
    pairs, description = _evaluation_pairs(run_dir, t.config, data)
    beam_size = t.config.decode.beam_size if beam is None else beam
    return {**_score(t, pairs, beam_size, length_penalty), "beam_size": beam_size, "data": description}


def _attention_rows(decoded: Decoded, i: int) -> list | None:
    a = decoded.attention[i]
    return None if a is None else [[round(float(x), 6) for x in row] for row in a]


def predict(
    run_dir: str | Path | Translator,
    texts: list[str],
    beam: int | None = None,
    length_penalty: float | None = None,
) -> list[dict]:
    """Translate ``texts`` (a run folder or a loaded :class:`Translator`); one dict per text.

    Each dict holds ``input``, ``output`` (the detokenised text), ``score`` (the ranking score),
    ``log_prob``, ``finished`` (ended with ``<eos>``), ``source_tokens``, ``target_tokens`` (with ``<eos>``
    last when finished: one per attention row) and ``attention`` (rows = target tokens, columns = source
    tokens; None without attention).
    """
    check_beam(beam)
    t = run_dir if isinstance(run_dir, Translator) else load_translator(run_dir)
    texts = [texts] if isinstance(texts, str) else list(texts)
    batches = PairBatches(t.source_ids(texts), None, t.config.data.eval_batch_size, vocab=t.tgt_vocab)
    results: list[dict] = [{} for _ in texts]
    for batch in batches:
        decoded = t.decode(batch, beam, length_penalty)
        for row, i in enumerate(batch.index):
            tokens = t.tgt_vocab.decode(decoded.tokens[row])
            results[i] = {
                "input": texts[i],
                "output": t.detokenize(tokens),
                "score": decoded.scores[row],
                "log_prob": decoded.log_probs[row],
                "finished": decoded.finished[row],
                "source_tokens": t.src_tokenizer(texts[i]),
                "target_tokens": tokens + (["<eos>"] if decoded.finished[row] else []),
                "attention": _attention_rows(decoded, row),
            }
    return results


def plot_attention(
    run_dir: str | Path | Translator, text: str, path: str | Path, beam: int | None = None
) -> Path:
    """Draw the source x target alignment of ``text``'s translation as a heatmap (PNG); returns the path."""
    from rnnlab.viz.plots import plot_attention as heatmap  # lazy: matplotlib ships with the 'tasks' extra

    result = predict(run_dir, [text], beam)[0]
    if result["attention"] is None:
        raise ConfigError("model.attention=none: this model has no alignment to plot")
    title = f"{text} \u2192 {result['output']}"
    return heatmap(result["attention"], result["source_tokens"], result["target_tokens"], path, title=title)


# -- command-line hooks (see rnnlab.tasks): they call the functions above and print what they return --------


def add_train_arguments(parser) -> None:
    """Options of ``rnnlab train translate``; ``--data`` is a shortcut for ``data.dataset=``."""
    parser.add_argument("--data", help="dates (default), de-en (apt-get install trans-de-en), or a TSV file")


def summary(result: TranslateResult) -> str:
    """The metrics ``rnnlab train translate`` prints after the run folder and best epoch."""
    best = result.valid_metrics
    lines = [
        f"valid: exact match {best['exact_match']:.4f}  BLEU {best['bleu']:.2f}",
    ]
    if result.test_metrics is not None:
        lines.append(format_evaluation({**result.test_metrics, "data": "test split"}))
    return "\n".join(lines)


def format_evaluation(result: dict) -> str:
    """The evaluation as text."""
    return "\n".join(
        [
            f"data:            {result['data']}",
            f"exact match:     {result['exact_match']:.4f}",
            f"token accuracy:  {result['token_accuracy']:.4f}",
            f"BLEU:            {result['bleu']:.2f}",
            f"pairs:           {result['n']}  (beam {result['beam_size']})",
        ]
    )


CLI_OPTIONS = ("beam",)  # task options of evaluate / predict / plot this task takes


def run_evaluate(args) -> int:
    result = evaluate(args.run_dir, args.data, check_beam(args.beam, "--beam"))
    print(runs.to_json(result, args.run_dir) if args.json else format_evaluation(result))
    return 0


def run_predict(args) -> int:
    for r in predict(args.run_dir, runs.read_texts(args.texts), check_beam(args.beam, "--beam")):
        if args.json:
            print(runs.to_json(r, args.run_dir))
        else:
            runs.check_finite(r["score"], args.run_dir)
            print(f"{r['output']}\t{r['score']:.3f}\t{r['input']}")
    return 0


def run_plot_attention(args) -> int:
    print(plot_attention(args.run_dir, args.text, args.output, check_beam(args.beam, "--beam")))
    return 0


def datasets() -> list[dict]:
    """The bundled data sets and whether each can be used here."""
    return [
        {
            "name": "dates",
            "description": "dates in many written forms -> ISO 8601, generated",
            "available": True,
            "how": "generated on the fly",
        },
        {
            "name": "de-en",
            "description": "German -> English sentence pairs from the Ding dictionary (trans-de-en)",
            "available": Path(DataConfig().de_en_path).is_file(),
            "how": "sudo apt-get install trans-de-en",
        },
    ]
