"""Single-file writes: modes that follow the umask as open() does, strict JSON without NaN."""

from __future__ import annotations

import json
import logging
import math
import os
import stat

import pytest

from rnnlab.training.files import atomic_write_bytes, atomic_write_json, atomic_write_text, dumps_json


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o027])
def test_new_files_get_the_mode_a_plain_open_gives(tmp_path, umask):
    previous = os.umask(umask)
    try:
        with open(tmp_path / "reference", "wb"):  # what the umask gives an ordinary new file
            pass
        atomic_write_bytes(tmp_path / "a.bin", b"\x00\x01")
        atomic_write_text(tmp_path / "new" / "b.csv", "x\n")
        atomic_write_json(tmp_path / "c.json", {"a": 1})
    finally:
        os.umask(previous)
    expected = 0o666 & ~umask
    assert _mode(tmp_path / "reference") == expected
    for name in ("a.bin", "new/b.csv", "c.json"):
        assert _mode(tmp_path / name) == expected, name
    assert _mode(tmp_path / "new") == 0o777 & ~umask  # the parent made on the way
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "c.json", "new", "reference"]


def test_replacing_a_file_keeps_its_mode(tmp_path):
    target = tmp_path / "config.json"
    target.write_text("{}")
    target.chmod(0o640)
    previous = os.umask(0o077)
    try:
        atomic_write_text(target, '{"a": 1}')
    finally:
        os.umask(previous)
    assert target.read_text() == '{"a": 1}'
    assert _mode(target) == 0o640


def test_dumps_json_writes_non_finite_numbers_as_null_with_one_warning(caplog):
    metrics = {"accuracy": 0.5, "f1": math.nan, "history": [{"loss": math.inf}, {"loss": 1.0}], "n": 3}
    with caplog.at_level(logging.WARNING, logger="rnnlab"):
        text = dumps_json(metrics, "runs/x/test_metrics.json")
    assert json.loads(text) == {
        "accuracy": 0.5,
        "f1": None,
        "history": [{"loss": None}, {"loss": 1.0}],
        "n": 3,
    }
    assert "NaN" not in text and "Infinity" not in text
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert "runs/x/test_metrics.json" in record.getMessage()
    assert "f1, history[0].loss" in record.getMessage()

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="rnnlab"):
        assert json.loads(dumps_json({"ok": 1.5}, indent=None)) == {"ok": 1.5}
    assert not caplog.records  # finite values: nothing to say
    with pytest.raises(TypeError):
        dumps_json({"s": {1, 2}})


def test_atomic_write_json_output_is_strict_json(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="rnnlab"):
        path = atomic_write_json(tmp_path / "m.json", {"bleu": float("-inf"), "名": "值"})
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n") and "名" in text  # UTF-8, not \\u escapes
    strict = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    assert strict == {"bleu": None, "名": "值"}
    assert any(str(tmp_path / "m.json") in r.getMessage() for r in caplog.records)
