"""The READMEs' Python blocks are executed, in order, in one namespace: prose that is not run drifts.

README.zh-CN.md (for Chinese-reading learners) runs the same way, and its short tour and task commands must be
README.md's own, so the two cannot drift apart.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
READMES = [README, ROOT / "README.zh-CN.md"]


def _blocks(path: Path, language: str = "python") -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", path.read_text(encoding="utf-8"), flags=re.S)


def _section_blocks(heading: str, language: str) -> list[str]:
    """The ``language`` blocks of README.md between ``heading`` and the next ``## `` heading."""
    text = README.read_text(encoding="utf-8")
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    section = text[start : end if end != -1 else len(text)]
    return re.findall(rf"```{language}\n(.*?)```", section, flags=re.S)


@pytest.mark.parametrize("path", READMES, ids=lambda p: p.name)
def test_readme_has_blocks(path):
    assert len(_blocks(path)) >= 3


def run_python_blocks(path: Path) -> None:
    """Execute the ``python`` blocks of ``path`` in order, in one namespace; fail naming the block."""
    namespace: dict = {}
    for i, block in enumerate(_blocks(path)):
        try:
            exec(compile(block, f"{path.name} block {i}", "exec"), namespace)
        except Exception as err:  # pragma: no cover - the failure message is the point
            pytest.fail(f"{path.name} python block {i} failed: {err!r}\n{block}")


@pytest.mark.parametrize("path", READMES, ids=lambda p: p.name)
def test_readme_python_blocks_run(path):
    run_python_blocks(path)


@pytest.mark.parametrize("path", READMES, ids=lambda p: p.name)
def test_readme_names_the_two_commands(path):
    text = path.read_text(encoding="utf-8")
    assert "make demo" in text and "make test" in text
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "make test" in ci


def test_chinese_readme_has_the_tour_and_the_tasks_of_the_readme():
    zh_python, zh_bash = _blocks(READMES[1]), _blocks(READMES[1], "bash")
    tour = _section_blocks("## A short tour", "python")
    assert len(tour) >= 3
    for block in tour:
        assert block in zh_python, f"README.md's tour block is not in README.zh-CN.md:\n{block}"
    for block in _section_blocks("## Tasks from the command line", "bash"):
        assert block in zh_bash, f"README.md's task commands are not in README.zh-CN.md:\n{block}"
