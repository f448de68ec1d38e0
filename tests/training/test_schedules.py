"""The time-budget schedule: the lr decays to zero over the budget's seconds, not over a step count; the
trainer stops when the budget is spent, and a resumed budgeted run ends where an unbroken one does. The clock
is a fake one that a step advances by hand, so these tests take no real time."""

from __future__ import annotations

import csv
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rnnlab.training import Trainer, TrainerConfig
from rnnlab.training.schedules import TimeBudget, budget_lr_factor

pytestmark = pytest.mark.usefixtures("one_thread")


class FakeClock:
    """Seconds that pass only when ``tick`` is called."""

    def __init__(self) -> None:
        self.t = 100.0  # not zero: elapsed is measured from the clock's value at the start

    def __call__(self) -> float:
        return self.t

    def tick(self, seconds: float = 1.0) -> None:
        self.t += seconds


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        ("constant", [1.0, 1.0, 1.0, 1.0, 1.0]),
        ("linear", [1.0, 0.75, 0.5, 0.25, 0.0]),
        ("cosine", [1.0, (1 + math.cos(math.pi / 4)) / 2, 0.5, (1 + math.cos(3 * math.pi / 4)) / 2, 0.0]),
    ],
)
def test_the_factor_is_a_function_of_the_budget_spent(schedule, expected):
    shares = (0, 0.25, 0.5, 0.75, 1)
    got = [budget_lr_factor(step=50, progress=p, warmup_steps=10, schedule=schedule) for p in shares]
    assert got == pytest.approx(expected)
    assert budget_lr_factor(50, 1.7, 10, schedule) == pytest.approx(expected[-1])  # past the budget: capped


def test_warmup_counts_steps_then_the_clock_takes_over():
    assert [budget_lr_factor(s, 0.5, 4, "linear") for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 0.5, 0.5]
    with pytest.raises(ValueError, match="schedule: expected one of"):
        budget_lr_factor(0, 0.0, 0, "step")


def test_time_budget_reads_its_clock_and_carries_earlier_seconds():
    clock = FakeClock()
    budget = TimeBudget(10.0, clock, elapsed=4.0)
    assert budget.elapsed == 4.0 and budget.progress == pytest.approx(0.4) and not budget.spent
    clock.tick(5.0)
    assert budget.elapsed == 9.0 and not budget.spent
    clock.tick(2.0)
    assert budget.spent and budget.progress == 1.0
    for bad in (0, -1.0, math.inf):
        with pytest.raises(ValueError, match="budget_s: expected a finite number of seconds > 0"):
            TimeBudget(bad, clock)


def _problem():
    torch.manual_seed(0)
    x = torch.randn(64, 4)
    y = (x.sum(1) > 0).long()
    return [(x[i : i + 8], y[i : i + 8]) for i in range(0, 64, 8)]  # 8 batches an epoch


def _fit(tmp_path, clock, budget_s=20.0, epochs=100, resume=False, interrupt_after=None, schedule="linear"):
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    lrs = []

    def step(m, batch):
        clock.tick(1.0)  # every step takes one second of the fake clock
        x, y = batch
        return F.cross_entropy(m(x), y)

    def evaluate(m, batches):
        return {"valid_loss": sum(float(F.cross_entropy(m(x), y)) for x, y in batches) / len(batches)}

    config = TrainerConfig(
        epochs=epochs, lr=0.1, lr_schedule=schedule, warmup_steps=0, patience=None, monitor="valid_loss",
        monitor_mode="min", progress=False, budget_s=budget_s,
    )  # fmt: skip
    trainer = Trainer(config, tmp_path, clock=clock)
    original = torch.optim.AdamW.step

    def record_lr(self, *a, **kw):
        lrs.append(self.param_groups[0]["lr"])
        return original(self, *a, **kw)

    batches = _problem()
    torch.optim.AdamW.step = record_lr
    try:
        if interrupt_after is not None:
            original_save = Trainer._save

            def save_then_stop(self, *a, **kw):
                original_save(self, *a, **kw)
                if len(self_history(tmp_path)) >= interrupt_after:
                    raise KeyboardInterrupt

            trainer._save = save_then_stop.__get__(trainer)
            with pytest.raises(KeyboardInterrupt):
                trainer.fit(model, batches, batches, step, evaluate, resume=resume)
        else:
            trainer.fit(model, batches, batches, step, evaluate, resume=resume)
    finally:
        torch.optim.AdamW.step = original
    return model, lrs


def self_history(folder):
    with open(folder / "metrics.csv") as f:
        return list(csv.DictReader(f))


def test_training_stops_when_the_budget_is_spent_with_the_lr_decayed(tmp_path):
    clock = FakeClock()
    _, lrs = _fit(tmp_path, clock, budget_s=20.0)
    # the check before step k sees k seconds spent: steps at 0..19 s, the 21st check finds 20 s and stops
    assert len(lrs) == 20
    assert lrs == pytest.approx([0.1 * (1 - k / 20) for k in range(20)])  # linear over seconds, to zero
    rows = self_history(tmp_path)
    assert len(rows) == 3  # 8 + 8 + 4 steps: the cut epoch is scored and saved too
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]


def test_the_budget_not_the_epoch_count_sets_the_decay(tmp_path):
    """Twice the budget: twice the steps, and the same lr at the same share of the budget."""
    short = _fit(tmp_path / "a", FakeClock(), budget_s=16.0)[1]
    long = _fit(tmp_path / "b", FakeClock(), budget_s=32.0)[1]
    assert len(short) == 16 and len(long) == 32
    assert long[::2] == pytest.approx(short)


def test_epochs_stay_an_upper_bound(tmp_path):
    _, lrs = _fit(tmp_path, FakeClock(), budget_s=1000.0, epochs=2)
    assert len(lrs) == 16 and lrs[-1] > 0.09  # stopped by epochs=2, far from the budget's end


def test_a_resumed_budgeted_run_ends_as_an_unbroken_one(tmp_path):
    whole, _ = _fit(tmp_path / "whole", FakeClock(), budget_s=20.0)
    clock = FakeClock()
    _fit(tmp_path / "cut", clock, budget_s=20.0, interrupt_after=1)
    assert len(self_history(tmp_path / "cut")) == 1
    clock = FakeClock()  # a new process: a new clock, the spent seconds come from last/
    resumed, lrs = _fit(tmp_path / "cut", clock, budget_s=20.0, resume=True)
    assert len(lrs) == 12  # 20 s budget - 8 s spent in epoch 1
    for a, b in zip(whole.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b)

    def rows(folder):
        return [{k: v for k, v in r.items() if k != "time"} for r in self_history(folder)]

    assert rows(tmp_path / "cut") == rows(tmp_path / "whole") and len(rows(tmp_path / "whole")) == 3


def test_a_spent_budget_has_nothing_left_to_train(tmp_path, caplog):
    caplog.set_level("INFO", logger="rnnlab.training.trainer")
    _fit(tmp_path, FakeClock(), budget_s=8.0)
    model, lrs = _fit(tmp_path, FakeClock(), budget_s=8.0, resume=True)
    assert lrs == [] and "spent its budget_s=8" in caplog.text


def test_a_bad_budget_names_the_field():
    with pytest.raises(ValueError, match="TrainerConfig.budget_s must be None or > 0, got -5"):
        TrainerConfig(budget_s=-5)
