"""The run lifecycle (rnnlab.tasks.runs): new / overwrite / resume. An earlier run is replaced only once the
new one has written its first checkpoint; a failed start leaves it intact and nothing that blocks a retry."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from task_testing import TINY_SENTIMENT, assert_user_error, cli, snapshot, staging_left, write_reviews

from rnnlab.tasks import runs
from rnnlab.tasks.config import ConfigError
from rnnlab.training.trainer import Trainer

pytestmark = [pytest.mark.xdist_group("runs"), pytest.mark.usefixtures("one_thread")]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_reviews(tmp_path_factory.mktemp("data") / "reviews.csv", n=60)


@pytest.fixture
def old_run(tmp_path, data):
    """A finished run with a user's own file beside the run files."""
    run = tmp_path / "run"
    assert cli_quiet(["train", "sentiment", "--data", data, "--out", run, *TINY_SENTIMENT]) == 0
    (run / "notes.txt").write_text("mine", encoding="utf-8")
    return run


def cli_quiet(args) -> int:
    from rnnlab.cli import main

    return main([str(a) for a in args])


def test_overwrite_onto_a_device_that_is_not_here_leaves_the_old_run(old_run, data, capsys):
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    before = snapshot(old_run)
    capsys.readouterr()
    code, _, err = cli(capsys, "train", "sentiment", "--data", data, "--out", old_run, "--overwrite",
                       *TINY_SENTIMENT, "train.device=cuda")  # fmt: skip
    assert_user_error(code, err, "train.device=cuda: CUDA is not available here")
    assert snapshot(old_run) == before and staging_left(old_run) == []


def test_a_bad_device_name_is_a_user_error():
    with pytest.raises(ConfigError, match="train.device: expected a torch device such as cpu"):
        runs.check_device("gpu0")


def test_a_failure_after_setup_leaves_the_old_run_intact_and_a_retry_works(old_run, data, monkeypatch):
    before = snapshot(old_run)

    def crash(self, *args, **kwargs):
        raise RuntimeError("injected failure in the first epoch")

    monkeypatch.setattr(Trainer, "_train_epoch", crash)
    with pytest.raises(RuntimeError, match="injected failure"):
        cli_quiet(["train", "sentiment", "--data", data, "--out", old_run, "--overwrite", *TINY_SENTIMENT])
    assert snapshot(old_run) == before and staging_left(old_run) == []
    monkeypatch.undo()
    assert cli_quiet(["train", "sentiment", "--data", data, "--out", old_run, "--overwrite", *TINY_SENTIMENT,
                      "model.hidden_size=6"]) == 0  # fmt: skip
    assert json.loads((old_run / "config.json").read_text())["model"]["hidden_size"] == 6
    assert (old_run / "notes.txt").read_text() == "mine"  # not a run file: kept
    assert staging_left(old_run) == []


def test_a_failed_new_run_leaves_nothing_that_blocks_a_retry(tmp_path, data, monkeypatch):
    run = tmp_path / "fresh"
    monkeypatch.setattr(Trainer, "_train_epoch", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(RuntimeError, match="boom"):
        cli_quiet(["train", "sentiment", "--data", data, "--out", run, *TINY_SENTIMENT])
    assert not run.exists() and staging_left(run) == []
    monkeypatch.undo()
    assert (
        cli_quiet(["train", "sentiment", "--data", data, "--out", run, *TINY_SENTIMENT]) == 0
    )  # no --overwrite


def test_the_new_run_takes_the_folder_at_its_first_checkpoint(old_run, data, monkeypatch, capsys):
    """Interrupted in epoch 2 of an --overwrite: epoch 1's checkpoint is in place, the old run is gone, and
    --resume continues the new run."""
    calls = []
    original = Trainer._train_epoch

    def interrupt_in_epoch_2(self, *args, **kwargs):
        calls.append(self.run_dir)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "_train_epoch", interrupt_in_epoch_2)
    args = ["train", "sentiment", "--data", data, "--out", old_run, *TINY_SENTIMENT, "train.epochs=2"]
    capsys.readouterr()
    assert cli_quiet([*args, "--overwrite", "model.hidden_size=6"]) == 130
    hint = f"resume with rnnlab train sentiment --out {old_run} --resume"
    err = capsys.readouterr().err
    assert f"interrupted; {old_run / 'last'} holds epoch 1" in err and hint in err
    assert calls[0] != old_run and calls[1] == old_run  # epoch 1 in the hidden folder, epoch 2 in place
    assert len((old_run / "metrics.csv").read_text().splitlines()) == 2  # header + epoch 1 of the new run
    assert json.loads((old_run / "config.json").read_text())["model"]["hidden_size"] == 6
    assert staging_left(old_run) == []
    monkeypatch.undo()
    assert cli_quiet(["train", "sentiment", "--out", old_run, "--resume"]) == 0
    assert len((old_run / "metrics.csv").read_text().splitlines()) == 3


def test_a_stale_staging_folder_from_a_killed_run_does_not_block(old_run, data):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    pid = int(dead.stdout)  # a process that has exited: its staging folder is stale
    stale = old_run.parent / f".{old_run.name}.rnnlab-new-{pid}-abcd"
    (stale / "best").mkdir(parents=True)
    (stale / "config.json").write_text("{}", encoding="utf-8")
    mine = old_run.parent / f".{old_run.name}.rnnlab-new-{os.getpid()}-live"
    mine.mkdir()  # a live process's staging folder is left alone
    assert (
        cli_quiet(["train", "sentiment", "--data", data, "--out", old_run, "--overwrite", *TINY_SENTIMENT])
        == 0
    )
    assert not stale.exists() and mine.exists()


def test_a_swap_cut_by_kill_is_undone_by_the_next_run(tmp_path):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    run = tmp_path / "r"
    backup = tmp_path / f".r.rnnlab-old-{int(dead.stdout)}-xyz"  # the earlier run, moved aside
    (backup / "best").mkdir(parents=True)
    (backup / "config.json").write_text('{"old": 1}', encoding="utf-8")
    with pytest.raises(runs.DataError, match="already holds a run"):  # moved back: nothing lost
        runs.RunFolder(run)
    assert json.loads((run / "config.json").read_text()) == {"old": 1} and (run / "best").is_dir()
    assert staging_left(run) == []


def test_run_folder_commit_replaces_run_files_only(tmp_path):
    path = tmp_path / "r"
    (path / "best").mkdir(parents=True)
    for name in ("config.json", "test_metrics.json", "plot.png"):
        (path / name).write_text("old", encoding="utf-8")
    with runs.RunFolder(path, overwrite=True) as run:
        assert run.staged and run.dir.parent == tmp_path and run.dir.name.startswith(".r.rnnlab-new-")
        run.write_json("config.json", {"new": True})
        assert (path / "config.json").read_text() == "old"  # nothing changes before the commit
    assert json.loads((path / "config.json").read_text()) == {"new": True}
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "plot.png"]  # old run files gone
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


def test_run_folder_refuses_to_clobber_and_resume_needs_a_checkpoint(tmp_path):
    (tmp_path / "config.json").write_text("{}", encoding="utf-8")
    with pytest.raises(runs.DataError, match="already holds a run .config.json.; pass --resume"):
        runs.RunFolder(tmp_path)
    with pytest.raises(runs.DataError, match="holds no interrupted run"):
        runs.RunFolder(tmp_path, resume=True)
    (tmp_path / "file").write_text("x", encoding="utf-8")
    with pytest.raises(runs.DataError, match="expected a folder, received an existing file"):
        runs.RunFolder(tmp_path / "file")


def test_texts_from_stdin_report_blank_lines(capsys):
    import io

    assert runs.read_texts(None, io.StringIO("a\n\nb\n  \nc\n")) == ["a", "b", "c"]
    assert "skipped blank lines 2, 4 of stdin" in capsys.readouterr().err
    assert runs.read_texts(["x"], io.StringIO("ignored")) == ["x"]
    with pytest.raises(runs.DataError, match="no texts"):
        runs.read_texts(None, io.StringIO("\n \n"))


def test_json_output_never_holds_nan():
    assert runs.to_json({"p": [0.5, 1.0]}, "RUN") == '{"p": [0.5, 1.0]}'
    for bad in ({"p": float("nan")}, [1.0, float("inf")], {"a": {"b": [float("-inf")]}}):
        with pytest.raises(runs.DataError, match="RUN: the model produced NaN or infinite values"):
            runs.to_json(bad, "RUN")
