"""A task in one file, as the forecasting and character-LM tasks will be: a tiny regression (the sum of three
numbers) written against rnnlab.tasks.runs only. The tests register it with one line and drive it through the
command line, which knows none of its metric names."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from rnnlab.tasks import runs
from rnnlab.tasks.config import config_to_dict
from rnnlab.training import TrainerConfig

TASK = "toy"
DERIVED = ("model.n_inputs",)
TRAIN_SHORTCUTS = {"rows": "data.n_rows"}


@dataclass
class DataConfig:
    n_rows: int = field(default=64, metadata={"min": 8})  # examples, 3/4 for training
    batch_size: int = field(default=16, metadata={"min": 1})  # training batch size
    split_seed: int = field(default=0, metadata={"min": 0})  # seeds the data


@dataclass
class ModelConfig:
    n_inputs: int = 0  # set from the data
    hidden_size: int = field(default=8, metadata={"min": 1})


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainerConfig = field(
        default_factory=lambda: TrainerConfig(epochs=2, monitor="mae", monitor_mode="min", progress=False)
    )


@dataclass
class Result:
    run_dir: Path
    best_epoch: int
    valid_metrics: dict
    history: list


def _data(cfg: DataConfig):
    g = torch.Generator().manual_seed(cfg.split_seed)
    x = torch.rand(cfg.n_rows, 3, generator=g)  # (N, 3)
    return x, x.sum(-1, keepdim=True)  # (N, 3), (N, 1)


def _score(model, batches) -> dict:
    err = torch.cat([(model(x) - y).abs() for x, y in batches])
    return {"loss": float((err**2).mean()), "mae": float(err.mean())}


def train(config=None, run_dir=None, resume=False, overwrite=False) -> Result:
    config, run = runs.prepare(config or Config(), run_dir, resume, overwrite, TASK)  # config
    x, y = _data(config.data)  # data
    n = len(x) * 3 // 4
    b = config.data.batch_size
    train_batches = [(x[i : i + b], y[i : i + b]) for i in range(0, n, b)]
    valid_batches = [(x[n:], y[n:])]
    config.model.n_inputs = x.shape[1]
    torch.manual_seed(config.train.seed)  # model
    model = torch.nn.Sequential(
        torch.nn.Linear(config.model.n_inputs, config.model.hidden_size),
        torch.nn.Tanh(),
        torch.nn.Linear(config.model.hidden_size, 1),
    )
    resolved = config_to_dict(config)
    with run:  # fit
        run.write_json("config.json", resolved)
        run.write_json(
            "run.json", {"task": TASK, "data": {"train": runs.split_record([str(v) for v in x[:n]])}}
        )
        fit = run.trainer(config.train, TASK).fit(
            model,
            train_batches,
            valid_batches,
            lambda m, batch: torch.nn.functional.mse_loss(m(batch[0]), batch[1]),
            lambda m, batches: runs.validation_row(_score(m, batches)),
            meta={"task": TASK, "config": resolved},
            resume=resume,
        )
    return Result(run.path, fit.best_epoch, fit.best_metrics, fit.history)  # score


def add_train_arguments(parser) -> None:
    parser.add_argument("--rows", type=int, help="examples to make (data.n_rows)")


def summary(result: Result) -> str:
    return f"valid: mae {result.valid_metrics['mae']:.4f}"


def run_evaluate(args) -> int:
    metrics = runs.check_finite({"mae_best": _best(args.run_dir)}, args.run_dir)
    print(runs.to_json(metrics, args.run_dir) if args.json else f"mae: {metrics['mae_best']:.4f}")
    return 0


def _best(run_dir: Path) -> float:
    import json

    return json.loads((Path(run_dir) / "best" / "meta.json").read_text())["metrics"]["mae"]


def datasets() -> list[dict]:
    return [{"name": "sums", "description": "sums of three numbers", "available": True, "how": "generated"}]
