"""The trainer on a tiny seeded problem: bit-exact resume, Ctrl-C safety, early stopping, schedules, clipping,
files written, and a real two-process gloo run."""

from __future__ import annotations

import csv
import math
import os
import socket
import time

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.optim.optimizer import register_optimizer_step_pre_hook

from rnnlab.training import CheckpointError, Trainer, TrainerConfig, load_checkpoint, lr_factor

pytestmark = pytest.mark.usefixtures("one_thread")


class Batches:
    """A tiny loader over (index, x, y) batches.

    ``seeded=True``: the order comes from a generator seeded by ``set_epoch`` (like a DistributedSampler).
    ``seeded=False``: the order comes from numpy's global RNG, which the trainer must save and restore.
    """

    def __init__(self, x, y, batch_size, seeded=True):
        self.x, self.y, self.batch_size, self.seeded = x, y, batch_size, seeded
        self.epochs_seen = []

    def set_epoch(self, epoch):
        self.epochs_seen.append(epoch)

    def __len__(self):
        return math.ceil(len(self.x) / self.batch_size)

    def __iter__(self):
        if self.seeded:
            order = torch.randperm(
                len(self.x), generator=torch.Generator().manual_seed(100 + self.epochs_seen[-1])
            )
        else:
            order = torch.from_numpy(np.random.permutation(len(self.x)))
        for i in range(0, len(self.x), self.batch_size):
            idx = order[i : i + self.batch_size]
            yield idx, self.x[idx], self.y[idx]


def make_data(n=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 5, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).long()
    return x, y


def make_model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Dropout(0.3), nn.Linear(16, 2))


def step_fn(model, batch):
    _, x, y = batch
    return F.cross_entropy(model(x), y)


def eval_fn(model, batches):
    correct = total = loss = 0.0
    for _, x, y in batches:
        logits = model(x)
        loss += F.cross_entropy(logits, y, reduction="sum").item()
        correct += (logits.argmax(-1) == y).sum().item()
        total += len(y)
    return {"accuracy": correct / total, "loss": loss / total}


def config(**kw):
    base = dict(epochs=4, lr=0.05, progress=False, patience=None, lr_schedule="cosine", warmup_steps=3)
    return TrainerConfig(**{**base, **kw})


def fit(run_dir, cfg, seeded=True, resume=False, model_seed=0, step=step_fn, **kw):
    model = make_model(model_seed)
    train = Batches(*make_data(48, 0), batch_size=8, seeded=seeded)
    valid = Batches(*make_data(16, 1), batch_size=8)
    valid.set_epoch(0)
    result = Trainer(cfg, run_dir).fit(model, train, valid, step, eval_fn, resume=resume, **kw)
    return model, result, train


def without_time(history):
    return [{k: v for k, v in row.items() if k != "time"} for row in history]


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.mark.parametrize("seeded", [True, False], ids=["set_epoch", "global_rng"])
def test_resume_after_two_epochs_is_bit_exact(tmp_path, seeded):
    cfg = config(lr_schedule="constant", warmup_steps=0)  # a 2-epoch run then has the 4-epoch run's schedule
    straight, r_straight, _ = fit(tmp_path / "a", cfg, seeded)
    _, r_half, _ = fit(tmp_path / "b", config(epochs=2, lr_schedule="constant", warmup_steps=0), seeded)
    assert len(r_half.history) == 2
    resumed, r_resumed, train = fit(tmp_path / "b", cfg, seeded, resume=True, model_seed=99)
    assert train.epochs_seen == [2, 3]  # the resumed run continues at epoch index 2
    assert_same_weights(resumed.state_dict(), straight.state_dict())
    assert without_time(r_resumed.history) == without_time(r_straight.history)
    assert r_resumed.best_epoch == r_straight.best_epoch
    assert r_straight.history[-1]["train_loss"] < r_straight.history[0]["train_loss"]
    assert_same_weights(
        load_checkpoint(tmp_path / "a" / "best").state_dict,
        load_checkpoint(tmp_path / "b" / "best").state_dict,
    )


def test_ctrl_c_mid_epoch_keeps_last_checkpoint_and_resume_matches(tmp_path):
    cfg = config()  # cosine with warmup: the resumed run must also continue the schedule at the right step
    straight, r_straight, _ = fit(tmp_path / "a", cfg)
    calls = []

    def interrupted_step(model, batch):
        calls.append(1)
        if len(calls) == 6 * 2 + 3:  # 6 steps per epoch: Ctrl-C on the 3rd step of epoch 3
            raise KeyboardInterrupt
        return step_fn(model, batch)

    with pytest.raises(KeyboardInterrupt):
        fit(tmp_path / "b", cfg, step=interrupted_step)
    last = load_checkpoint(tmp_path / "b" / "last")
    assert last.meta["epoch"] == 2
    assert last.trainer_state["loop"]["step"] == 12
    with open(tmp_path / "b" / "metrics.csv") as f:
        assert [row["epoch"] for row in csv.DictReader(f)] == ["1", "2"]
    resumed, r_resumed, _ = fit(tmp_path / "b", cfg, resume=True, model_seed=5)
    assert_same_weights(resumed.state_dict(), straight.state_dict())
    assert without_time(r_resumed.history) == without_time(r_straight.history)


def scripted_eval(values):
    """An eval_fn returning the next value of a script each epoch."""
    it = iter(values)
    return lambda model, batches: {"score": next(it)}


@pytest.mark.parametrize(
    "mode, values, best_epoch", [("max", [0.5, 0.7, 0.6, 0.65, 0.9], 2), ("min", [3, 2, 1, 1, 4, 0], 3)]
)
def test_early_stopping_and_best_checkpoint(tmp_path, mode, values, best_epoch):
    cfg = config(epochs=6, patience=2, monitor="score", monitor_mode=mode)
    model = make_model()
    train = Batches(*make_data(16, 0), batch_size=8)
    result = Trainer(cfg, tmp_path).fit(model, train, [], step_fn, scripted_eval(values), restore_best=True)
    assert result.stopped_early
    assert result.best_epoch == best_epoch
    assert result.best_metrics["score"] == values[best_epoch - 1]
    assert len(result.history) == best_epoch + 2  # two epochs without improvement, then stop
    best = load_checkpoint(tmp_path / "best")
    assert best.meta["epoch"] == best_epoch and best.trainer_state is None
    assert_same_weights(model.state_dict(), best.state_dict)  # restore_best loaded it
    last = load_checkpoint(tmp_path / "last")
    assert last.meta["trainer"]["stopped_early"] and last.meta["trainer"]["best_epoch"] == best_epoch
    # Resuming a run that stopped early trains no further.
    again = Trainer(cfg, tmp_path).fit(make_model(), train, [], step_fn, scripted_eval([]), resume=True)
    assert again.stopped_early and again.history == result.history


def test_files_and_meta_written_each_epoch(tmp_path):
    meta = {"vocab": ["<pad>", "好", "坏"], "labels": ["neg", "pos"], "model": {"hidden": 16}}
    _, result, _ = fit(tmp_path, config(epochs=3), meta=meta)
    with open(tmp_path / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["epoch", "train_loss", "lr", "time", "accuracy", "loss"]
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    for row, hist in zip(rows, result.history, strict=True):
        assert float(row["train_loss"]) == hist["train_loss"] and float(row["accuracy"]) == hist["accuracy"]
    last = load_checkpoint(tmp_path / "last")
    assert last.meta["vocab"] == meta["vocab"] and last.meta["model"] == {"hidden": 16}
    assert last.meta["epoch"] == 3 and last.meta["metrics"] == result.history[-1]
    assert last.meta["trainer"]["config"]["lr"] == 0.05
    assert set(last.trainer_state) == {"optimizer", "loop", "rng"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best", "last", "metrics.csv"]


def test_lr_schedule_values_and_their_use(tmp_path):
    # warmup 2 of 10 steps, then p = (step - 2) / 8
    assert [lr_factor(s, 10, 2, "cosine") for s in (0, 1, 2)] == [0.5, 1.0, 1.0]
    assert lr_factor(6, 10, 2, "cosine") == pytest.approx(0.5)  # p = 1/2
    assert lr_factor(9, 10, 2, "cosine") == pytest.approx(0.5 * (1 + math.cos(math.pi * 7 / 8)))
    assert lr_factor(9, 10, 2, "linear") == pytest.approx(1 / 8)
    assert lr_factor(9, 10, 0, "constant") == 1.0
    with pytest.raises(ValueError, match="total_steps=None"):
        lr_factor(3, None, 0, "cosine")
    _, result, _ = fit(tmp_path, config(epochs=2, lr_schedule="linear", warmup_steps=3))
    # 6 steps per epoch, 12 in all; the row's lr is that of the epoch's last step (5, 11)
    assert [r["lr"] for r in result.history] == pytest.approx([0.05 * (1 - 2 / 9), 0.05 * (1 - 8 / 9)])


def test_gradient_clipping_and_weight_decay_groups(tmp_path):
    seen = []

    def record(optimizer, args, kwargs):
        grads = [p.grad for g in optimizer.param_groups for p in g["params"]]
        seen.append((torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])).item(), optimizer))

    def big_loss(model, batch):
        return 100.0 * step_fn(model, batch)

    handle = register_optimizer_step_pre_hook(record)
    try:
        fit(tmp_path / "clip", config(epochs=1, grad_clip=0.01), step=big_loss)
        clipped = [n for n, _ in seen]
        seen.clear()
        fit(tmp_path / "free", config(epochs=1, grad_clip=None), step=big_loss)
        free = [n for n, _ in seen]
    finally:
        handle.remove()
    assert len(clipped) == len(free) == 6
    assert max(clipped) <= 0.01 * (1 + 1e-5)
    assert min(free) > 0.01
    decay, no_decay = seen[0][1].param_groups
    assert [p.dim() for p in decay["params"]] == [2, 2] and decay["weight_decay"] == 0.01
    assert [p.dim() for p in no_decay["params"]] == [1, 1] and no_decay["weight_decay"] == 0.0


def test_argument_errors(tmp_path):
    with pytest.raises(ValueError, match=r"lr_schedule must be one of .* got 'step'"):
        TrainerConfig(lr_schedule="step")
    with pytest.raises(ValueError, match="monitor_mode"):
        TrainerConfig(monitor_mode="up")
    with pytest.raises(ValueError, match="'nope' is not among"):
        fit(tmp_path / "a", config(monitor="nope"))
    with pytest.raises(TypeError, match=r"scalar loss tensor, got \(8,\)"):
        fit(tmp_path / "b", config(), step=lambda m, b: F.cross_entropy(m(b[1]), b[2], reduction="none"))
    with pytest.raises(CheckpointError, match="does not exist"):
        fit(tmp_path / "c", config(), resume=True)
    with pytest.raises(ValueError, match="written by the trainer"):
        fit(tmp_path / "d", config(), meta={"epoch": 3})
    with pytest.raises(ValueError, match="needs valid_batches"):
        Trainer(config(), tmp_path / "e").fit(make_model(), [], None, step_fn, eval_fn)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank, world, port, tmp):
    os.environ.update(WORLD_SIZE=str(world), RANK=str(rank), LOCAL_RANK=str(rank))
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    model = make_model(seed=rank)  # different initial weights: DDP must broadcast rank 0's
    train = Batches(*make_data(48, 0), batch_size=6, seeded=False)  # 8 batches: 4 per rank
    seen = []

    def recording_step(model, batch):
        seen.append(batch[0].tolist())
        return step_fn(model, batch)

    run_dir = os.path.join(tmp, f"run{rank}")  # only rank 0 may write: run1 must never appear
    valid = Batches(*make_data(16, 1), batch_size=8)
    valid.set_epoch(0)
    result = Trainer(config(epochs=2), run_dir).fit(model, train, valid, recording_step, eval_fn)
    torch.save(
        {"state": model.state_dict(), "history": without_time(result.history), "seen": seen},
        os.path.join(tmp, f"rank{rank}.pt"),
    )


@pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()), reason="gloo backend unavailable")
@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")  # Python >= 3.12 warns on fork with threads
def test_two_process_gloo_training_keeps_ranks_identical(tmp_path):
    # fork: the children inherit the imported torch (seconds saved); no process group exists in the parent
    method = "fork" if "fork" in torch.multiprocessing.get_all_start_methods() else "spawn"
    ctx = torch.multiprocessing.start_processes(
        _ddp_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=False, start_method=method
    )
    deadline = time.monotonic() + 60
    while not ctx.join(timeout=1):
        if time.monotonic() > deadline:
            for p in ctx.processes:
                p.kill()
            pytest.fail("the two-process run did not finish within 60 s")
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert_same_weights(r0["state"], r1["state"])
    assert r0["history"] == r1["history"]  # all-reduced loss, broadcast metrics
    assert r0["history"][-1]["train_loss"] < r0["history"][0]["train_loss"]
    for epoch in range(2):  # per epoch, the two ranks saw disjoint halves covering all 48 examples
        a = sum(r0["seen"][4 * epoch : 4 * epoch + 4], [])
        b = sum(r1["seen"][4 * epoch : 4 * epoch + 4], [])
        assert not set(a) & set(b) and sorted(a + b) == list(range(48))
    assert (tmp_path / "run0" / "last").is_dir() and not (tmp_path / "run1").exists()
    assert load_checkpoint(tmp_path / "run0" / "last").meta["trainer"]["world_size"] == 2
