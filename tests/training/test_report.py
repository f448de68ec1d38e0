"""What training shows its user: a table per epoch without any logging set-up, no line twice under a
configured handler, a bar on a terminal only, early stopping and Ctrl-C reported with how to resume."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rnnlab.training import Trainer, TrainerConfig
from rnnlab.training.report import EpochTable, logging_shows

pytestmark = pytest.mark.usefixtures("one_thread")


def _batches():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8, 3, generator=g)
    y = (x[:, 0] > 0).long()
    return [(x[:4], y[:4]), (x[4:], y[4:])]


def _step(model, batch):
    x, y = batch
    return F.cross_entropy(model(x), y)


def _fit(run_dir, scores=(0.5, 0.6, 0.7), step=_step, trainer_kw=None, **cfg_kw):
    """A 2-step-per-epoch fit whose validation 'accuracy' follows ``scores``."""
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    kw = {"epochs": len(scores), "lr": 0.01, "patience": None, "lr_schedule": "constant", **cfg_kw}
    it = iter(scores)
    trainer = Trainer(TrainerConfig(**kw), run_dir, **(trainer_kw or {}))
    return trainer.fit(model, _batches(), [], step, lambda m, b: {"accuracy": next(it)})


def _interrupt_at(call: int):
    calls = []

    def step(model, batch):
        calls.append(1)
        if len(calls) == call:
            raise KeyboardInterrupt
        return _step(model, batch)

    return step


@pytest.fixture
def warning_level_logging():
    """Logging configured as ``logging.basicConfig()`` leaves it: handlers on the root, level WARNING."""
    root, ours = logging.getLogger(), logging.getLogger("rnnlab")
    before = root.level, ours.level
    root.setLevel(logging.WARNING)
    ours.setLevel(logging.NOTSET)
    yield
    root.setLevel(before[0])
    ours.setLevel(before[1])


def test_table_printed_when_logging_would_drop_the_rows(tmp_path, capsys, warning_level_logging):
    result = _fit(tmp_path, scores=(0.5, 0.4, 0.3), patience=2)
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert lines[0].split() == ["epoch", "train_loss", "lr", "time", "accuracy"]
    rows = [line.split() for line in lines[1:4]]
    assert [int(r[0]) for r in rows] == [1, 2, 3]
    for cells, row in zip(rows, result.history, strict=True):
        assert float(cells[1]) == pytest.approx(row["train_loss"], rel=1e-3)
        assert float(cells[4]) == row["accuracy"]
    assert (
        lines[4]
        == "stopped early at epoch 3: accuracy did not improve for 2 epochs (best accuracy=0.5 at epoch 1)"
    )
    assert len(lines) == 5  # one row per epoch, no bar in a pipe (stderr is not a terminal here)
    assert "\r" not in err and "it/s" not in err


def test_progress_false_prints_nothing_but_still_logs(tmp_path, capsys, caplog, warning_level_logging):
    _fit(tmp_path, scores=(0.5, 0.4), patience=1, progress=False)
    assert capsys.readouterr().err == ""
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="rnnlab"):
        result = _fit(tmp_path / "b", scores=(0.5, 0.4), patience=1, progress=False)
    rows = [r.args[1] for r in caplog.records if r.getMessage().startswith("epoch ")]
    assert rows == result.history  # the row itself, as a dict argument
    assert any("stopped early at epoch 2" in r.getMessage() for r in caplog.records)
    assert capsys.readouterr().err == ""


def test_no_line_twice_under_a_handler_like_the_cli(tmp_path, capsys, warning_level_logging):
    ours, stream = logging.getLogger("rnnlab"), io.StringIO()
    handler = logging.StreamHandler(stream)  # what cli.py attaches to "rnnlab" when stderr is not a tty
    ours.addHandler(handler)
    ours.setLevel(logging.INFO)
    try:
        result = _fit(tmp_path, scores=(0.5, 0.4), patience=1)
    finally:
        ours.removeHandler(handler)
    assert capsys.readouterr().err == ""  # the handler shows the records: the trainer prints nothing itself
    shown = stream.getvalue().splitlines()
    assert [line.split(":")[0] for line in shown[:2]] == ["epoch 1", "epoch 2"]
    assert shown[0] == f"epoch 1: {result.history[0]}"
    assert shown[2].startswith("stopped early at epoch 2") and len(shown) == 3


def test_bar_and_table_on_a_terminal(tmp_path, monkeypatch, warning_level_logging):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    _fit(tmp_path, scores=(0.5, 0.6))
    out = terminal.getvalue()
    assert "\repoch 1/2:" in out and "\repoch 2/2:" in out  # tqdm's bar, redrawn with carriage returns
    table = [line for line in out.replace("\r", "\n").splitlines() if line.strip() and "|" not in line]
    assert table[0].split() == ["epoch", "train_loss", "lr", "time", "accuracy"]
    assert [line.split()[0] for line in table[1:]] == ["1", "2"]


def test_ctrl_c_says_how_to_resume(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="rnnlab"), pytest.raises(KeyboardInterrupt):
        _fit(tmp_path / "a", step=_interrupt_at(4))  # epoch 2's second step
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert record.getMessage() == (
        f"interrupted; {tmp_path / 'a' / 'last'} holds epoch 1 (the last complete one); "
        "resume with fit(..., resume=True)"
    )
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="rnnlab"), pytest.raises(KeyboardInterrupt):
        _fit(tmp_path / "b", step=_interrupt_at(4), trainer_kw={"resume_hint": "--resume"})
    assert caplog.records[0].getMessage().endswith("resume with --resume")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="rnnlab"), pytest.raises(KeyboardInterrupt):
        _fit(tmp_path / "c", step=_interrupt_at(1))
    assert caplog.records[0].getMessage() == "interrupted in epoch 1, before any epoch was saved"
    with pytest.raises(TypeError, match="resume_hint"):
        Trainer(TrainerConfig(), tmp_path, resume_hint="")


def test_nothing_to_train_on_resume_is_said(tmp_path, caplog):
    _fit(tmp_path, scores=(0.5, 0.6), progress=False)
    with caplog.at_level(logging.INFO, logger="rnnlab"):
        torch.manual_seed(0)
        Trainer(TrainerConfig(epochs=2, lr=0.01, patience=None, lr_schedule="constant"), tmp_path).fit(
            nn.Linear(3, 2), _batches(), [], _step, lambda m, b: {"accuracy": 0.0}, resume=True
        )
    assert any("nothing to train" in r.getMessage() and "epochs=2" in r.getMessage() for r in caplog.records)


def test_non_finite_loss_is_warned_and_kept_out_of_json(tmp_path, caplog):
    def nan_step(model, batch):
        return _step(model, batch) * float("nan")

    with caplog.at_level(logging.WARNING, logger="rnnlab"):
        result = _fit(tmp_path, scores=(0.5,), step=nan_step, progress=False)
    assert result.history[0]["train_loss"] != result.history[0]["train_loss"]  # NaN in the Python result
    assert [r.getMessage() for r in caplog.records] == [
        "epoch 1: train_loss=nan not finite (NaN or infinity; written as null in the checkpoints' JSON)"
    ]
    for ckpt in ("best", "last"):
        text = (tmp_path / ckpt / "meta.json").read_text()
        meta = json.loads(text, parse_constant=lambda c: pytest.fail(f"meta.json has {c}"))
        assert meta["metrics"]["train_loss"] is None, ckpt


def test_logging_shows_follows_levels_handlers_and_propagation(monkeypatch):
    root, parent, child = logging.getLogger(), logging.getLogger("rnnlab_t"), logging.getLogger("rnnlab_t.c")
    monkeypatch.setattr(root, "handlers", [])
    before = root.level
    try:
        root.setLevel(logging.WARNING)
        assert not logging_shows(child, logging.INFO)  # no handler anywhere, INFO below the root's level
        assert logging_shows(child, logging.WARNING)  # Python's last-resort handler prints it
        parent.addHandler(logging.NullHandler())
        assert not logging_shows(child, logging.WARNING)  # a NullHandler silences the last resort
        shown = logging.StreamHandler(io.StringIO())
        shown.setLevel(logging.ERROR)
        parent.addHandler(shown)
        assert not logging_shows(child, logging.WARNING) and logging_shows(child, logging.ERROR)
        shown.setLevel(logging.DEBUG)
        parent.setLevel(logging.INFO)
        assert logging_shows(child, logging.INFO)
        child.propagate = False  # the child's chain ends before its parent's handler: the last resort again
        assert not logging_shows(child, logging.INFO) and logging_shows(child, logging.WARNING)
        child.propagate = True
        logging.disable(logging.CRITICAL)
        assert not logging_shows(child, logging.ERROR)
    finally:
        logging.disable(logging.NOTSET)
        root.setLevel(before)
        parent.handlers.clear()
        parent.setLevel(logging.NOTSET)
        parent.propagate = child.propagate = True


def test_epoch_table_repeats_the_header_when_the_columns_change():
    table = EpochTable()
    assert len(table.lines({"epoch": 1, "loss": 1.0})) == 2
    assert len(table.lines({"epoch": 2, "loss": float("nan")})) == 1
    assert table.lines({"epoch": 2, "loss": float("nan")})[0].split() == ["2", "nan"]
    assert table.lines({"epoch": 3, "loss": 0.5, "bleu": 12.0})[0].split() == ["epoch", "loss", "bleu"]


SCRIPT = textwrap.dedent(
    """
    import torch, torch.nn.functional as F
    from torch import nn
    from rnnlab.training import Trainer, TrainerConfig

    x = torch.randn(8, 3); y = (x[:, 0] > 0).long(); batches = [(x[:4], y[:4]), (x[4:], y[4:])]
    scores = iter([0.5, 0.4])
    def step(model, batch):
        if step.stop == 0:
            raise KeyboardInterrupt
        step.stop -= 1
        return F.cross_entropy(model(batch[0]), batch[1])
    cfg = TrainerConfig(epochs=3, lr=0.01, patience=1, lr_schedule="constant")
    step.stop = -1
    Trainer(cfg, RUN + "/a").fit(nn.Linear(3, 2), batches, [], step, lambda m, b: {"accuracy": next(scores)})
    step.stop = 3
    try:
        Trainer(cfg, RUN + "/b").fit(nn.Linear(3, 2), batches, [], step, lambda m, b: {"accuracy": 1.0})
    except KeyboardInterrupt:
        pass
    """
)


def test_a_plain_script_in_a_pipe_sees_the_table_and_the_events(tmp_path):
    """No logging set-up at all, stderr a pipe: what a user's script run under nohup or CI shows."""
    done = subprocess.run(
        [sys.executable, "-c", f"RUN = {str(tmp_path)!r}\n" + SCRIPT],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert lines[0].split() == ["epoch", "train_loss", "lr", "time", "accuracy"]
    assert [line.split()[0] for line in lines[1:3]] == ["1", "2"]
    assert lines[3].startswith("stopped early at epoch 2: accuracy did not improve for 1 epoch ")
    assert lines[4].split()[0] == "epoch" and lines[5].split()[0] == "1"  # run b's table
    assert lines[6] == f"interrupted; {tmp_path}/b/last holds epoch 1 (the last complete one); " + (
        "resume with fit(..., resume=True)"
    )
    assert len(lines) == 7 and done.stdout == ""


def test_a_changed_config_on_resume_is_one_warning_without_dict_arguments(tmp_path, caplog):
    _fit(tmp_path, scores=(0.5,), progress=False)
    with caplog.at_level(logging.WARNING, logger="rnnlab"):
        torch.manual_seed(0)
        cfg = TrainerConfig(epochs=2, lr=0.02, patience=None, lr_schedule="constant", progress=False)
        Trainer(cfg, tmp_path).fit(
            nn.Linear(3, 2), _batches(), [], _step, lambda m, b: {"accuracy": 0.5}, resume=True
        )
    (record,) = caplog.records
    assert record.getMessage() == "resuming with a changed config (lr: 0.01 -> 0.02); results will differ"
    assert not any(isinstance(a, dict) for a in record.args)  # dict arguments mean epoch rows to handlers
