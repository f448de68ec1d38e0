"""A new task is one file plus one registry line: the toy task (toy_task.py, written against rnnlab.tasks.runs
alone) trains, overwrites, evaluates and is described through the command line, which knows none of its
metric names."""

from __future__ import annotations

import json

import pytest
from task_testing import assert_user_error, cli, snapshot, staging_left

from rnnlab.tasks import TASKS, TaskEntry

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setitem(TASKS, "toy", TaskEntry("toy_task", "sums of three numbers"))  # the one line


def test_one_registry_line_gives_every_command(toy, tmp_path, capsys):
    run = tmp_path / "toy"
    code, out, err = cli(capsys, "train", "toy", "--out", run, "--rows", "48", "model.hidden_size=4")
    assert code == 0, err
    assert (
        out.splitlines()[0]
        == f"run: {run}  best epoch: {json.loads((run / 'best' / 'meta.json').read_text())['epoch']} of 2"
    )
    assert out.splitlines()[1].startswith("valid: mae ")
    config = json.loads((run / "config.json").read_text())
    assert config["data"]["n_rows"] == 48 and config["model"] == {"n_inputs": 3, "hidden_size": 4}
    assert {"train_loss", "valid_loss", "mae"} <= set(
        (run / "metrics.csv").read_text().splitlines()[0].split(",")
    )

    code, out, _ = cli(capsys, "evaluate", run, "--json")
    assert code == 0 and json.loads(out)["mae_best"] >= 0
    code, out, _ = cli(capsys, "info", run, "--json")
    assert code == 0 and json.loads(out)["task"] == "toy"
    code, out, _ = cli(capsys, "tasks")
    assert out.splitlines()[-1].split(None, 1) == ["toy", "sums of three numbers"]
    code, out, _ = cli(capsys, "datasets", "toy")
    assert code == 0 and "sums" in out

    code, _, err = cli(capsys, "predict", run, "1 2 3")
    assert_user_error(code, err, "task 'toy' does not support 'predict'")
    code, _, err = cli(capsys, "evaluate", run, "--beam", "2")
    assert_user_error(code, err, "--beam applies to sequence outputs only")
    code, _, err = cli(capsys, "train", "toy", "--out", tmp_path / "x", "model.n_inputs=4")
    assert_user_error(code, err, "model.n_inputs is derived from the data")


def test_the_lifecycle_serves_the_new_task(toy, tmp_path, capsys):
    run = tmp_path / "toy"
    assert cli(capsys, "train", "toy", "--out", run)[0] == 0
    before = snapshot(run)
    code, _, err = cli(capsys, "train", "toy", "--out", run, "--overwrite", "train.device=cuda:7")
    assert code == 2 and snapshot(run) == before and staging_left(run) == []
    code, _, err = cli(capsys, "train", "toy", "--out", run, "--overwrite", "model.hidden_size=3")
    assert code == 0, err
    assert json.loads((run / "config.json").read_text())["model"]["hidden_size"] == 3
    code, out, _ = cli(capsys, "train", "toy", "--print-config", "--config", run / "config.json")
    assert code == 0 and json.loads(out)["model"]["hidden_size"] == 3
