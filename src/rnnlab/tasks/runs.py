"""The run lifecycle every task shares: a run folder from new / resume / overwrite to its first checkpoint.

A task's ``train()`` reads top to bottom as config -> data -> model -> fit -> score; this module holds the
steps around it that are the same for every task::

    config, run = prepare(config, run_dir, resume, overwrite, TASK, PATHS, ...)
        # validated (ConfigError), data paths stored resolved, the device checked ("cuda" on a machine
        # without one: a user error), the run folder checked (refuses to clobber); nothing written yet
    ... data, vocabulary, model ...                         # any error here leaves the folder as it was
    with run:                                               # from here on files are written
        run.write_json("config.json", ...); run.write_json("run.json", ...)
        fit = run.trainer(config.train, TASK).fit(...)
        run.write_json("test_metrics.json", ...)

A new or overwritten run is built in a hidden folder beside ``run_dir`` (``.NAME.rnnlab-new-PID-XXXX``) and
moved into ``run_dir`` when the trainer writes its first checkpoint: a start that fails (a bad device, a crash
in the first epoch, Ctrl-C before the first checkpoint) removes the hidden folder and leaves the earlier run
exactly as it was; after the first checkpoint the new run is in place and ``--resume`` continues it. Only the
files of :data:`RUN_FILES` are replaced; other files in ``run_dir`` (a plot, notes) stay. A hidden folder left
behind by a killed process is removed by the next run of the same folder.

Also here: data paths stored resolved (so ``evaluate RUN`` works from any folder) and checked with where they
came from, the split fingerprints, texts from stdin, JSON output that never holds NaN, and ``rnnlab train
TASK``'s generic part (:func:`train_from_args`).
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from typing import Any

from rnnlab.data.batching import fingerprint
from rnnlab.data.sources import DataError
from rnnlab.tasks.config import ConfigError, apply_overrides, config_from_dict, config_to_dict, rename_keys
from rnnlab.tasks.config import validate as validate_config

__all__ = [
    "RUN_FILES",
    "RunFolder",
    "check_run_dir",
    "check_device",
    "prepare",
    "default_run_dir",
    "resolve_paths",
    "check_saved_paths",
    "check_data_path",
    "check_unchanged",
    "validation_row",
    "split_record",
    "check_split",
    "load_config_file",
    "read_texts",
    "to_json",
    "check_finite",
    "train_from_args",
]

# What a run folder holds; --overwrite replaces exactly these, nothing else.
RUN_FILES = ("config.json", "run.json", "metrics.csv", "test_metrics.json", "best", "last", "select")
_STAGED = re.compile(r"\.(?P<name>.+)\.rnnlab-(new|old)-(?P<pid>\d+)-")


def _rank() -> int:
    """This process's rank under torchrun (0 otherwise): only rank 0 writes the run folder."""
    return int(os.environ.get("RANK", "0"))


def _resumable(run_dir: Path) -> bool:
    """Whether a run stopped after a checkpoint: its own ``last/``, or a first step's (a collection run's
    ``select/last``, written before the run's own)."""
    return (run_dir / "last").is_dir() or (run_dir / "select" / "last").is_dir()


def check_run_dir(run_dir: Path, resume: bool, overwrite: bool) -> None:
    """Refuse to clobber an earlier run unless asked; runs before anything is written or removed."""
    held = [name for name in RUN_FILES if (run_dir / name).exists()]
    if run_dir.exists() and not run_dir.is_dir():
        raise DataError(f"--out {run_dir}: expected a folder, received an existing file")
    if resume and not _resumable(run_dir):
        raise DataError(f"--resume: {run_dir} holds no interrupted run (no last/ checkpoint)")
    if not resume and held and not overwrite:
        raise DataError(
            f"{run_dir} already holds a run ({', '.join(held)}); pass --resume to continue it, "
            "--overwrite to replace it, or choose another --out"
        )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _remove_stale(run_dir: Path) -> None:
    """Clear the hidden folders of ``run_dir`` left by processes that no longer run (kill -9).

    A staged new run (``-new-``) is removed. A moved-aside earlier run (``-old-``: killed in the middle of
    the swap) is moved back when ``run_dir`` holds no run (the new one never arrived), else removed.
    """
    if not run_dir.parent.is_dir():
        return
    for entry in run_dir.parent.iterdir():
        m = _STAGED.match(entry.name)
        if not (m and m["name"] == run_dir.name and entry.is_dir()) or _alive(int(m["pid"])):
            continue
        if m[2] == "old" and not any((run_dir / name).exists() for name in RUN_FILES):
            run_dir.mkdir(exist_ok=True)
            for item in entry.iterdir():
                item.rename(run_dir / item.name)
        shutil.rmtree(entry, ignore_errors=True)


class RunFolder:
    """A run folder through one ``train()`` call: checks at once, writes only inside ``with run:``.

    Attributes:
        path: the run folder the user named.
        dir: where files go now: ``path`` when resuming (or once the new run is in place), else the hidden
            staging folder beside it.
    """

    def __init__(self, path: str | Path, resume: bool = False, overwrite: bool = False):
        self.path = Path(path)
        self.resume = resume
        self.writer = _rank() == 0
        if self.writer:
            _remove_stale(self.path)
            check_run_dir(self.path, resume, overwrite)
        elif resume and not _resumable(self.path):
            check_run_dir(self.path, resume, overwrite)
        self.dir = self.path
        self._staging: Path | None = None

    @property
    def staged(self) -> bool:
        """True while the new run lives in the hidden folder, not yet in :attr:`path`."""
        return self._staging is not None

    def __enter__(self) -> RunFolder:
        if self.writer and not self.resume:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._staging = Path(
                tempfile.mkdtemp(prefix=f".{self.path.name}.rnnlab-new-{os.getpid()}-", dir=self.path.parent)
            )
            self.dir = self._staging
        return self

    def __exit__(self, kind, error, traceback) -> None:
        if not self.staged:
            return
        if kind is None or (self.dir / "last").is_dir():  # finished, or stopped after a checkpoint
            self.commit()
        else:
            self.discard()

    def commit(self) -> None:
        """Move the staged run into :attr:`path`, replacing the earlier run's :data:`RUN_FILES`."""
        if self._staging is None:
            return
        staging, self._staging = self._staging, None
        self.path.mkdir(parents=True, exist_ok=True)
        new = [entry.name for entry in staging.iterdir()]
        old = [name for name in dict.fromkeys([*RUN_FILES, *new]) if (self.path / name).exists()]
        backup = None
        if old:  # first move the earlier run aside (renames: same file system), then the new one in
            backup = Path(
                tempfile.mkdtemp(prefix=f".{self.path.name}.rnnlab-old-{os.getpid()}-", dir=self.path.parent)
            )
            for name in old:
                (self.path / name).rename(backup / name)
        for name in new:
            (staging / name).rename(self.path / name)
        staging.rmdir()
        if backup is not None:
            shutil.rmtree(backup)
        self.dir = self.path

    def discard(self) -> None:
        """Remove the staged run (a start that failed); :attr:`path` is left as it was."""
        if self._staging is not None:
            shutil.rmtree(self._staging, ignore_errors=True)
            self._staging = None
            self.dir = self.path

    def write_json(self, name: str, data: Any) -> Path:
        """Write ``data`` as strict JSON to ``name`` in :attr:`dir`, atomically (rank 0 only); a NaN in it
        is written as null, with a warning (:func:`rnnlab.training.atomic_write_json`)."""
        from rnnlab.training import atomic_write_json

        path = self.dir / name
        if self.writer:
            atomic_write_json(path, data)
        return path

    def trainer(self, config, task: str, subdir: str | None = None):
        """A :class:`~rnnlab.training.Trainer` writing into :attr:`dir` (or its ``subdir``, for a step of
        the run that has checkpoints of its own) that puts the staged run in place as soon as the first
        checkpoint is written (and, after Ctrl-C, says how to resume ``task``)."""
        from rnnlab.training import Trainer

        run = self

        class _RunTrainer(Trainer):
            def _save(self, *args, **kwargs):
                super()._save(*args, **kwargs)
                if run.staged:
                    run.commit()
                    self.run_dir = run.path / subdir if subdir else run.path

        hint = f"rnnlab train {task} --out {self.path} --resume (in Python: resume=True)"
        return _RunTrainer(config, self.dir / subdir if subdir else self.dir, resume_hint=hint)


def check_device(device: str, key: str = "train.device") -> None:
    """A user error naming ``key`` unless torch can put tensors on ``device`` here (checked at the door, so
    that ``train.device=cuda`` on a machine without a GPU fails before anything is written)."""
    import torch

    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(
            f"{key}: expected a torch device such as cpu, cuda or cuda:1, received {device!r}"
        ) from None
    if parsed.type == "cpu":
        return
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            why = "torch was built without CUDA" if torch.version.cuda is None else "no GPU is visible"
            raise ConfigError(f"{key}={device}: CUDA is not available here ({why}); use {key}=cpu")
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise ConfigError(
                f"{key}={device}: expected a GPU index below {torch.cuda.device_count()}, "
                f"received {parsed.index}"
            )
        return
    try:
        torch.empty(1, device=parsed)
    except (RuntimeError, AssertionError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ConfigError(f"{key}={device}: not usable here ({reason}); use {key}=cpu") from None


def prepare(
    config: Any,
    run_dir: str | Path | None,
    resume: bool,
    overwrite: bool,
    task: str,
    paths: Iterable[str] = (),
    bundled: Collection[str] = (),
    formats: Collection[str] = (),
) -> tuple[Any, RunFolder]:
    """The config step every task's ``train()`` starts with, before any data is read: a validated copy of
    ``config`` (its ``paths`` stored resolved), and the :class:`RunFolder` (checked, nothing written), with
    ``config.train.device`` checked. Returns ``(config, run)``."""
    config = validate_config(copy.deepcopy(config))
    run = RunFolder(run_dir or default_run_dir(task), resume, overwrite)
    check_device(config.train.device)
    resolve_paths(config, paths, bundled, formats)
    return config, run


def default_run_dir(task: str) -> Path:
    """``runs/<task>-<date>-<time>``: where ``train()`` writes when given no folder."""
    return Path("runs") / time.strftime(f"{task}-%Y%m%d-%H%M%S")


def _get(config: Any, key: str) -> Any:
    for part in key.split("."):
        config = getattr(config, part)
    return config


def _set(config: Any, key: str, value: Any) -> None:
    *parents, name = key.split(".")
    for part in parents:
        config = getattr(config, part)
    setattr(config, name, value)


def check_data_path(value: str, key: str, bundled: Collection[str], formats: Collection[str]) -> None:
    """A user error if ``value`` (for ``key``) is a folder: it should name a bundled set or a data file."""
    if value not in bundled and Path(value).expanduser().is_dir():
        names = ", ".join(bundled) or "none"
        raise DataError(
            f"{key}={value}: a directory, not a data file; expected a bundled data set ({names}) or a "
            f"{', '.join(formats)} file"
        )


def resolve_paths(
    config: Any, keys: Iterable[str], bundled: Collection[str] = (), formats: Collection[str] = ()
) -> None:
    """Store the file paths under ``keys`` as absolute paths (in place), so that the saved config works from
    any folder; bundled data set names and None stay as they are. A folder is a user error (see
    :func:`check_data_path`)."""
    for key in keys:
        value = _get(config, key)
        if isinstance(value, str) and value not in bundled:
            check_data_path(value, key, bundled, formats)
            _set(config, key, str(Path(value).expanduser().resolve()))


def check_saved_paths(config: Any, keys: Iterable[str], source: str | Path, bundled: Collection[str] = ()):
    """A user error naming the key and ``source`` (``RUN/config.json``) for a saved path that is gone."""
    for key in keys:
        value = _get(config, key)
        if isinstance(value, str) and value not in bundled and not Path(value).expanduser().exists():
            raise DataError(f"{value}: no such file ({key} from {source})")


def split_record(texts: list[str]) -> dict:
    """What ``run.json`` records of a split: its size and a fingerprint of its texts in order."""
    return {"size": len(texts), "fingerprint": fingerprint(texts)}


def check_split(run_dir: Path, name: str, texts: list[str], dataset: str) -> None:
    """A user error if the ``name`` split rebuilt now differs from the one recorded in ``run.json``."""
    path = run_dir / "run.json"
    if not path.is_file():
        return
    recorded = json.loads(path.read_text(encoding="utf-8")).get("data", {}).get(name, {}).get("fingerprint")
    if recorded is not None and recorded != fingerprint(texts):
        raise DataError(f"{dataset}: the {name} split differs from the one recorded in {path}")


def check_unchanged(config: Any, saved: Any, sections: Iterable[str], run_dir: Path) -> None:
    """``--resume``: a user error if a section that shapes the data or the weights differs from the saved
    one."""
    for section in sections:
        if getattr(saved, section) != getattr(config, section):
            raise ConfigError(f"--resume: the {section} config differs from {run_dir / 'config.json'}")


def validation_row(metrics: dict) -> dict:
    """A task's scores of the validation split as the trainer's row: ``loss`` becomes ``valid_loss``, beside
    the trainer's own ``train_loss`` (one name for the same thing in every task's metrics.csv)."""
    return {("valid_loss" if key == "loss" else key): value for key, value in metrics.items()}


def load_config_file(cls: type, path: str | Path, renamed: Mapping[str, str] | None = None) -> Any:
    """A task config from a ``config.json`` (a run's, or one written by ``--print-config``); keys of
    ``renamed`` in it load under their new names, so earlier runs keep working."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such config file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return config_from_dict(cls, rename_keys(cls, data, renamed or {}))
    except (ValueError, TypeError, AttributeError) as err:  # bad JSON, or keys this version does not know
        raise ConfigError(f"{path}: not a valid {cls.__name__} ({err})") from None


def read_texts(texts: list[str] | None, stream=None) -> list[str]:
    """The texts given, or else one per line of ``stream`` (stdin); blank lines are skipped and reported on
    stderr by line number (so outputs can be matched to inputs)."""
    if texts:
        return list(texts)
    lines = (stream or sys.stdin).read().splitlines()
    blank = [i for i, line in enumerate(lines, start=1) if not line.strip()]
    if blank and len(blank) < len(lines):
        shown = ", ".join(map(str, blank[:10])) + (f" and {len(blank) - 10} more" if len(blank) > 10 else "")
        print(f"note: skipped blank line{'s' * (len(blank) > 1)} {shown} of stdin", file=sys.stderr)
    kept = [line for line in lines if line.strip()]
    if not kept:
        raise DataError("predict: no texts; pass them as arguments or on stdin, one per line")
    return kept


def _has_nan(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_has_nan(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_has_nan(v) for v in value)
    return False


def to_json(result: Any, run_dir: str | Path) -> str:
    """``result`` as one line of JSON; a NaN or infinity in it is a user error (never printed as JSON)."""
    if _has_nan(result):
        raise DataError(
            f"{run_dir}: the model produced NaN or infinite values; its checkpoint may be corrupted "
            "(retrain it or restore the run folder)"
        )
    return json.dumps(result, ensure_ascii=False, allow_nan=False)


def check_finite(result: Any, run_dir: str | Path) -> Any:
    """``result`` unchanged, or the same user error as :func:`to_json` if it holds NaN (text output)."""
    to_json(result, run_dir)
    return result


def train_from_args(args, task) -> Any:
    """``rnnlab train TASK``: the task's defaults, ``--config FILE``'s or (``--resume``) the saved run's
    config, then the shortcut options and the KEY=VALUE overrides; ``--print-config`` prints it and stops.

    ``task`` is the task's module: it offers ``Config``, ``train``, ``RENAMED``, ``DERIVED`` and
    ``TRAIN_SHORTCUTS`` (``{"data": "data.dataset"}``: option dest -> config key). Returns what the task's
    ``train`` returns, or None after ``--print-config``.
    """
    renamed = getattr(task, "RENAMED", {})
    out = getattr(args, "out", None)
    if getattr(args, "config", None) is not None:
        config = load_config_file(task.Config, args.config, renamed)
    elif args.resume and out is not None and (out / "config.json").is_file():
        config = load_config_file(task.Config, out / "config.json", renamed)
    else:
        config = task.Config()
    shortcuts = getattr(task, "TRAIN_SHORTCUTS", {})
    given = [(key, getattr(args, dest, None)) for dest, key in shortcuts.items()]
    overrides = [f"{key}={value}" for key, value in given if value is not None]
    config = apply_overrides(config, [*overrides, *args.overrides], getattr(task, "DERIVED", ()), renamed)
    if args.print_config:
        print(json.dumps(config_to_dict(validate_config(config)), indent=2, ensure_ascii=False))
        return None
    if out is None:
        raise ConfigError("--out: expected the run folder to write, e.g. --out runs/mine (or --print-config)")
    return task.train(config, out, args.resume, args.overwrite)
