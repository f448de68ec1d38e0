"""README.zh-CN.md's ``console`` blocks are run: each ``$ rnnlab shapes|explain ...`` prints what is shown."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from rnnlab.explain import main

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def english_locale(monkeypatch):
    """The English output is what these tests read; a zh locale would make it Chinese (test_explain_zh.py)."""
    for name in ("LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", "C.UTF-8")


README = Path(__file__).resolve().parents[1] / "README.zh-CN.md"
# "max |difference| = 6.67e-08": rounding-level numbers may differ between machines; larger ones may not.
DIFFERENCE = re.compile(r"max \|difference\| = (\d\.\d+e[+-]\d+)")  # a Chinese "（" may follow


def examples(path: Path = README) -> list[tuple[str, str]]:
    """(command, expected output) for every ``$ rnnlab ...`` line of the console blocks of ``path``."""
    found = []
    for block in re.findall(r"```console\n(.*?)```", path.read_text(encoding="utf-8"), flags=re.S):
        for chunk in re.split(r"(?m)^(?=\$ )", block):
            if chunk.strip():
                command, _, output = chunk.partition("\n")
                found.append((command.removeprefix("$ "), output))
    return found


def normalized(text: str) -> str:
    return DIFFERENCE.sub(
        lambda m: "max |difference| = <rounding>" if float(m.group(1)) < 1e-5 else m[0], text
    )


def test_readme_has_the_learner_examples():
    commands = [command.split()[1] for command, _ in examples()]
    assert commands.count("shapes") >= 3 and commands.count("explain") >= 2


def check_console_example(capsys, command: str, expected: str) -> None:
    """Run ``$ rnnlab shapes|explain ...`` and compare what it prints with ``expected`` (rounding aside)."""
    program, *argv = shlex.split(command)
    assert program == "rnnlab"
    code = main(argv)
    captured = capsys.readouterr()
    assert code == (2 if expected.startswith("rnnlab: error:") else 0)
    assert normalized(captured.out + captured.err) == normalized(expected)


@pytest.mark.parametrize(("command", "expected"), examples(), ids=[c for c, _ in examples()])
def test_readme_console_example_prints_what_is_shown(capsys, command, expected):
    check_console_example(capsys, command, expected)
