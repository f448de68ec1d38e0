"""The cell picture: text features are right, a planted unit is found for its feature, and the image is
written (rows = units) with errors naming a bad argument."""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab.viz import PlotError
from rnnlab.viz.cells import interpretable_units, plot_cells, text_features

TEXT = 'Kent.\nI cannot (wish the "fault") undone, the ISSUE of it.\nGlou. Sir, (so) it is.\n'


def test_features_follow_the_text():
    chars = list('ab\n(c)"d"')
    f = text_features(chars)
    assert f["position in line"].tolist() == [0, 1, 2, 0, 1, 2, 3, 4, 5]
    assert f["bracket depth"].tolist() == [0, 0, 0, 1, 1, 1, 0, 0, 0]
    assert f["inside quotes"].tolist() == [0, 0, 0, 0, 0, 0, 1, 1, 1]
    assert text_features(list("an OK x"))["all-capitals word"].tolist() == [0, 0, 0, 1, 1, 0, 0]


def test_a_planted_unit_is_found_for_its_feature():
    chars = list(TEXT)
    rng = np.random.default_rng(0)
    acts = rng.uniform(-0.3, 0.3, (len(chars), 16))
    depth = text_features(chars)["bracket depth"]
    acts[:, 11] = np.tanh(depth * 2 - 0.5)
    units = dict(interpretable_units(chars, acts, n_units=16))
    assert units[11].startswith("bracket depth") and len(units) == 16


def test_the_picture_is_written(tmp_path):
    chars = list(TEXT)
    acts = np.tanh(np.random.default_rng(1).normal(size=(len(chars), 8)))
    out = plot_cells(chars, acts, tmp_path / "sub" / "cells.png", n_units=3)
    assert out.is_file() and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(PlotError, match="acts"):
        plot_cells(chars, acts[:-1], tmp_path / "x.png")
    with pytest.raises(PlotError, match="units"):
        plot_cells(chars, acts, tmp_path / "x.png", units=[8])
