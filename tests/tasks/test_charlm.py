"""charlm through the command line on a few KB of text: train -> evaluate (bpc and loss in the JSON) ->
sample (streamed, same seed same text) -> plot cells; and each bad input as a one-line error."""

from __future__ import annotations

import json
import math

import pytest

from rnnlab.cli import main
from rnnlab.tasks import charlm

pytestmark = pytest.mark.usefixtures("one_thread")

TEXT = "".join(
    f'{name}.\nI have {n} (good) reasons, my lord; "the {word}" is {adj}.\n\n'
    for n, (name, word, adj) in enumerate(
        [
            ("Kent", "king", "old"),
            ("Lear", "storm", "wild"),
            ("Fool", "egg", "bald"),
            ("Edgar", "tom", "cold"),
        ]
        * 12
    )
)
TINY = ["data.batch_size=2", "data.bptt=16", "data.steps_per_epoch=2", "data.eval_batch_size=2",
        "model.hidden_size=16", "model.embedding_dim=8", "train.epochs=2", "train.warmup_steps=0",
        "train.progress=false"]  # fmt: skip


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("charlm")
    path = folder / "text.txt"
    path.write_text(TEXT, encoding="utf-8")
    assert main(["train", "charlm", "--data", str(path), "--out", str(folder / "run"), *TINY]) == 0
    return folder / "run"


def test_train_keeps_the_best_validation_checkpoint(run):
    rows = [line.split(",") for line in (run / "metrics.csv").read_text().splitlines()]
    header, body = rows[0], rows[1:]
    assert len(body) == 2 and "valid_loss" in header and "bpc" in header
    losses = [float(r[header.index("valid_loss")]) for r in body]
    meta = json.loads((run / "best" / "meta.json").read_text())
    assert meta["epoch"] == 1 + losses.index(min(losses))
    held_out = round(len(TEXT) * 0.05)
    assert (
        meta["task"] == "charlm" and meta["config"]["model"]["vocab_size"] == len(set(TEXT[:-held_out])) + 2
    )


def test_evaluate_json_has_bpc_and_loss(run, capsys, tmp_path):
    assert main(["evaluate", str(run), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["bpc"] == pytest.approx(result["loss"] / math.log(2))
    assert result["loss"] > 0 and "valid part" in result["data"]
    other = tmp_path / "other.txt"
    other.write_text("Kent. the king is old.\n" * 3, encoding="utf-8")
    assert main(["evaluate", str(run), "--data", str(other), "--json"]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert scored["characters"] > 0 and scored["bpc"] == pytest.approx(scored["loss"] / math.log(2))


def test_sample_streams_the_same_text_for_the_same_seed(run, capsys):
    args = ["sample", str(run), "--prime", "Kent.", "--length", "40", "--seed", "3", "--num-samples", "2"]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert main(args) == 0
    assert capsys.readouterr().out == first
    assert first.startswith("Kent.") and first.count("Kent.") >= 2 and len(first) >= 2 * 45
    assert main([*args[:7], "4", *args[8:]]) == 0  # another seed: another text
    assert capsys.readouterr().out != first


def test_sample_temperature_zero_is_greedy_and_says_so(run, capsys):
    assert main(["sample", str(run), "--temperature", "0", "--length", "20", "--num-samples", "2"]) == 0
    out, err = capsys.readouterr()
    a, b = out.rstrip("\n").split("\n\n")
    assert a == b and "greedy" in err


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--length", "0"], "--length"),
        (["--length", "-5"], "--length"),
        (["--temperature", "-1"], "--temperature"),
        (["--top-p", "0"], "--top-p"),
        (["--top-p", "1.5"], "--top-p"),
        (["--prime", "猫狗"], "none of its characters"),
    ],
)
def test_bad_sampling_options_are_one_line_errors(run, capsys, option, message):
    assert main(["sample", str(run), *option]) == 2
    out, err = capsys.readouterr()
    assert out == "" and message in err and err.count("\n") == 1


def test_plot_cells_writes_the_picture(run, capsys, tmp_path):
    out = tmp_path / "cells.png"
    assert main(["plot", "cells", str(run), 'Kent.\nI have (good) "reasons".', "-o", str(out)]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "an empty file"),
        (b"\x00\x01\x02binary", "binary"),
        (b"too short", "shorter than one training chunk"),
    ],
)
def test_bad_training_text_is_a_one_line_error(tmp_path, capsys, content, message):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    assert main(["train", "charlm", "--data", str(path), "--out", str(tmp_path / "r"), *TINY]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "r").exists()  # nothing written


def test_other_tasks_do_not_sample(tmp_path, capsys):
    run = tmp_path / "r"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"task": "sentiment"}))
    assert main(["sample", str(run)]) == 2
    assert "does not support 'sample'" in capsys.readouterr().err


def test_python_api_scores_as_the_command_line(run, capsys):
    assert main(["evaluate", str(run), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == charlm.evaluate(run)


def test_resume_after_an_interruption_equals_an_uninterrupted_run(tmp_path, monkeypatch):
    """Ctrl-C after epoch 1's checkpoint, then --resume: the carried state restarts where the epoch says
    (StreamBatches' reset), so best/ and last/ hold the same weights as a run that was never cut."""
    from safetensors.torch import load_file

    from rnnlab.training import Trainer

    path = tmp_path / "text.txt"
    path.write_text(TEXT, encoding="utf-8")
    args = ["--data", str(path), *TINY, "train.epochs=3", "model.output_dropout=0.2"]
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    assert main(["train", "charlm", "--out", str(whole), *args]) == 0
    original_save = Trainer._save

    def save_then_interrupt(self, *a, **kw):
        original_save(self, *a, **kw)
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "_save", save_then_interrupt)
    assert main(["train", "charlm", "--out", str(cut), *args]) == 130
    monkeypatch.setattr(Trainer, "_save", original_save)
    assert len((cut / "metrics.csv").read_text().splitlines()) == 2  # header + epoch 1
    assert main(["train", "charlm", "--out", str(cut), "--resume"]) == 0
    assert (cut / "metrics.csv").read_text().count("\n") == 4
    for checkpoint in ("best", "last"):
        a = load_file(whole / checkpoint / "model.safetensors")
        b = load_file(cut / checkpoint / "model.safetensors")
        assert a.keys() == b.keys() and all(a[k].equal(b[k]) for k in a), checkpoint
