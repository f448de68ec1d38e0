"""The training loop. It knows nothing about any task: the caller gives ``step_fn`` (batch -> loss) and
``eval_fn`` (batches -> metrics).

Each step: lr from the schedule, ``step_fn``, backward, gradient-norm clipping, AdamW. Each epoch:
``set_epoch`` on the batches, train, evaluate, a row appended to ``run_dir/metrics.csv``, ``run_dir/best``
when the monitored metric improved, then ``run_dir/last`` (weights, optimizer, step, RNG states,
early-stopping state, history). ``resume=True`` restores all of it, so an interrupted run ends with the same
weights and metrics, bit for bit, as an uninterrupted one. Checkpoints are atomic, so after Ctrl-C
``run_dir/last`` holds the last complete epoch.

Multi-process training: under ``torchrun`` (``WORLD_SIZE > 1``) the trainer joins the process group (gloo on
CPU, NCCL on CUDA), wraps the model in DistributedDataParallel, and gives rank ``r`` every ``W``-th batch
(``r, r + W, ...``; a final incomplete group of ``W`` batches is dropped so that every rank takes the same
number of steps). Every rank therefore has to iterate the same batches in the same order: the trainer
broadcasts rank 0's RNG states at the start of each epoch, so shuffling driven by the global RNGs or by
``set_epoch`` agrees. ``step_fn`` must call ``model(...)`` (DDP synchronizes gradients through its forward).
The training loss is all-reduced; validation runs on rank 0 over the whole validation set, which keeps
non-decomposable metrics (F1, BLEU) exact, and its metrics are broadcast so that every rank takes the same
early-stopping decision. Only rank 0 writes files and shows the progress bar.

What the user sees (:mod:`rnnlab.training.report`): with ``progress=True``, a ``tqdm.auto`` bar per epoch on a
terminal or in a notebook, and one table row per epoch on stderr, unless the application's logging shows
the trainer's records itself; early stopping and Ctrl-C (with how to resume) are reported when they happen.
Every line is also a record on the ``rnnlab.training.trainer`` logger (``"epoch %d: %s"`` with the row as a
dict). A metric that is NaN or infinite is written as ``null`` in the checkpoints' JSON, with a warning.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import random
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from rnnlab.training.checkpoint import (
    CheckpointError,
    atomic_write_text,
    get_rng_state,
    load_checkpoint,
    save_checkpoint,
    set_rng_state,
)
from rnnlab.training.files import finite_json
from rnnlab.training.report import Report
from rnnlab.training.schedules import TimeBudget, budget_lr_factor

__all__ = ["TrainerConfig", "FitResult", "FitHooks", "Trainer", "lr_factor", "write_metrics_csv"]

logger = logging.getLogger(__name__)
SCHEDULES = ("constant", "cosine", "linear")
_ROW_KEYS = ("epoch", "train_loss", "lr", "time")  # columns the trainer writes before the validation metrics


@dataclass
class TrainerConfig:
    epochs: int = 10  # passes over train_batches
    lr: float = 2e-3  # peak learning rate of AdamW
    weight_decay: float = 0.01  # AdamW decoupled decay, applied to matrices only (not biases / norm gains)
    grad_clip: float | None = 1.0  # max global gradient L2 norm; None disables clipping
    lr_schedule: str = "cosine"  # "constant" | "cosine" | "linear" (to 0 at the last step, after warmup)
    warmup_steps: int = 0  # linear warmup from lr / warmup_steps to lr over this many optimizer steps
    patience: int | None = 3  # stop after this many epochs without improvement of `monitor`; None: never
    monitor: str = "accuracy"  # metric that picks run_dir/best and drives early stopping ("train_loss" too)
    monitor_mode: str = "max"  # "max" | "min": whether a larger or a smaller `monitor` is better
    seed: int = 0  # seeds torch, numpy and python's random at the start of fit
    progress: bool = (
        True  # bar (terminal / notebook) and per-epoch table on stderr, rank 0; False: logging only
    )
    log_every: int = 10  # refresh the bar's loss every this many steps (reading the loss syncs the device)
    device: str = "cpu"  # "cpu", "cuda", "cuda:1"...; under torchrun "cuda" means cuda:LOCAL_RANK
    # seconds of the trainer's clock (wall time) to train for: the lr schedule decays over the budget, not
    # over the steps, and training stops when it is spent (mid-epoch: that epoch is scored and saved);
    # `epochs` stays an upper bound. None: train `epochs` epochs (schedules.py)
    budget_s: float | None = None

    def __post_init__(self) -> None:
        checks = [
            (self.epochs >= 1, "epochs", ">= 1", self.epochs),
            (self.lr > 0, "lr", "> 0", self.lr),
            (self.weight_decay >= 0, "weight_decay", ">= 0", self.weight_decay),
            (self.grad_clip is None or self.grad_clip > 0, "grad_clip", "None or > 0", self.grad_clip),
            (self.lr_schedule in SCHEDULES, "lr_schedule", f"one of {SCHEDULES}", self.lr_schedule),
            (self.warmup_steps >= 0, "warmup_steps", ">= 0", self.warmup_steps),
            (self.patience is None or self.patience >= 1, "patience", "None or >= 1", self.patience),
            (self.monitor_mode in ("max", "min"), "monitor_mode", "'max' or 'min'", self.monitor_mode),
            (self.log_every >= 1, "log_every", ">= 1", self.log_every),
            (self.budget_s is None or self.budget_s > 0, "budget_s", "None or > 0", self.budget_s),
        ]
        for ok, name, expected, got in checks:
            if not ok:
                raise ValueError(f"TrainerConfig.{name} must be {expected}, got {got!r}")


@dataclass
class FitHooks:
    """Optional ways a caller shapes the optimisation without the trainer knowing why (fine-tuning:
    :mod:`rnnlab.training.finetune`). Each field left None keeps the trainer's own behaviour."""

    # [{"params": [...], "lr_scale": s}, ...]: every parameter of the model exactly once, frozen ones too;
    # group i trains at lr * factor * s (discriminative rates); weight decay splits each group as usual
    param_groups: list[dict] | None = None
    # (step, total_steps) -> multiplier of train.lr at that step; replaces lr_schedule and warmup_steps
    lr_fn: Callable[[int, int | None], float] | None = None
    on_epoch_start: Callable[[int], None] | None = None  # (epoch, 0-based) before its first step: unfreezing


@dataclass
class FitResult:
    best_metrics: dict[str, float]  # the row of the best epoch ({} if no epoch had a non-NaN monitor value)
    best_epoch: int  # 1-based epoch of best_metrics, as in metrics.csv; 0 if none
    history: list[dict]  # one row per completed epoch, as in metrics.csv
    stopped_early: bool  # True when patience ran out before `epochs`


@dataclass
class _LoopState:
    """Everything besides weights, optimizer and RNGs that a resumed run needs (saved in trainer_state.pt)."""

    epoch: int = 0  # completed epochs
    step: int = 0  # optimizer steps taken
    best_value: float | None = None
    best_epoch: int = 0
    best_metrics: dict = field(default_factory=dict)
    bad_epochs: int = 0  # epochs since the last improvement
    stopped_early: bool = False
    history: list = field(default_factory=list)
    elapsed: float = 0.0  # seconds of the clock spent (TrainerConfig.budget_s)


def lr_factor(step: int, total_steps: int | None, warmup_steps: int, schedule: str) -> float:
    """Multiplier of the peak lr at optimizer step ``step`` (0-based).

    Warmup: ``(step + 1) / warmup_steps`` for the first ``warmup_steps`` steps. Then, with
    ``p = (step - warmup) / (total - warmup)`` in [0, 1): constant ``1``, cosine ``(1 + cos(pi p)) / 2``,
    linear ``1 - p``.

    >>> [round(lr_factor(s, total_steps=6, warmup_steps=2, schedule="linear"), 2) for s in range(6)]
    [0.5, 1.0, 1.0, 0.75, 0.5, 0.25]
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    if total_steps is None:
        raise ValueError(f"lr_schedule={schedule!r} needs the total number of steps; got total_steps=None")
    p = min((step - warmup_steps) / max(1, total_steps - warmup_steps), 1.0)
    return 0.5 * (1.0 + math.cos(math.pi * p)) if schedule == "cosine" else 1.0 - p


def write_metrics_csv(path: str | Path, history: list[dict]) -> Path:
    """Write the history rows as CSV (columns in first-seen order), atomically."""
    fields: list[str] = []
    for row in history:
        fields += [k for k in row if k not in fields]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    return atomic_write_text(path, buf.getvalue())


def _shard(batches: Iterable, rank: int, world: int) -> Iterator:
    """Rank ``r`` of ``W`` gets batches ``r, r + W, ...``; a final incomplete group of ``W`` is dropped."""
    if world == 1:
        yield from batches
        return
    group = []
    for batch in batches:
        group.append(batch)
        if len(group) == world:
            yield group[rank]
            group = []


def _optimizer_groups(model: nn.Module, param_groups: list[dict] | None, weight_decay: float):
    """AdamW's groups and each one's lr scale. No decay for biases and norm gains (1-D): decaying them only
    pulls activations' offsets to zero. Without ``param_groups``: the trainable parameters, scale 1."""
    if param_groups is None:
        param_groups = [{"params": [p for p in model.parameters() if p.requires_grad], "lr_scale": 1.0}]
    else:
        given = [id(p) for g in param_groups for p in g["params"]]
        if sorted(given) != sorted(id(p) for p in model.parameters()):
            raise ValueError(
                f"hooks.param_groups: expected every parameter of the model exactly once "
                f"({sum(1 for _ in model.parameters())}), received {len(given)} ({len(set(given))} distinct)"
            )
    groups, scales = [], []
    for group in param_groups:
        for params, decay in (
            ([p for p in group["params"] if p.dim() >= 2], weight_decay),
            ([p for p in group["params"] if p.dim() < 2], 0),
        ):
            if params:
                groups.append({"params": params, "weight_decay": decay})
                scales.append(float(group.get("lr_scale", 1.0)))
    return groups, scales


def _call_set_epoch(batches: Iterable, epoch: int) -> None:
    for obj in (batches, getattr(batches, "batch_sampler", None), getattr(batches, "sampler", None)):
        if callable(getattr(obj, "set_epoch", None)):
            obj.set_epoch(epoch)
            return


def _improved(value: float, best: float | None, mode: str) -> bool:
    if math.isnan(value):
        return False
    return best is None or (value > best if mode == "max" else value < best)


class Trainer:
    """Fits models with AdamW; writes ``metrics.csv`` and the checkpoints ``last/`` and ``best/``.

    Args:
        config: the training options.
        run_dir: where ``metrics.csv``, ``best/`` and ``last/`` go.
        resume_hint: how the user resumes this run, quoted after Ctrl-C ("interrupted; ... resume with
            <hint>"). A command line passes its own spelling (``"--resume"``).
        clock: seconds for ``config.budget_s`` (``time.perf_counter`` by default; tests pass a fake one).
    """

    def __init__(
        self,
        config: TrainerConfig,
        run_dir: str | Path,
        resume_hint: str = "fit(..., resume=True)",
        clock: Callable[[], float] | None = None,
    ):
        if not isinstance(config, TrainerConfig):
            raise TypeError(f"config must be a TrainerConfig, got {type(config).__name__}")
        if not isinstance(resume_hint, str) or not resume_hint:
            raise TypeError(f"resume_hint must be a non-empty string, got {resume_hint!r}")
        self.config = config
        self.run_dir = Path(run_dir)
        self.resume_hint = resume_hint
        self.clock = clock or time.perf_counter

    def fit(
        self,
        model: nn.Module,
        train_batches: Iterable,
        valid_batches: Iterable | None,
        step_fn: Callable[[nn.Module, Any], torch.Tensor],
        eval_fn: Callable[[nn.Module, Iterable], dict[str, float]],
        meta: dict | None = None,
        resume: bool = False,
        restore_best: bool = False,
        hooks: FitHooks | None = None,
    ) -> FitResult:
        """Train ``model`` in place; see the module docstring for what happens each step and epoch.

        Args:
            model: the module to train (moved to ``config.device``).
            train_batches: re-iterable batches (list, DataLoader...), iterated once per epoch.
            valid_batches: batches for ``eval_fn``, or None (then ``monitor`` must be ``"train_loss"``).
            step_fn: ``(model, batch) -> scalar loss``; the model is in train mode.
            eval_fn: ``(model, valid_batches) -> {name: number}``; eval mode, under ``torch.no_grad()``.
            meta: JSON-serializable dict (config, vocabulary, labels) stored in every checkpoint's meta,
                beside the trainer's keys ``"epoch"``, ``"metrics"`` and ``"trainer"``.
            resume: continue from ``run_dir/last`` (raises CheckpointError if there is none).
            restore_best: load ``run_dir/best``'s weights into ``model`` before returning.
            hooks: parameter groups with lr scales, a per-step lr function and an epoch-start callback
                (:class:`FitHooks`); None: one lr for all, from ``lr_schedule``.
        """
        cfg = self.config
        self._hooks = hooks or FitHooks()
        meta = dict(meta or {})
        clash = sorted({"epoch", "metrics", "trainer"} & meta.keys())
        if clash:
            raise ValueError(f"meta keys {clash} are written by the trainer; rename them")
        try:
            json.dumps(meta)
        except (TypeError, ValueError) as e:
            raise TypeError(f"meta must be JSON-serializable: {e}") from e
        if valid_batches is None and cfg.monitor != "train_loss":
            raise ValueError(
                f"monitor={cfg.monitor!r} needs valid_batches; pass them or set monitor='train_loss', "
                "monitor_mode='min'"
            )
        created_group = int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized()
        if created_group:
            dist.init_process_group(backend="nccl" if cfg.device.startswith("cuda") else "gloo")
        try:
            return self._fit(
                model, train_batches, valid_batches, step_fn, eval_fn, meta, resume, restore_best
            )
        finally:
            if created_group:
                dist.destroy_process_group()

    def _fit(self, model, train_batches, valid_batches, step_fn, eval_fn, meta, resume, restore_best):
        cfg = self.config
        self._distributed = dist.is_available() and dist.is_initialized()
        self._rank, self._world = (dist.get_rank(), dist.get_world_size()) if self._distributed else (0, 1)
        device = torch.device(cfg.device)
        if self._distributed and device.type == "cuda" and device.index is None:
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(device)
        # Every rank gets the same seed: the batches must come in the same order on every rank (see above).
        random.seed(cfg.seed)
        np.random.seed(cfg.seed)
        torch.manual_seed(cfg.seed)
        model.to(device)
        # No decay for biases and norm gains (1-D): decaying them only pulls activations' offsets to zero.
        groups, self._lr_scales = _optimizer_groups(model, self._hooks.param_groups, cfg.weight_decay)
        optimizer = torch.optim.AdamW(groups, lr=cfg.lr)
        state = self._resume(model, optimizer, device) if resume else _LoopState()
        train_model = nn.parallel.DistributedDataParallel(model) if self._distributed else model
        sized = hasattr(train_batches, "__len__")
        total_steps = len(train_batches) // self._world * cfg.epochs if sized else None
        self._budget = None if cfg.budget_s is None else TimeBudget(cfg.budget_s, self.clock, state.elapsed)
        if total_steps is None and cfg.lr_schedule != "constant" and self._budget is None:
            raise ValueError(f"lr_schedule={cfg.lr_schedule!r} needs len(train_batches); use 'constant'")
        self._report = Report(logger, enabled=cfg.progress and self._rank == 0)
        if self._rank == 0:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self._report_nothing_to_do(state)
        saved_epoch = state.epoch  # the epoch run_dir/last holds
        try:
            for epoch in range(state.epoch, cfg.epochs):
                if state.stopped_early or self._budget_spent(state):
                    break
                if self._distributed:  # all ranks go on from rank 0's RNGs, so they see the same batches
                    rng = [get_rng_state()]
                    dist.broadcast_object_list(rng, src=0)
                    set_rng_state(rng[0])
                _call_set_epoch(train_batches, epoch)
                if self._hooks.on_epoch_start is not None:
                    self._hooks.on_epoch_start(epoch)
                t0 = time.perf_counter()
                loss, lr = self._train_epoch(
                    train_model, optimizer, train_batches, step_fn, state, total_steps
                )
                row = {"epoch": epoch + 1, "train_loss": loss, "lr": lr}
                metrics = self._evaluate(model, valid_batches, eval_fn)
                row.update(time=time.perf_counter() - t0, **metrics)
                if self._budget is not None:
                    state.elapsed = self._budget.elapsed  # scoring counts too
                improved = self._record(state, row)
                if self._rank == 0:
                    self._save(model, optimizer, state, meta, improved)
                    saved_epoch = state.epoch
                    if state.stopped_early:
                        self._report_early_stop(state)
        except KeyboardInterrupt:
            if self._rank == 0 and saved_epoch > 0:
                self._report.note(
                    logging.WARNING,
                    "interrupted; %s holds epoch %d (the last complete one); resume with %s",
                    self.run_dir / "last",
                    saved_epoch,
                    self.resume_hint,
                )
            elif self._rank == 0:
                self._report.note(logging.WARNING, "interrupted in epoch 1, before any epoch was saved")
            raise
        if restore_best and state.best_epoch > 0:
            if self._distributed:
                dist.barrier()  # rank 0 has finished writing run_dir/best
            model.load_state_dict(load_checkpoint(self.run_dir / "best", device=device).state_dict)
        return FitResult(dict(state.best_metrics), state.best_epoch, list(state.history), state.stopped_early)

    def _record(self, state: _LoopState, row: dict) -> bool:
        """Append the epoch's row, update the best / early-stopping state; True if ``monitor`` improved."""
        cfg = self.config
        if cfg.monitor not in row:
            raise ValueError(f"monitor={cfg.monitor!r} is not among the epoch's metrics {sorted(row)}")
        state.epoch = row["epoch"]
        state.history.append(row)
        improved = _improved(row[cfg.monitor], state.best_value, cfg.monitor_mode)
        if improved:
            state.best_value, state.best_epoch, state.best_metrics = row[cfg.monitor], row["epoch"], row
        state.bad_epochs = 0 if improved else state.bad_epochs + 1
        state.stopped_early = cfg.patience is not None and state.bad_epochs >= cfg.patience
        if self._rank == 0:
            self._report.epoch(row)
            bad = finite_json(row)[1]
            if bad:
                self._report.note(
                    logging.WARNING,
                    "epoch %d: %s not finite (NaN or infinity; written as null in the checkpoints' JSON)",
                    row["epoch"],
                    ", ".join(f"{k}={row[k]}" for k in bad),
                )
        return improved

    def _report_early_stop(self, state: _LoopState) -> None:
        cfg = self.config
        self._report.note(
            logging.INFO,
            "stopped early at epoch %d: %s did not improve for %d %s (best %s=%.4g at epoch %d)",
            state.epoch,
            cfg.monitor,
            state.bad_epochs,
            "epoch" if state.bad_epochs == 1 else "epochs",
            cfg.monitor,
            math.nan if state.best_value is None else state.best_value,
            state.best_epoch,
        )

    def _report_nothing_to_do(self, state: _LoopState) -> None:
        """Say so when a resumed run has nothing left to train (else ``fit`` would return in silence)."""
        if state.stopped_early:
            self._report.note(
                logging.INFO, "nothing to train: %s stopped early at epoch %d", self.run_dir, state.epoch
            )
        elif self.config.budget_s is not None and state.elapsed >= self.config.budget_s:
            self._report.note(
                logging.INFO,
                "nothing to train: %s has spent its budget_s=%g; raise it to train further",
                self.run_dir,
                self.config.budget_s,
            )
        elif state.epoch >= self.config.epochs:
            self._report.note(
                logging.INFO,
                "nothing to train: %s has completed %d of epochs=%d; raise epochs to train further",
                self.run_dir,
                state.epoch,
                self.config.epochs,
            )

    def _resume(self, model: nn.Module, optimizer: torch.optim.Optimizer, device: torch.device) -> _LoopState:
        """Load weights, optimizer, RNG and loop state from ``run_dir/last``."""
        ckpt = load_checkpoint(self.run_dir / "last", device=device)
        if ckpt.trainer_state is None:
            raise CheckpointError(f"cannot resume: {str(ckpt.path)!r} has no trainer_state.pt")
        model.load_state_dict(ckpt.state_dict)
        optimizer.load_state_dict(ckpt.trainer_state["optimizer"])
        set_rng_state(ckpt.trainer_state["rng"])
        saved = ckpt.meta.get("trainer", {}).get("config", {})
        ignored = {"epochs", "patience", "progress", "log_every", "device"}
        diff = {
            k: (saved.get(k), v)
            for k, v in asdict(self.config).items()
            if k not in ignored and saved.get(k) != v
        }
        if diff:
            # A string, not a dict: dict arguments mean per-epoch rows to handlers (the CLI tabulates them).
            changes = ", ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in diff.items())
            logger.warning("resuming with a changed config (%s); results will differ", changes)
        return _LoopState(**ckpt.trainer_state["loop"])

    def _train_epoch(self, model, optimizer, batches, step_fn, state: _LoopState, total_steps: int | None):
        """One pass over this rank's batches; returns (mean training loss over all ranks, last lr)."""
        cfg = self.config
        model.train()
        device = next(model.parameters()).device
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        n, lr = 0, cfg.lr
        total = total_steps // cfg.epochs if total_steps is not None else None
        desc = f"epoch {state.epoch + 1}/{cfg.epochs}"
        with self._report.bar(total, desc) as bar:
            for batch in _shard(batches, self._rank, self._world):
                if self._budget is not None:
                    if self._budget_spent(state) and n:  # the epoch ends here, and is scored and saved
                        break
                    progress = state.elapsed / cfg.budget_s
                    factor = budget_lr_factor(state.step, progress, cfg.warmup_steps, cfg.lr_schedule)
                else:
                    factor = lr_factor(state.step, total_steps, cfg.warmup_steps, cfg.lr_schedule)
                if self._hooks.lr_fn is not None:
                    factor = self._hooks.lr_fn(state.step, total_steps)
                lr = cfg.lr * factor
                for group, scale in zip(optimizer.param_groups, self._lr_scales, strict=True):
                    group["lr"] = lr * scale
                optimizer.zero_grad(set_to_none=True)
                loss = step_fn(model, batch)
                if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
                    got = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
                    raise TypeError(f"step_fn must return a scalar loss tensor, got {got}")
                loss.backward()
                if cfg.grad_clip is not None:
                    nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                optimizer.step()
                state.step += 1
                loss_sum += loss.detach()
                n += 1
                bar.update(1)
                if not bar.disable and n % cfg.log_every == 0:
                    bar.set_postfix(loss=f"{loss_sum.item() / n:.4f}", lr=f"{lr:.2e}")
        if n == 0:
            raise ValueError(f"train_batches gave rank {self._rank} of {self._world} no batch in this epoch")
        totals = torch.stack([loss_sum, torch.tensor(float(n), dtype=torch.float64, device=device)])
        if self._distributed:
            dist.all_reduce(totals)
        return (totals[0] / totals[1]).item(), lr

    def _budget_spent(self, state: _LoopState) -> bool:
        """Records the clock's elapsed seconds in ``state`` (saved with last/); True once the budget is spent.
        Under DDP rank 0's clock counts for every rank: all take the same steps at the same lr."""
        if self._budget is None:
            return False
        elapsed = [self._budget.elapsed]
        if self._distributed:
            dist.broadcast_object_list(elapsed, src=0)
        state.elapsed = elapsed[0]
        return state.elapsed >= self._budget.budget_s

    def _evaluate(self, model, valid_batches, eval_fn) -> dict[str, float]:
        """``eval_fn`` on rank 0 (eval mode, no_grad), checked, and broadcast to all ranks."""
        if valid_batches is None:
            return {}
        metrics = None
        if self._rank == 0:
            model.eval()
            with torch.no_grad():
                raw = eval_fn(model, valid_batches)
            if not isinstance(raw, dict):
                raise TypeError(f"eval_fn must return a dict of metrics, got {type(raw).__name__}")
            clash = sorted(set(_ROW_KEYS) & raw.keys())
            if clash:
                raise ValueError(f"eval_fn returned metric names {clash} that the trainer's own columns use")
            metrics = {str(k): float(v) for k, v in raw.items()}
        if self._distributed:
            box = [metrics]
            dist.broadcast_object_list(box, src=0)
            metrics = box[0]
        return metrics

    def _save(self, model, optimizer, state: _LoopState, meta: dict, improved: bool) -> None:
        """metrics.csv, then best/ (if improved), then last/: a crash in between never leaves last/ naming a
        best epoch that best/ does not hold."""
        write_metrics_csv(self.run_dir / "metrics.csv", state.history)
        trainer_meta = {
            "config": asdict(self.config),
            "world_size": self._world,
            "best_epoch": state.best_epoch,
            "best_metrics": state.best_metrics,
            "bad_epochs": state.bad_epochs,
            "stopped_early": state.stopped_early,
            "history": state.history,
        }
        ckpt_meta = {**meta, "epoch": state.epoch, "metrics": state.history[-1], "trainer": trainer_meta}
        ckpt_meta = finite_json(ckpt_meta)[0]  # NaN -> null; _record has warned once, at the epoch it came
        if improved:
            save_checkpoint(self.run_dir / "best", model, ckpt_meta)
        trainer_state = {"optimizer": optimizer.state_dict(), "loop": asdict(state), "rng": get_rng_state()}
        save_checkpoint(self.run_dir / "last", model, ckpt_meta, optimizer_state=trainer_state)
