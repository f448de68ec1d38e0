"""Fine-tuning a pretrained model the ULMFiT way: discriminative learning rates, gradual unfreezing and the
slanted triangular schedule, as named objects with the paper's parameters.

Howard & Ruder (2018), Universal Language Model Fine-tuning for Text Classification, section 3.2 / 3.3:

* **Discriminative fine-tuning** (:class:`DiscriminativeLR`): the model is cut into layer groups, bottom
  (embedding) to top (the classifier's head); the top group trains at the peak rate ``eta`` and each group
  below at the rate of the one above divided by ``decay`` (2.6 in the paper): group ``g`` of ``G`` gets
  ``eta / decay ** (G - 1 - g)``.
* **Slanted triangular learning rates** (:class:`SlantedTriangular`), eq. (3), with ``T`` training steps::

      cut = floor(T * cut_frac)
      p   = t / cut                                     if t < cut
            1 - (t - cut) / (cut * (1 / cut_frac - 1))  otherwise
      eta_t = eta_max * (1 + p * (ratio - 1)) / ratio

  ``cut_frac = 0.1`` and ``ratio = 32``: a short linear rise from ``eta_max / 32`` to ``eta_max``, then a long
  linear decay back to ``eta_max / 32``.
* **Gradual unfreezing** (:class:`GradualUnfreezing`): in the first epoch only the top group trains; each
  further epoch unfreezes the next group down, until all train.

The trainer (:class:`rnnlab.training.trainer.Trainer`) knows nothing of this: :func:`finetune_hooks` turns
the three into its :class:`~rnnlab.training.trainer.FitHooks` (parameter groups with lr scales, a per-step
lr function and an epoch-start callback). The groups come from the model (e.g.
:meth:`rnnlab.models.classifier.RecurrentClassifier.layer_groups`), so this module stays task-agnostic.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from torch import nn

from rnnlab.training.trainer import FitHooks

__all__ = [
    "FinetuneConfig",
    "SlantedTriangular",
    "DiscriminativeLR",
    "GradualUnfreezing",
    "finetune_hooks",
    "SCHEDULES",
]

SCHEDULES = ("slanted_triangular", "trainer")  # trainer: the TrainerConfig's own lr_schedule and warmup


@dataclass
class FinetuneConfig:
    """How a pretrained model is fine-tuned (applied only when the model starts from pretrained weights)."""

    # lr of each layer group = lr of the group above / lr_decay (the paper's 2.6); 1.0: one rate for all
    lr_decay: float = field(default=2.6, metadata={"min": 1.0})
    gradual_unfreezing: bool = True  # epoch 1 trains the top group only; each epoch unfreezes one more
    # "slanted_triangular" (Howard & Ruder 2018, eq. 3) or "trainer" (train.lr_schedule, train.warmup_steps)
    schedule: str = field(default="slanted_triangular", metadata={"choices": SCHEDULES})
    cut_frac: float = field(default=0.1, metadata={"min": 0.001, "max": 0.999})  # share of steps rising
    ratio: float = field(
        default=32.0, metadata={"min": 1.0}
    )  # how much smaller the lowest lr is than the peak

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule: expected one of {', '.join(SCHEDULES)}, received {self.schedule!r}")
        if not self.lr_decay >= 1.0:
            raise ValueError(f"lr_decay: expected >= 1.0, received {self.lr_decay!r}")
        if not 0.0 < self.cut_frac < 1.0:
            raise ValueError(f"cut_frac: expected a value in (0, 1), received {self.cut_frac!r}")
        if not self.ratio >= 1.0:
            raise ValueError(f"ratio: expected >= 1.0, received {self.ratio!r}")


@dataclass(frozen=True)
class SlantedTriangular:
    """The slanted triangular learning rate (Howard & Ruder 2018, eq. 3) as a multiplier of the peak lr.

    ``schedule(t, T)`` for step ``t`` (0-based) of ``T``. Two guards the paper's formula needs on short runs:
    ``cut`` is at least 1 step, and ``p`` stops at 0 (where ``floor`` made ``cut`` smaller than
    ``T * cut_frac``, the decay would otherwise pass below ``1 / ratio`` before step ``T``).

    Example (T = 100: cut = 10):
        >>> stlr = SlantedTriangular()
        >>> [round(stlr(t, 100), 5) for t in (0, 5, 10, 55, 100)]
        [0.03125, 0.51562, 1.0, 0.51562, 0.03125]
    """

    cut_frac: float = 0.1
    ratio: float = 32.0

    def __call__(self, step: int, total_steps: int | None) -> float:
        if total_steps is None or total_steps < 1:
            raise ValueError(f"total_steps: expected an integer >= 1, received {total_steps!r}")
        t, T = step, total_steps
        cut = max(1, math.floor(T * self.cut_frac))
        p = t / cut if t < cut else 1.0 - (t - cut) / (cut * (1.0 / self.cut_frac - 1.0))
        p = max(p, 0.0)
        return (1.0 + p * (self.ratio - 1.0)) / self.ratio


@dataclass(frozen=True)
class DiscriminativeLR:
    """Per-group lr scales: the top group 1, each lower group the one above divided by ``decay``.

    Example:
        >>> DiscriminativeLR(2.0).scales(3)   # embedding, encoder, head
        [0.25, 0.5, 1.0]
    """

    decay: float = 2.6

    def scales(self, n_groups: int) -> list[float]:
        """Scales of ``n_groups`` groups ordered bottom to top."""
        if n_groups < 1:
            raise ValueError(f"n_groups: expected >= 1, received {n_groups}")
        return [self.decay ** -(n_groups - 1 - g) for g in range(n_groups)]


class GradualUnfreezing:
    """Freeze all but the top group, then unfreeze one more group down at the start of each epoch.

    ``groups`` are parameter lists ordered bottom to top; calling ``unfreezing(epoch)`` (0-based) sets
    ``requires_grad`` so that the top ``epoch + 1`` groups train. A frozen parameter gets no gradient, so
    AdamW leaves it (and its weight decay) alone until it is unfrozen.
    """

    def __init__(self, groups: Sequence[Sequence[nn.Parameter]]) -> None:
        self.groups = [list(g) for g in groups]

    def trainable(self, epoch: int) -> int:
        """How many groups (from the top) train in ``epoch`` (0-based)."""
        return min(len(self.groups), epoch + 1)

    def __call__(self, epoch: int) -> None:
        first = len(self.groups) - self.trainable(epoch)  # groups [first, G) train
        for g, params in enumerate(self.groups):
            for p in params:
                p.requires_grad_(g >= first)


def finetune_hooks(groups: Sequence[Sequence[nn.Parameter]], config: FinetuneConfig) -> FitHooks:
    """The trainer's hooks for ``groups`` (bottom to top, every trainable parameter once) and ``config``."""
    if not groups:
        raise ValueError("groups: expected at least one parameter group, received none")
    scales = DiscriminativeLR(config.lr_decay).scales(len(groups))
    param_groups = [{"params": list(g), "lr_scale": s} for g, s in zip(groups, scales, strict=True)]
    lr_fn = (
        SlantedTriangular(config.cut_frac, config.ratio) if config.schedule == "slanted_triangular" else None
    )
    on_epoch_start = GradualUnfreezing(groups) if config.gradual_unfreezing else None
    return FitHooks(param_groups=param_groups, lr_fn=lr_fn, on_epoch_start=on_epoch_start)
