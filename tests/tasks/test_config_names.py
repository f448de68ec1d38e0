"""One vocabulary of config names across tasks, old names still loading, derived keys refused, --config and
--print-config, and data paths stored resolved so that a run evaluates from any folder."""

from __future__ import annotations

import json
import shutil

import pytest
from task_testing import TINY_SENTIMENT, assert_user_error, cli, write_reviews

from rnnlab.tasks import TASKS, get_task
from rnnlab.tasks.config import ConfigError, apply_overrides, config_to_dict, field_paths
from rnnlab.tasks.translate import RENAMED, TranslateConfig, load_run_config

pytestmark = [pytest.mark.xdist_group("config_names"), pytest.mark.usefixtures("one_thread")]

SHARED = [
    "data.dataset",
    "data.batch_size",
    "data.eval_batch_size",
    "data.lowercase",
    "data.split_seed",
    "data.min_freq",
    "data.valid_fraction",
    "data.test_fraction",
    "data.n_train",
    "model.cell",
    "model.hidden_size",
    "model.num_layers",
    "model.bidirectional",
    "model.attention_size",
    "model.dropout",
    "train.epochs",
    "train.lr",
    "train.seed",
    "train.device",
]


@pytest.mark.parametrize("task", ["sentiment", "translate"])
def test_every_task_uses_the_shared_names(task):
    module = get_task(task)
    paths = field_paths(module.Config())
    assert [key for key in SHARED if key not in paths] == []
    assert all(key in paths for key in module.DERIVED)  # the derived keys exist, and are listed


CORE = ["data.dataset", "data.batch_size", "model.cell", "model.hidden_size", "train.epochs", "train.device"]


@pytest.mark.parametrize("task", list(TASKS))
def test_every_registered_task_has_the_core_names_and_declares_derived_keys(task):
    module = get_task(task)
    paths = field_paths(module.Config())
    assert [key for key in CORE if key not in paths] == []
    assert module.DERIVED and all(key in paths for key in module.DERIVED)
    for key in module.DERIVED:  # set by train(), so never offered as an override
        with pytest.raises(ConfigError, match=f"{key} is derived from the data"):
            apply_overrides(module.Config(), [f"{key}=1"], module.DERIVED)


def test_the_embedding_size_has_one_name():
    assert "model.embedding_dim" in field_paths(TranslateConfig())


def test_an_old_translate_config_still_loads(tmp_path):
    new = config_to_dict(apply_overrides(TranslateConfig(), ["data.split_seed=7", "data.lowercase=false"]))
    old = json.loads(json.dumps(new))
    old["data"]["seed"] = old["data"].pop("split_seed")
    old["data"]["lower"] = old["data"].pop("lowercase")
    old["batch_size"] = old["data"].pop("batch_size")
    old["eval_batch_size"] = old["data"].pop("eval_batch_size")
    (tmp_path / "config.json").write_text(json.dumps(old), encoding="utf-8")
    loaded = load_run_config(tmp_path)
    assert loaded.data.split_seed == 7 and loaded.data.lowercase is False
    assert config_to_dict(loaded) == new


@pytest.mark.parametrize(("old", "new"), list(RENAMED.items()))
def test_an_override_with_an_old_name_says_the_new_one(old, new):
    with pytest.raises(ConfigError, match=f"config key '{old}' was renamed '{new}'; use {new}=1"):
        apply_overrides(TranslateConfig(), [f"{old}=1"], renamed=RENAMED)


@pytest.mark.parametrize(
    ("task", "override", "match"),
    [
        ("translate", "model.src_vocab_size=5", "model.src_vocab_size is derived from the data"),
        ("translate", "model.pad_id=1", "model.pad_id is derived from the data"),
        ("sentiment", "model.padding_idx=1", "model.padding_idx is derived from the data"),
        ("translate", "data.n_train=-5", "data.n_train: expected >= 1, received -5"),
        ("translate", "data.first_year=0", "data.first_year: expected a value in [1, 9999], received 0"),
        ("translate", "data.first_year=2100", "expected first <= last, received 2100 and 2099"),
        ("translate", "data.batch_size=0", "data.batch_size: expected a value in [1, 8192], received 0"),
        ("translate", "decode.beam_size=101", "decode.beam_size: expected a value in [1, 100], received 101"),
        ("sentiment", "data.split_seed=-1", "data.split_seed: expected >= 0, received -1"),
    ],
)
def test_bad_overrides_are_one_line_errors(tmp_path, capsys, task, override, match):
    code, _, err = cli(capsys, "train", task, "--out", tmp_path / "r", override)
    assert_user_error(code, err, match)
    assert not (tmp_path / "r").exists()


def test_print_config_prints_the_resolved_config_and_writes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, _ = cli(capsys, "train", "translate", "--print-config", "data.n_train=5", "--data", "de-en")
    config = json.loads(out)
    assert code == 0 and config["data"]["n_train"] == 5 and config["data"]["dataset"] == "de-en"
    assert list(tmp_path.iterdir()) == []
    saved = tmp_path / "mine.json"
    saved.write_text(out, encoding="utf-8")
    code, out, _ = cli(capsys, "train", "translate", "--config", saved, "--print-config", "train.epochs=2")
    again = json.loads(out)
    assert code == 0 and again["data"]["n_train"] == 5 and again["train"]["epochs"] == 2
    code, _, err = cli(capsys, "train", "translate", "--config", tmp_path / "nowhere.json", "--print-config")
    assert_user_error(code, err, "nowhere.json: no such config file")
    code, _, err = cli(capsys, "train", "translate", "data.n_train=5")
    assert_user_error(code, err, "--out: expected the run folder to write")


@pytest.fixture(scope="module")
def relative_run(tmp_path_factory):
    """A sentiment run trained from inside its data's folder with ``--data reviews.csv`` (relative)."""
    import os

    home = tmp_path_factory.mktemp("home")
    write_reviews(home / "reviews.csv", n=60)
    before = os.getcwd()
    os.chdir(home)
    try:
        from rnnlab.cli import main

        assert main(["train", "sentiment", "--data", "reviews.csv", "--out", "run", *TINY_SENTIMENT]) == 0
    finally:
        os.chdir(before)
    return home


def test_relative_data_paths_are_stored_resolved(relative_run, tmp_path, capsys, monkeypatch):
    config = json.loads((relative_run / "run" / "config.json").read_text(encoding="utf-8"))
    assert config["data"]["dataset"] == str((relative_run / "reviews.csv").resolve())
    monkeypatch.chdir(tmp_path)  # elsewhere: evaluate finds the data all the same
    code, out, err = cli(capsys, "evaluate", relative_run / "run", "--json")
    assert code == 0, err
    assert json.loads(out)["n"] == 6


def test_a_missing_saved_data_path_names_where_it_came_from(relative_run, tmp_path, capsys):
    run = tmp_path / "copy"
    shutil.copytree(relative_run / "run", run)
    config = json.loads((run / "config.json").read_text(encoding="utf-8"))
    config["data"]["dataset"] = str(tmp_path / "gone.csv")
    (run / "config.json").write_text(json.dumps(config), encoding="utf-8")
    code, _, err = cli(capsys, "evaluate", run)
    assert_user_error(code, err, f"gone.csv: no such file (data.dataset from {run / 'config.json'})")


@pytest.mark.parametrize("command", ["train", "evaluate"])
def test_a_directory_is_not_a_data_file(relative_run, tmp_path, capsys, command):
    args = (
        ["train", "sentiment", "--out", tmp_path / "r"]
        if command == "train"
        else ["evaluate", relative_run / "run"]
    )
    code, _, err = cli(capsys, *args, "--data", tmp_path)
    assert_user_error(
        code, err, "a directory, not a data file; expected a bundled data set (reviews-zh, movies-en)"
    )
    assert ".csv, .tsv, .jsonl file" in err


def test_sentiment_n_train_takes_a_seeded_sample(relative_run, tmp_path, capsys):
    data = relative_run / "reviews.csv"
    for name in ("a", "b"):
        code, _, err = cli(capsys, "train", "sentiment", "--data", data, "--out", tmp_path / name,
                           *TINY_SENTIMENT, "data.n_train=20")  # fmt: skip
        assert code == 0, err
    a, b = (json.loads((tmp_path / n / "run.json").read_text())["data"] for n in ("a", "b"))
    full = json.loads((relative_run / "run" / "run.json").read_text())["data"]
    assert a["train"]["size"] == 20 and full["train"]["size"] == 54
    assert a["train"]["fingerprint"] == b["train"]["fingerprint"] != full["train"]["fingerprint"]
    assert a["valid"] == full["valid"]  # the validation split is the same
