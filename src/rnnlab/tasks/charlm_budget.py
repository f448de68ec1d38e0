"""How ``rnnlab train charlm`` fills what the user left to its rules: the time budget and the model size.

``train.budget_s`` (600 s of wall time by default) ends training and drives the lr schedule; with it,
``train.epochs`` (10,000 by default) is only an upper bound. ``model.hidden_size=0`` (the task's default)
is sized for the budget: a few training steps of a probe model (hidden size 256) measure this machine's
speed in characters per second, and :func:`rnnlab.models.charlm.hidden_size_for_budget` turns the budget's
parameter x character product into a hidden size. A value the user sets wins (issue 23, item 7): an
explicit ``model.hidden_size`` is kept; an explicit ``train.epochs`` beside the default budget means "train
by epochs" (the budget is dropped). Each adaptation is printed on stderr and returned, for ``run.json``.
"""

from __future__ import annotations

import sys
import time

import torch
import torch.nn.functional as F

from rnnlab.data.streams import StreamBatches
from rnnlab.models.charlm import CharLM, CharLMConfig, hidden_size_for_budget, parameter_count

__all__ = ["adapt_defaults", "choose_hidden_size", "DEFAULT_BUDGET_S", "DEFAULT_EPOCHS"]

DEFAULT_EPOCHS = 10_000  # with a budget, an upper bound that a budget of hours does not reach
DEFAULT_BUDGET_S = 600.0
TRAIN_SHARE = 0.85  # of the budget spent in training steps (the rest: validation scores, checkpoints)
PROBE_HIDDEN = 256  # the model whose measured speed sizes the default model


def _measure_speed(config, ids: torch.Tensor, steps: int = 3) -> float:
    """Characters per second of training steps (forward, backward, AdamW) of the probe model on ``ids``."""
    cfg = config.data
    probe = CharLM(CharLMConfig.from_dict({**config.model.to_dict(), "hidden_size": PROBE_HIDDEN}))
    probe.to(config.train.device)
    optimizer = torch.optim.AdamW(probe.parameters(), lr=1e-4)
    batches = iter(StreamBatches(ids, cfg.batch_size, cfg.bptt, steps + 1))
    start = 0.0
    for k in range(steps + 1):
        if k == 1:  # the first step warms up the allocator and the kernels
            if config.train.device.startswith("cuda"):
                torch.cuda.synchronize()
            start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        batch = next(batches)
        logits, _ = probe(batch.x.to(config.train.device))  # (B, T, V)
        F.cross_entropy(logits.flatten(0, 1), batch.y.to(config.train.device).flatten()).backward()
        optimizer.step()
    if config.train.device.startswith("cuda"):
        torch.cuda.synchronize()
    return steps * cfg.batch_size * cfg.bptt / max(time.perf_counter() - start, 1e-9)


def choose_hidden_size(config, ids: torch.Tensor) -> tuple[int, dict]:
    """The hidden size for ``config.train.budget_s`` on this machine, and what the choice rests on.

    ``ids`` (N,) is the training text. The budget buys ``K = speed x N_probe x budget_s x TRAIN_SHARE``
    parameter-characters (the speed of a probe model of ``N_probe`` parameters, measured here; a step's
    cost grows with the parameters); :func:`rnnlab.models.charlm.hidden_size_for_budget` picks the size.
    """
    speed = _measure_speed(config, ids)
    probe_params = parameter_count(
        CharLMConfig.from_dict({**config.model.to_dict(), "hidden_size": PROBE_HIDDEN}), embedding=False
    )
    compute = speed * probe_params * config.train.budget_s * TRAIN_SHARE
    size = hidden_size_for_budget(compute, ids.numel(), config.model)
    chosen = CharLMConfig.from_dict({**config.model.to_dict(), "hidden_size": size})
    params = parameter_count(chosen, embedding=False)
    record = {
        "hidden_size": size,
        "parameters": parameter_count(chosen),
        "non_embedding_parameters": params,
        "probe_chars_per_s": round(speed, 1),
        "expected_chars": round(compute / params),
        "rule": "largest H with min(K / N(H), 4 x training text) >= 20 N(H), N without the embedding "
        "(models/charlm.py)",
    }
    return size, record


def adapt_defaults(config, ids: torch.Tensor) -> dict:
    """Fill what the user left to the rules (see the module docstring); returns what was adapted, and says
    each on stderr."""
    adapted = {}
    train = config.train
    if train.budget_s == DEFAULT_BUDGET_S and train.epochs != DEFAULT_EPOCHS:
        train.budget_s = None
        adapted["train.budget_s"] = {
            "value": None,
            "why": f"train.epochs={train.epochs} was set: train by epochs",
        }
        print(
            f"note: train.epochs={train.epochs} given: training runs that many epochs, the lr schedule over "
            f"their steps (train.budget_s=none); set train.budget_s to train for a time instead",
            file=sys.stderr,
        )
    if config.model.hidden_size == 0:
        if train.budget_s is None:
            size, record = 512, {"hidden_size": 512, "rule": "no time budget: the fixed size 512"}
        else:
            size, record = choose_hidden_size(config, ids)
        config.model.hidden_size = size
        adapted["model.hidden_size"] = record
        if "parameters" in record:
            print(
                f"note: model.hidden_size={size} ({record['parameters']:,} parameters) for a "
                f"{train.budget_s:g} s budget: it can read about {record['expected_chars']:,} characters "
                "here (the rule: 20 characters per parameter, the embedding not counted); set "
                "model.hidden_size to choose",
                file=sys.stderr,
            )
    return adapted
