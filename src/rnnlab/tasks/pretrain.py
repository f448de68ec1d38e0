"""Pretraining for transfer: a forward and a backward character LM on general text plus a task's training
texts, trained once and cached.

In Python::

    from rnnlab.tasks import pretrain
    result = pretrain.pretrain("reviews-zh", budget_s=600)   # or a sentiment DataConfig, for its split
    result.forward, result.backward                          # two charlm run folders
    # rnnlab train sentiment --init <result.forward> ...    (the sentiment task's transfer)

On the command line: ``rnnlab pretrain sentiment --data reviews-zh --budget-s 600``.

The engine is the charlm task: the text (:func:`rnnlab.data.pretrain.build_pretrain_text`: the general
corpora of the data's language, the **training split** of the sentiment data as the sentiment task splits it
(:func:`rnnlab.tasks.sentiment.load_splits`), never a validation or test text nor a behavioural test text
(:mod:`rnnlab.data.behavioural`), checked by fingerprints) is
written to a ``.txt`` file and each LM is an ordinary :func:`rnnlab.tasks.charlm.train` run on it, the
backward one with ``model.reverse=true``. ``budget_s`` is shared: each LM gets half. Both LMs get the same
hidden size (transfer needs it): with ``model.hidden_size=0`` (the charlm default) it is chosen once, for one
LM's half of the budget.

**Cache.** Everything lives in ``<cache>/pretrain/<data>-<key>/`` (``$RNNLAB_CACHE`` or ``~/.cache/rnnlab``),
where ``key`` hashes the text's fingerprint and the charlm config as given (before the size rule). A call
whose ``pretrain.json`` is there returns at once; an interrupted call resumes each LM from its ``last/``
checkpoint; the text is rebuilt and must have the same fingerprint.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from rnnlab.data.behavioural import behavioural_texts
from rnnlab.data.pretrain import build_pretrain_text, general_lines, language_of
from rnnlab.data.sources import DataError, cache_dir
from rnnlab.tasks import charlm
from rnnlab.tasks.charlm_budget import choose_hidden_size
from rnnlab.tasks.config import apply_overrides, config_to_dict, validate
from rnnlab.training import atomic_write_json, atomic_write_text

__all__ = ["PretrainResult", "pretrain", "pretrain_text", "default_lm_config", "run_pretrain"]

DIRECTIONS = ("forward", "backward")


@dataclass
class PretrainResult:
    forward: Path  # the forward LM's charlm run folder (best/ holds the checkpoint)
    backward: Path  # the backward LM's (model.reverse=true)
    folder: Path  # the cache folder: text.txt, pretrain.json, both runs
    info: dict  # the text's sources, what was dropped, both LMs' scores
    cached: bool  # True when this call trained nothing


def default_lm_config() -> charlm.Config:
    """charlm's defaults, with the budget set per call (:func:`pretrain`)."""
    return charlm.Config()


def _sentiment_data(data):
    from rnnlab.tasks import sentiment

    if isinstance(data, str):
        return sentiment.DataConfig(dataset=data)
    if not isinstance(data, sentiment.DataConfig):
        raise TypeError(
            f"data: expected a data set name, a path or a sentiment DataConfig, received {data!r}"
        )
    return data


def pretrain_text(data, general: dict[str, list[str]] | None = None, exclude: list[str] = ()):
    """The pretraining text of sentiment ``data`` (name, path or ``DataConfig``), with its split's record.

    ``general``: source -> lines (default: :func:`rnnlab.data.pretrain.general_lines` of the data's
    language). ``exclude``: more texts never to read (another evaluation set); the behavioural test set
    (:func:`rnnlab.data.behavioural.behavioural_texts`, every language) is always excluded.
    """
    from rnnlab.tasks import sentiment

    cfg = _sentiment_data(data)
    splits = sentiment.load_splits(cfg)
    held_out = [*splits.valid.texts, *(splits.test.texts if splits.test is not None else []), *exclude]
    held_out += behavioural_texts()  # scored by benchmarks/quality_sentiment.py --behavioural
    if general is None:
        general = general_lines(language_of(splits.train.texts[:2000]))
    return build_pretrain_text(general, splits.train.texts, held_out), splits


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(name).stem if Path(name).suffix else name)[:40]


def pretrain(
    data="reviews-zh",
    budget_s: float = 600.0,
    lm: charlm.Config | None = None,
    general: dict[str, list[str]] | None = None,
    exclude: list[str] = (),
    cache: str | Path | None = None,
) -> PretrainResult:
    """A forward and a backward charlm run on the pretraining text of sentiment ``data``; see the module
    docstring. ``lm``: the charlm config of both (its data section's ``dataset`` is set here; default
    :func:`default_lm_config`); ``budget_s``: seconds for both LMs together (each gets half)."""
    if not (isinstance(budget_s, int | float) and budget_s > 0):
        raise ValueError(f"budget_s: expected seconds > 0, received {budget_s!r}")
    lm = copy.deepcopy(lm or default_lm_config())
    lm.train.budget_s = budget_s / 2
    built, splits = pretrain_text(data, general, exclude)
    given = config_to_dict(lm)
    given["data"].pop("dataset")
    key = hashlib.sha256(json.dumps([built.info["fingerprint"], given], sort_keys=True).encode()).hexdigest()[
        :12
    ]
    folder = Path(cache or cache_dir()) / "pretrain" / f"{_slug(splits.train.source)}-{key}"
    runs = {d: folder / d for d in DIRECTIONS}
    done = folder / "pretrain.json"
    if done.is_file():
        info = json.loads(done.read_text(encoding="utf-8"))
        return PretrainResult(runs["forward"], runs["backward"], folder, info, cached=True)
    folder.mkdir(parents=True, exist_ok=True)
    text_path = folder / "text.txt"
    if not text_path.is_file():
        atomic_write_text(text_path, built.text)
    lm.data.dataset = str(text_path)
    lm = validate(lm)
    info = {"text": built.info, "split": splits.info, "config": given, "runs": {}}
    for direction, run_dir in runs.items():
        if (run_dir / "last").is_dir():  # an interrupted call: go on where it stopped
            result = charlm.train(charlm.load_run_config(run_dir), run_dir, resume=True)
        else:
            config = copy.deepcopy(lm)
            config.model.reverse = direction == "backward"
            if config.model.hidden_size == 0:  # one size for both LMs (transfer needs it)
                config.model.hidden_size = _shared_size(lm, runs, text_path)
            result = charlm.train(config, run_dir, overwrite=True)
        info["runs"][direction] = {
            "run": str(run_dir),
            "valid": result.valid_metrics,
            "baseline": result.baseline,
        }
    atomic_write_json(done, info)
    return PretrainResult(runs["forward"], runs["backward"], folder, info, cached=False)


def _shared_size(lm: charlm.Config, runs: dict[str, Path], text_path: Path) -> int:
    """The hidden size of the LM already trained, if any, else the budget rule's (said on stderr)."""
    for run_dir in runs.values():
        if (run_dir / "config.json").is_file():
            return charlm.load_run_config(run_dir).model.hidden_size
    from rnnlab.data import Vocab
    from rnnlab.data.corpora import load_corpus

    corpus = load_corpus(str(text_path), lm.data.valid_fraction, lm.data.test_fraction)
    vocab = Vocab.build([list(corpus.train)], lm.data.min_freq)
    config = copy.deepcopy(lm)
    config.model.vocab_size = len(vocab)
    ids = charlm._encode(vocab, corpus.train)
    size, record = choose_hidden_size(config, ids)
    print(
        f"note: both LMs get model.hidden_size={size} ({record['parameters']:,} parameters) for "
        f"{lm.train.budget_s:g} s each; set model.hidden_size to choose",
        file=sys.stderr,
    )
    return size


# -- command line: rnnlab pretrain sentiment (added by rnnlab.tasks.charlm_cli) -------------------------


def run_pretrain(args) -> int:
    from rnnlab.tasks import sentiment

    data = sentiment.DataConfig(dataset=args.data)
    if args.split_seed is not None:
        data.split_seed = args.split_seed
    lm = apply_overrides(default_lm_config(), args.overrides, charlm.DERIVED, charlm.RENAMED)
    if args.budget_s <= 0:
        raise DataError(f"--budget-s: expected seconds > 0, received {args.budget_s}")
    result = pretrain(data, args.budget_s, lm, cache=args.cache)
    state = "cached" if result.cached else "trained"
    print(f"forward LM:  {result.forward}\nbackward LM: {result.backward}\n({state}; {result.folder})")
    for direction in DIRECTIONS:
        run = result.info["runs"][direction]
        base = run.get("baseline") or {}
        line = f"{direction}: valid {run['valid']['bpc']:.4f} bpc"
        if base:
            line += f"  (interpolated 5-gram {base['bpc']:.4f} bpc)"
        print(line)
    return 0
