"""The ULMFiT fine-tuning schedule (rnnlab.training.finetune) and the trainer's hooks that carry it:
slanted triangular values against the paper's formula worked by hand, discriminative rates per group,
unfreezing order, and a real fit whose optimizer steps show each group's rate and frozen groups unchanged."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from rnnlab.training import Trainer, TrainerConfig
from rnnlab.training.finetune import (
    DiscriminativeLR,
    FinetuneConfig,
    GradualUnfreezing,
    SlantedTriangular,
    finetune_hooks,
)
from rnnlab.training.trainer import FitHooks

pytestmark = pytest.mark.usefixtures("one_thread")


def test_slanted_triangular_matches_the_papers_formula_by_hand():
    # Howard & Ruder (2018) eq. 3, T = 200, cut_frac 0.1, ratio 32: cut = 20, decay over cut * 9 = 180 steps
    stlr = SlantedTriangular(cut_frac=0.1, ratio=32)
    by_hand = {
        0: 1 / 32,  # p = 0
        4: (1 + 0.2 * 31) / 32,  # p = 4 / 20
        20: 1.0,  # p = 1: the peak, at the cut
        29: (1 + (1 - 9 / 180) * 31) / 32,  # p = 1 - (29 - 20) / 180
        110: (1 + 0.5 * 31) / 32,  # p = 1 - 90 / 180
        200: 1 / 32,  # p = 0 at T
    }
    for t, expected in by_hand.items():
        assert stlr(t, 200) == pytest.approx(expected, abs=1e-12), t
    values = [stlr(t, 200) for t in range(201)]
    assert max(values) == 1.0 and values.index(1.0) == 20
    assert all(a < b for a, b in zip(values[:20], values[1:21], strict=True))  # rises to the cut
    assert all(a > b for a, b in zip(values[20:-1], values[21:], strict=True))  # then falls


def test_slanted_triangular_guards_on_short_runs():
    stlr = SlantedTriangular()
    assert stlr(0, 5) == 1 / 32  # cut = floor(0.5) -> 1 step, not a division by zero
    assert stlr(1, 5) == 1.0
    assert min(stlr(t, 15) for t in range(16)) == 1 / 32  # never below 1 / ratio (p clamped at 0)
    with pytest.raises(ValueError, match="total_steps: expected an integer >= 1, received None"):
        stlr(0, None)


def test_discriminative_rates_divide_by_the_decay_per_group_down():
    assert DiscriminativeLR(2.6).scales(4) == pytest.approx([2.6**-3, 2.6**-2, 2.6**-1, 1.0])
    assert DiscriminativeLR(1.0).scales(3) == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="n_groups: expected >= 1, received 0"):
        DiscriminativeLR().scales(0)


def _stack() -> tuple[nn.Sequential, list[list[nn.Parameter]]]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 2))
    return model, [list(model[i].parameters()) for i in (0, 2, 4)]


def test_gradual_unfreezing_opens_the_top_group_first_then_one_more_each_epoch():
    model, groups = _stack()
    unfreeze = GradualUnfreezing(groups)
    trains = []
    for epoch in range(4):
        unfreeze(epoch)
        trains.append([all(p.requires_grad for p in g) for g in groups])
        assert all(len({p.requires_grad for p in g}) == 1 for g in groups)  # a group moves as one
    assert trains == [
        [False, False, True],
        [False, True, True],
        [True, True, True],
        [True, True, True],
    ]
    assert [unfreeze.trainable(e) for e in range(4)] == [1, 2, 3, 3]


def test_finetune_config_checks_its_fields():
    with pytest.raises(ValueError, match="schedule: expected one of slanted_triangular, trainer"):
        FinetuneConfig(schedule="cosine")
    with pytest.raises(ValueError, match="lr_decay: expected >= 1.0, received 0.5"):
        FinetuneConfig(lr_decay=0.5)
    with pytest.raises(ValueError, match=r"cut_frac: expected a value in \(0, 1\), received 1.0"):
        FinetuneConfig(cut_frac=1.0)


def _loss(model, batch):
    x, y = batch
    return nn.functional.cross_entropy(model(x), y)


def test_the_trainer_applies_the_hooks_per_group_per_step_and_freezes_by_epoch(tmp_path):
    model, groups = _stack()
    before = [[p.detach().clone() for p in g] for g in groups]
    torch.manual_seed(1)
    batches = [(torch.randn(8, 3), torch.randint(0, 2, (8,))) for _ in range(5)]
    config = FinetuneConfig()  # 2.6, unfreezing, slanted triangular (0.1, 32)
    hooks = finetune_hooks(groups, config)
    seen: list[tuple[int, list[float], list[bool]]] = []
    original = torch.optim.AdamW.step

    def spy(self, *args, **kwargs):  # each step: the lrs of the optimizer's groups and who has a gradient
        seen.append(
            ([g["lr"] for g in self.param_groups], [p.grad is not None for g in groups for p in g[:1]])
        )
        return original(self, *args, **kwargs)

    trainer_config = TrainerConfig(epochs=2, lr=0.1, patience=None, monitor="train_loss", monitor_mode="min")
    trainer_config.progress = False
    torch.optim.AdamW.step = spy
    try:
        Trainer(trainer_config, tmp_path).fit(model, batches, None, _loss, lambda m, b: {}, hooks=hooks)
    finally:
        torch.optim.AdamW.step = original
    assert len(seen) == 10  # 2 epochs x 5 batches
    stlr = SlantedTriangular()
    for step, (lrs, _) in enumerate(seen):
        # optimizer groups: (weight, bias) of each layer group, bottom to top
        expected = [0.1 * stlr(step, 10) * s for s in DiscriminativeLR(2.6).scales(3) for _ in range(2)]
        assert lrs == pytest.approx(expected, rel=1e-12), step
    assert [grads for _, grads in seen[:5]] == [[False, False, True]] * 5  # epoch 1: the top group only
    assert [grads for _, grads in seen[5:]] == [[False, True, True]] * 5  # epoch 2: one more
    after = [list(g) for g in groups]
    assert all(torch.equal(a, b) for a, b in zip(before[0], after[0], strict=True))  # never unfrozen
    assert not torch.equal(before[1][0], after[1][0]) and not torch.equal(before[2][0], after[2][0])


def test_without_hooks_the_trainer_is_unchanged_and_bad_groups_are_refused(tmp_path):
    model, groups = _stack()
    batches = [(torch.randn(4, 3), torch.randint(0, 2, (4,)))]
    config = TrainerConfig(epochs=1, patience=None, monitor="train_loss", monitor_mode="min", progress=False)
    bad = FitHooks(param_groups=[{"params": groups[0] + groups[1], "lr_scale": 1.0}])  # the head is missing
    with pytest.raises(
        ValueError, match=r"hooks.param_groups: expected every parameter of the model exactly"
    ):
        Trainer(config, tmp_path / "a").fit(model, batches, None, _loss, lambda m, b: {}, hooks=bad)
    result = Trainer(config, tmp_path / "b").fit(model, batches, None, _loss, lambda m, b: {})
    assert math.isfinite(result.history[0]["train_loss"])
