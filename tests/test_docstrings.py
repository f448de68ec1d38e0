"""Every docstring example in the package is executed (STYLE: prose that is not run drifts)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import rnnlab

MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(rnnlab.__path__, prefix="rnnlab.")
    if not m.name.endswith("__main__") and ".csrc" not in m.name
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name is None or e.name.split(".")[0] != "triton":
            raise
        pytest.skip(f"{name} needs triton, which does not import here ({e})")  # the Triton back end's modules
    result = doctest.testmod(
        module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False
    )
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"
