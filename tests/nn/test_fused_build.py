"""Building the C++ back end: the build key, the build folder's own copy of the sources, the line that says a
build runs, and the warning that says why one failed. No real compiler runs here: torch's loader is
replaced by a recorder."""

from __future__ import annotations

import logging
import os
import sys

import pytest
import torch
from torch.utils import cpp_extension

from rnnlab.nn.fused import _build

SOURCES = {"fused_rnn.cpp": b"int main() {}\n", "cells.h": b"// cells\n"}
ARGS = dict(
    sources=SOURCES,
    flags=["-O3", "-mavx2"],
    torch_version="2.13.0+cpu",
    executable="/envs/a/bin/python",
    prefix="/envs/a",
    capability="AVX2",
)


def test_build_key_changes_with_everything_the_library_depends_on():
    key = _build.build_key(**ARGS)
    assert key == _build.build_key(**{**ARGS, "sources": dict(reversed(list(SOURCES.items())))})  # no order
    changed = {
        "source text": {"sources": {**SOURCES, "fused_rnn.cpp": b"int main() { return 1; }\n"}},
        "a header": {"sources": {**SOURCES, "cells.h": b"// cells, edited\n"}},
        "a new file": {"sources": {**SOURCES, "more.h": b""}},
        "flags": {"flags": ["-O2", "-mavx2"]},
        "torch": {"torch_version": "2.14.0+cpu"},
        "interpreter": {"executable": "/envs/b/bin/python"},
        "environment": {"prefix": "/envs/b"},
        "CPU": {"capability": "AVX512"},
    }
    keys = {what: _build.build_key(**{**ARGS, **change}) for what, change in changed.items()}
    assert all(k != key for k in keys.values()), keys
    assert len(set(keys.values())) == len(keys)


def test_this_build_is_named_by_the_key_of_this_process(monkeypatch):
    name, sources, flags = _build._this_build()
    capability = torch.backends.cpu.get_cpu_capability()
    key = _build.build_key(sources, flags, torch.__version__, sys.executable, sys.prefix, capability)
    assert name == f"rnnlab_fused_{key}"
    assert _build.SOURCE in sources and sources == _build.source_texts()
    monkeypatch.setattr(sys, "executable", sys.executable + "-other")
    assert _build._this_build()[0] != name  # another interpreter, another build


def test_sources_are_staged_into_the_build_folder_untouched_when_unchanged(tmp_path):
    _build._stage_sources(str(tmp_path), SOURCES)
    path = tmp_path / "fused_rnn.cpp"
    assert path.read_bytes() == SOURCES["fused_rnn.cpp"]
    os.utime(path, (1_000_000, 1_000_000))
    _build._stage_sources(str(tmp_path), SOURCES)
    assert path.stat().st_mtime == 1_000_000  # same text: kept, so ninja sees nothing new
    _build._stage_sources(str(tmp_path), {**SOURCES, "fused_rnn.cpp": b"changed\n"})
    assert path.read_bytes() == b"changed\n" and path.stat().st_mtime != 1_000_000
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(SOURCES)  # no temporary file left


@pytest.fixture
def recorded_loads(monkeypatch, tmp_path):
    """cpp_extension.load replaced by a recorder; the cache under tmp_path."""
    calls = []
    monkeypatch.setenv("RNNLAB_CACHE", str(tmp_path))
    monkeypatch.setattr(cpp_extension, "load", lambda **kwargs: calls.append(kwargs))
    return calls


def test_a_build_says_so_once_and_compiles_the_staged_copy(recorded_loads, caplog):
    name = _build._this_build()[0]
    build_dir = os.path.join(os.environ["RNNLAB_CACHE"], "torch_extensions", name)
    with caplog.at_level(logging.WARNING, logger="rnnlab"):
        _build._load()
    assert [r.getMessage() for r in caplog.records] == [
        f"rnnlab: compiling the fused C++ kernels into {build_dir} (once, about a minute)"
    ]
    (call,) = recorded_loads
    assert call["name"] == name and call["build_directory"] == build_dir
    assert call["sources"] == [os.path.join(build_dir, _build.SOURCE)]  # the copy: no checkout's path
    assert sorted(os.listdir(build_dir)) == sorted(_build.source_texts())
    open(os.path.join(build_dir, name + ".so"), "wb").close()  # as if built
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="rnnlab"):
        _build._load()
    assert caplog.records == []  # nothing to build, nothing said
    assert len(recorded_loads) == 2


COMPILER_OUTPUT = """Error building extension 'rnnlab_fused_0123456789abcdef'
[1/2] c++ -MMD -MF fused_rnn.o.d -O3 -c fused_rnn.cpp -o fused_rnn.o
FAILED: fused_rnn.o
fused_rnn.cpp:12:10: fatal error: torch/library.h: No such file or directory
   12 | #include <torch/library.h>
compilation terminated.
ninja: build stopped: subcommand failed."""


def test_explain_quotes_the_first_line_and_the_compiler_errors():
    text = _build.explain(RuntimeError(COMPILER_OUTPUT))
    assert text.startswith("RuntimeError: Error building extension 'rnnlab_fused_0123456789abcdef'")
    assert "fatal error: torch/library.h: No such file or directory" in text
    assert "[1/2]" not in text  # the compile command is noise


def test_a_failed_build_warns_with_the_cause_and_the_fix(monkeypatch):
    monkeypatch.delenv("RNNLAB_NO_EXT", raising=False)
    monkeypatch.setattr(_build, "_ext", {"tried": False, "ops": None, "error": None})

    def broken(verbose=False):
        raise RuntimeError(COMPILER_OUTPUT)

    monkeypatch.setattr(_build, "_load", broken)
    with pytest.warns(_build.FusedExtensionWarning) as record:
        assert not _build.extension_available()
    (warning,) = record
    message = str(warning.message)
    assert "pure-PyTorch fused path runs instead" in message
    assert "fatal error: torch/library.h" in message
    assert "install a C++ compiler" in message and "ninja" in message and "RNNLAB_NO_EXT=1" in message
    with pytest.raises(RuntimeError, match="torch/library.h"):
        _build.build_extension()
