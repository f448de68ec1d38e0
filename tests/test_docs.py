"""The docs site (docs/, mkdocs.yml) is built and run as part of the tests: prose that is not run drifts.

* ``mkdocs build --strict`` (warnings are errors; mkdocs.yml's ``validation`` makes a broken link, a missing
  anchor or a page left out of the nav a warning), with the API reference rendered from the docstrings;
* every page's ``python`` blocks run in order in one namespace, as the README's do (tests/test_readme.py);
* every ``$ rnnlab shapes|explain ...`` of a ``console`` block prints what is shown
  (tests/test_explain_readme.py's check);
* every ``rnnlab ...`` line of a ``bash`` block, here and in the READMEs, parses with the real command line,
  so no page documents an option that does not exist.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from test_explain_readme import check_console_example, examples
from test_readme import _blocks, run_python_blocks

pytestmark = pytest.mark.usefixtures("one_thread")

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
WITH_PYTHON = [p for p in PAGES if _blocks(p)]
CONSOLE = [(p, command, expected) for p in PAGES for command, expected in examples(p)]
READMES = [ROOT / "README.md", ROOT / "README.zh-CN.md"]


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.fixture(autouse=True)
def english_locale(monkeypatch):
    """Console examples without --lang are the English output, whatever this machine's locale."""
    for name in ("LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", "C.UTF-8")


def _mkdocs(config: Path, site: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)


def test_the_site_builds_with_warnings_as_errors(tmp_path):
    done = _mkdocs(ROOT / "mkdocs.yml", tmp_path / "site")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "WARNING" not in done.stderr, done.stderr
    site = tmp_path / "site"
    for page in PAGES:  # every page is built (and, through validation.nav.omitted_files, in the nav)
        relative = page.relative_to(DOCS).with_suffix("")
        folder = relative.parent if relative.name == "index" else relative  # index.md is its folder's page
        assert (site / folder / "index.html").is_file(), f"{_name(page)} was not built"
    api = (site / "api" / "nn" / "index.html").read_text(encoding="utf-8")
    assert "rnnlab.nn.LSTM" in api and "proj_size" in api  # the API reference comes from the docstrings
    assert (site / "search" / "search_index.json").is_file()


def test_a_broken_link_fails_the_build(tmp_path):
    """The same validation settings turn a link to a missing page or anchor into a failed build."""
    ours = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# Home\n\n[a task](tasks/missing.md), [there](#no-such-heading)\n")
    config = tmp_path / "mkdocs.yml"
    config.write_text(
        yaml.safe_dump({"site_name": "t", "docs_dir": str(docs), "validation": ours["validation"]})
    )
    done = _mkdocs(config, tmp_path / "site")
    assert done.returncode != 0
    assert "tasks/missing.md" in done.stderr and "no-such-heading" in done.stderr


@pytest.mark.parametrize("page", WITH_PYTHON, ids=_name)
def test_page_python_blocks_run(page):
    run_python_blocks(page)


@pytest.mark.parametrize(
    ("page", "command", "expected"), CONSOLE, ids=[f"{_name(p)}: {c}" for p, c, _ in CONSOLE]
)
def test_page_console_example_prints_what_is_shown(capsys, page, command, expected):
    check_console_example(capsys, command, expected)


def _command_lines(path: Path) -> list[str]:
    """``rnnlab ...`` command lines of the bash blocks, without comments, ``&`` and placeholders."""
    lines = []
    for block in _blocks(path, "bash"):
        for line in block.splitlines():
            for part in line.split(";"):
                part = part.split("  #")[0].strip().removesuffix("&").strip()
                if not part.startswith("rnnlab "):
                    continue
                # A synopsis (`rnnlab train TASK --out RUN [--data FILE]`, `LSTM|GRU|RNN`) is not a command.
                if any(mark in part for mark in "[|\\"):
                    continue
                if not any(re.fullmatch(r"[A-Z_]{3,}(=\S+)?", word) for word in shlex.split(part)):
                    lines.append(part)
    return lines


COMMANDS = [(p, line) for p in [*PAGES, *READMES] for line in _command_lines(p)]


def test_the_pages_show_commands():
    assert len(COMMANDS) >= 40
    assert {line.split()[1] for _, line in COMMANDS} >= {"train", "evaluate", "predict", "serve", "export"}


@pytest.mark.parametrize(("page", "line"), COMMANDS, ids=[f"{_name(p)}: {line}" for p, line in COMMANDS])
def test_every_command_line_parses(page, line):
    from rnnlab.cli import build_parser

    argv = shlex.split(line)[1:]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            _, extra = build_parser(argv).parse_known_args(argv)
        except SystemExit as stop:
            assert stop.code == 0, f"{line}: {err.getvalue()}"  # --help
            return
    assert not [e for e in extra if e.startswith("-")], f"{line}: unknown options {extra}"
