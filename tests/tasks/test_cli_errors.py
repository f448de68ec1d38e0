"""What a new user trips over on the command line: each mistake is one line on stderr and exit status 2, no
traceback; plus ``info``, ``tasks``, ``datasets`` and stdin handling."""

from __future__ import annotations

import io
import json
import re
import sys

import pytest
from task_testing import TINY_SENTIMENT, TINY_TRANSLATE, assert_user_error, cli, write_reviews

from rnnlab.cli import main

pytestmark = [pytest.mark.xdist_group("cli_errors"), pytest.mark.usefixtures("one_thread")]


@pytest.fixture(scope="module")
def sentiment_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    data = write_reviews(folder / "reviews.csv", n=60)
    assert main(["train", "sentiment", "--data", str(data), "--out", str(folder / "s"), *TINY_SENTIMENT]) == 0
    return folder / "s"


@pytest.fixture(scope="module")
def translate_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("cli") / "t"
    assert main(["train", "translate", "--out", str(run), *TINY_TRANSLATE]) == 0
    return run


@pytest.mark.parametrize("command", ["evaluate", "predict"])
@pytest.mark.parametrize(
    ("beam", "match"),
    [
        ("0", "--beam: expected an integer from 1 (greedy) to 100 (the beam search cap), received 0"),
        ("1000", "--beam: expected an integer from 1 (greedy) to 100 (the beam search cap), received 1000"),
        ("-3", "received -3"),
    ],
)
def test_beam_out_of_range(translate_run, capsys, command, beam, match):
    texts = ["24/03/2036"] if command == "predict" else []
    code, _, err = cli(capsys, command, translate_run, *texts, "--beam", beam)
    assert_user_error(code, err, match)


def test_beam_in_range_is_used(translate_run, capsys):
    code, out, _ = cli(capsys, "evaluate", translate_run, "--beam", "2", "--json")
    assert code == 0 and json.loads(out)["beam_size"] == 2


@pytest.mark.parametrize("command", ["evaluate", "predict", "plot"])
def test_beam_for_a_classifier_is_refused(sentiment_run, tmp_path, capsys, command):
    args = {
        "evaluate": ["evaluate", sentiment_run],
        "predict": ["predict", sentiment_run, "好用"],
        "plot": ["plot", "attention", sentiment_run, "好用", "-o", tmp_path / "a.png"],
    }[command]
    code, _, err = cli(capsys, *args, "--beam", "3")
    assert_user_error(code, err, "--beam applies to sequence outputs only (beam search decoding)")
    assert "is a sentiment run" in err and not (tmp_path / "a.png").exists()


def test_a_column_option_for_a_translate_run_is_refused(translate_run, capsys):
    code, _, err = cli(capsys, "evaluate", translate_run, "--text-column", "x")
    assert_user_error(code, err, "--text-column applies to labelled data files only")


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("x.txt", "unknown image format '.txt'; supported: .png, .svg, .pdf"),
        ("x", "no file extension; supported: .png, .svg, .pdf"),
        ("X.JPG", "unknown image format '.JPG'"),
    ],
)
def test_plot_output_must_be_an_image_format(sentiment_run, tmp_path, capsys, name, match):
    for kind in (["curves", sentiment_run], ["attention", sentiment_run, "好用"]):
        code, _, err = cli(capsys, "plot", *kind, "-o", tmp_path / name)
        assert_user_error(code, err, match)
    assert list(tmp_path.iterdir()) == []


def test_plot_output_onto_a_directory_or_into_a_missing_folder(sentiment_run, tmp_path, capsys):
    (tmp_path / "d.png").mkdir()
    code, _, err = cli(capsys, "plot", "curves", sentiment_run, "-o", tmp_path / "d.png")
    assert_user_error(code, err, "is a directory; give a file name such as")
    deep = tmp_path / "new" / "folder" / "c.png"  # missing folders are created, as mkdir -p would
    code, out, err = cli(capsys, "plot", "curves", sentiment_run, "-o", deep)
    assert code == 0, err
    assert deep.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.strip() == str(deep)


def test_a_text_starting_with_a_dash_needs_double_dash(sentiment_run, capsys):
    code, _, err = cli(capsys, "predict", sentiment_run, "-foo")
    assert_user_error(code, err, "unrecognized arguments: -foo; a text that starts with '-' goes after '--'")
    code, out, err = cli(capsys, "predict", sentiment_run, "--", "-foo", "--bar")
    assert code == 0, err
    assert [line.split("\t")[2] for line in out.splitlines()] == ["-foo", "--bar"]


def test_argparse_errors_are_one_line(sentiment_run, capsys):
    code, _, err = cli(capsys, "predict", sentiment_run, "--beam")
    assert_user_error(code, err, "argument --beam: expected one argument (see rnnlab predict --help)")
    code, _, err = cli(capsys, "predict")
    assert_user_error(code, err, "the following arguments are required: RUN_DIR (see rnnlab predict --help)")
    code, _, err = cli(capsys, "trian")
    assert_user_error(code, err, "invalid choice: 'trian'")


def test_blank_stdin_lines_are_reported_by_number(sentiment_run, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("很棒\n\n太差\n   \n好用\n"))
    code, out, err = cli(capsys, "predict", sentiment_run)
    assert code == 0 and len(out.splitlines()) == 3
    assert "note: skipped blank lines 2, 4 of stdin" in err


def test_nan_from_the_model_is_an_error_not_json(sentiment_run, capsys, monkeypatch):
    from rnnlab.inference.predictor import Predictor

    original = Predictor.predict

    def nan_probabilities(self, texts, *args, **kwargs):
        results = original(self, texts, *args, **kwargs)
        for r in results:
            r["probabilities"] = {label: float("nan") for label in r["probabilities"]}
        return results

    monkeypatch.setattr(Predictor, "predict", nan_probabilities)
    for extra in (["--json"], []):
        code, out, err = cli(capsys, "predict", sentiment_run, "好用", *extra)
        assert_user_error(
            code, err, "the model produced NaN or infinite values; its checkpoint may be corrupted"
        )
        assert "NaN" not in out


def test_info_shows_task_data_metrics_and_sizes(sentiment_run, capsys):
    code, out, _ = cli(capsys, "info", sentiment_run, "--json")
    info = json.loads(out)
    assert code == 0 and info["task"] == "sentiment" and info["epochs_done"] == 1 and info["best_epoch"] == 1
    assert info["config"]["model"]["hidden_size"] == 8 and info["data"]["train"]["size"] == 54
    best = sentiment_run / "best"
    assert info["checkpoints"]["best"]["files"] == {p.name: p.stat().st_size for p in best.iterdir()}
    assert info["checkpoints"]["best"]["bytes"] == sum(p.stat().st_size for p in best.iterdir())
    assert set(info["best_metrics"]) >= {"train_loss", "valid_loss", "accuracy"}
    code, out, _ = cli(capsys, "info", sentiment_run)
    assert code == 0 and "task:         sentiment" in out and "model.hidden_size=8" in out and "best/" in out
    code, _, err = cli(capsys, "info", sentiment_run / "nowhere")
    assert_user_error(code, err, "no such run folder")


def test_tasks_and_datasets_list_the_registry(capsys):
    from rnnlab.tasks import TASKS

    code, out, _ = cli(capsys, "tasks")
    assert code == 0 and [line.split()[0] for line in out.splitlines()] == list(TASKS)
    code, out, _ = cli(capsys, "datasets", "--json")
    rows = json.loads(out)
    assert code == 0 and {r["task"] for r in rows} == set(TASKS)
    dates = next(r for r in rows if r["name"] == "dates")
    assert dates["available"] is True and dates["task"] == "translate"
    assert all(isinstance(r["available"], bool) and r["how"] for r in rows)
    code, out, _ = cli(capsys, "datasets", "translate")
    assert code == 0 and "dates" in out and "reviews-zh" not in out
    code, out, _ = cli(capsys, "datasets")  # one column each, however long the names
    table = [line for line in out.splitlines() if line.split()[0] in TASKS]
    state_columns = {re.search(r" (available|missing) ", line).start() for line in table}
    assert len(table) > 3 and len(state_columns) == 1
    code, _, err = cli(capsys, "datasets", "nope")
    assert_user_error(code, err, f"datasets: expected one of {', '.join(TASKS)}, received 'nope'")


def test_training_in_a_pipe_prints_the_epoch_table(tmp_path, capsys):
    data = write_reviews(tmp_path / "r.csv", n=40)
    args = ["--data", data, "--out", tmp_path / "run", *TINY_SENTIMENT, "train.epochs=2"]
    code, out, err = cli(capsys, "train", "sentiment", *args)
    assert code == 0 and out.startswith(f"run: {tmp_path / 'run'}  best epoch: ")
    lines = err.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["epoch", "train_loss"])
    assert {"valid_loss", "accuracy", "macro_f1"} <= set(lines[header].split())
    assert [line.split()[0] for line in lines[header + 1 : header + 3]] == ["1", "2"]
    assert sum("train_loss" in line for line in lines) == 1  # one header, no row printed twice


def test_version(capsys):
    from rnnlab.cli.commands import version

    code, out, _ = cli(capsys, "--version")
    assert code == 0 and out.strip() == f"rnnlab {version()}" and version()[0].isdigit()
