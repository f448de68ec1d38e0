"""The READMEs' Python blocks are executed, in order, in one namespace: prose that is not run drifts.

README.zh-CN.md (for Chinese-reading learners) runs the same way; its short tour and task commands must be
README.md's own, and its feature list must name every layer, module, task and command README.md's names (and
no other), so the two cannot drift apart. The measured figures of README.md and docs/index.md must each be in
the benchmark table their row names.
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


def _features(path: Path) -> set[str]:
    """The backticked names (`LSTM`, `AttentionPooling`, `charlm`, `rnnlab serve` ...) of the feature list."""
    text = path.read_text(encoding="utf-8")
    head = text[: text.index("\n## ")]  # the bullets come before the first section
    bullets = "\n".join(line for line in head.splitlines() if line.startswith(("* ", "  ")))
    return set(re.findall(r"`([^`]+)`", bullets))


def test_both_readmes_name_the_same_features_and_tasks():
    english, chinese = _features(READMES[0]), _features(READMES[1])
    assert len(english) >= 20
    assert not english - chinese, f"named in README.md, not in README.zh-CN.md: {english - chinese}"
    assert not chinese - english, f"named in README.zh-CN.md, not in README.md: {chinese - english}"
    assert {"sentiment", "translate", "forecast", "charlm", "rnnlab shapes", "rnnlab explain"} <= english
    tasks = [set(re.findall(r"rnnlab train (\w+)", "".join(_blocks(p, "bash")))) for p in READMES]
    assert tasks[0] == tasks[1] == {"sentiment", "translate", "forecast", "charlm"}


FIGURE = re.compile(r"\d+\.\d+")  # a measured figure: 0.852, 100.00, 11.82 (not the 2 of "AR(2)")


@pytest.mark.parametrize("path", [README, ROOT / "docs" / "index.md"], ids=lambda p: p.name)
def test_every_measured_figure_is_in_the_table_its_row_names(path):
    rows = [line for line in path.read_text(encoding="utf-8").splitlines() if "benchmarks/results/" in line]
    rows = [row for row in rows if row.startswith("|")]
    assert len(rows) >= 5
    for row in rows:
        table = ROOT / re.search(r"(benchmarks/results/[\w.-]+\.md)", row).group(1)
        text = table.read_text(encoding="utf-8")
        cells = row.split("|")[1:-2]  # the last cell names the table
        figures = FIGURE.findall(" ".join(re.sub(r"\(.*?\.md\)", "", c) for c in cells))
        assert figures, row
        missing = [f for f in figures if f not in text]
        assert not missing, f"{path.name}: {missing} not in {table.name}: {row}"
