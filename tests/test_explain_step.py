"""explain.step, packed and `rnnlab explain`: the numbers printed are torch.nn's; padding never runs."""

from __future__ import annotations

import types

import pytest
import torch
import torch.nn.functional as F

import rnnlab.nn as rnn
from rnnlab.explain import main, packed, step
from rnnlab.explain._step import vec

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def english_locale(monkeypatch):
    """The English output is what these tests read; a zh locale would make it Chinese (test_explain_zh.py)."""
    for name in ("LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", "C.UTF-8")


def torch_cell(explained):
    """torch.nn's cell holding the explained layer's weights, in float64."""
    layer = explained.layer
    mode = explained.mode
    kwargs = {"nonlinearity": layer.nonlinearity} if mode == "RNN" else {}
    cell = getattr(torch.nn, f"{mode}Cell")(layer.input_size, layer.hidden_size, **kwargs).double()
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(cell, name).copy_(getattr(layer, f"{name}_l0"))
    return cell


@pytest.mark.parametrize(
    ("mode", "sizes", "seed"),
    [("LSTM", (2, 3), 0), ("LSTM", (4, 1), 7), ("GRU", (2, 3), 0), ("GRU", (3, 5), 1), ("RNN", (2, 3), 0)],
)
def test_each_printed_gate_and_state_is_torch_nn_cells(mode, sizes, seed):
    input_size, hidden_size = sizes
    explained = step(mode, input_size=input_size, hidden_size=hidden_size, seed=seed)
    text = str(explained)
    cell = torch_cell(explained)
    x = torch.tensor([explained.inputs["x"]], dtype=torch.float64)  # (B=1, H_in)
    h_prev = torch.tensor([explained.inputs["h_prev"]], dtype=torch.float64)  # (B=1, H)
    # The gates as torch.nn's cell stacks them (rows k*H to (k+1)*H - 1 of weight_ih / weight_hh).
    gi = F.linear(x, cell.weight_ih, cell.bias_ih)  # (1, G*H)
    gh = F.linear(h_prev, cell.weight_hh, cell.bias_hh)  # (1, G*H)
    if mode == "LSTM":
        c_prev = torch.tensor([explained.inputs["c_prev"]], dtype=torch.float64)
        i, f, g, o = (gi + gh).chunk(4, dim=1)
        expected = {"i": i.sigmoid(), "f": f.sigmoid(), "g": g.tanh(), "o": o.sigmoid()}
        h, c = cell(x, (h_prev, c_prev))
        torch.testing.assert_close(torch.tensor([explained.c], dtype=torch.float64), c)
        assert f"  c            = {vec(c[0].tolist())}" in text
    elif mode == "GRU":
        (x_r, x_z, x_n), (h_r, h_z, h_n) = gi.chunk(3, dim=1), gh.chunk(3, dim=1)
        r = (x_r + h_r).sigmoid()
        expected = {"r": r, "z": (x_z + h_z).sigmoid(), "n": (x_n + r * h_n).tanh()}
        h = cell(x, h_prev)
        assert "AFTER the product W_hn h_prev and its bias" in text
    else:
        expected, h = {}, cell(x, h_prev)
    assert set(explained.gates) == set(expected)
    for name, value in expected.items():
        torch.testing.assert_close(torch.tensor([explained.gates[name]], dtype=torch.float64), value)
        assert f"  {name} = " in text and vec(value[0].tolist()) in text, name
    torch.testing.assert_close(torch.tensor([explained.h], dtype=torch.float64), h)
    assert vec(h[0].tolist()) in text
    assert explained.matches and explained.max_difference <= 1e-6
    assert text.splitlines()[-1].startswith("matches the layer's output: max |difference| = ")


def test_relu_rnn_and_the_equations_printed():
    explained = step("RNN", seed=3, nonlinearity="relu")
    cell = torch_cell(explained)
    h = cell(
        torch.tensor([explained.inputs["x"]]).double(), torch.tensor([explained.inputs["h_prev"]]).double()
    )
    torch.testing.assert_close(torch.tensor([explained.h], dtype=torch.float64), h)
    assert "h = relu(W_ih x + b_ih + W_hh h_prev + b_hh)" in str(explained)
    lstm = str(step("LSTM"))
    for equation in (
        "i = sigmoid(W_ii x + b_ii + W_hi h_prev + b_hi)",
        "c = f * c_prev + i * g",
        "h = o * tanh(c)",
    ):
        assert equation in lstm
    gru = str(step("GRU"))
    for equation in ("n = tanh(W_in x + b_in + r * (W_hn h_prev + b_hn))", "h = (1 - z) * n + z * h_prev"):
        assert equation in gru


def test_a_layer_that_disagrees_is_reported(monkeypatch):
    class OffByOne(rnn.GRU):
        def forward(self, x, hx=None):
            out, h_n = super().forward(x, hx)
            return out, h_n + 1e-3

    monkeypatch.setattr("rnnlab.explain._step.rnn", types.SimpleNamespace(GRU=OffByOne))
    explained = step("GRU")
    assert not explained.matches and "DOES NOT match the layer's output" in str(explained)
    assert main(["explain", "GRU"]) == 1


def test_step_leaves_the_global_random_state_alone():
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    step("LSTM", seed=1)
    torch.testing.assert_close(torch.rand(3), expected)


@pytest.mark.parametrize(("mode", "lengths"), [("LSTM", [3, 1, 2]), ("GRU", [1, 4, 4, 2]), ("RNN", [2])])
def test_packed_view_and_padding_never_computed(mode, lengths):
    explained = packed(mode, lengths, seed=2)
    T = max(lengths)
    assert explained.computed == [[t < n for t in range(T)] for n in lengths]
    assert explained.batch_sizes == [sum(n > t for n in lengths) for t in range(T)]
    assert sorted(lengths, reverse=True) == [lengths[b] for b in explained.sorted_indices]
    assert explained.finite and max(explained.alone_difference) <= 1e-6 and explained.matches
    for b, n in enumerate(lengths):
        if n < T:  # run unpacked, the padding steps change h_n: the check above can tell
            assert explained.unpacked_difference[b] > 1e-4
    text = str(explained)
    for b, n in enumerate(lengths):
        marks = " ".join("#" * n + "." * (T - n))
        assert f"sequence {b}   {marks}    length {n}" in text
    assert f"batch_sizes = {explained.batch_sizes}" in text
    assert "no NaN in the output or h_n" in text


def test_cli_explain(capsys):
    assert main(["explain", "LSTM", "--hidden-size", "3", "--input-size", "2", "--seed", "0"]) == 0
    out = capsys.readouterr().out
    assert out == str(step("LSTM", input_size=2, hidden_size=3, seed=0)) + "\n"
    assert main(["explain", "GRU", "--lengths", "3,1,2"]) == 0
    assert "sequence 1   # . .    length 1" in capsys.readouterr().out
    assert main(["explain", "RNN", "--nonlinearity", "relu", "--seed", "4"]) == 0
    assert "h = relu(" in capsys.readouterr().out
    for argv, sentence in [
        (
            ["--lengths", "3,0"],
            "--lengths must be positive whole numbers separated by commas, like 3,1,2; got '3,0'",
        ),
        (["--hidden-size", "50"], "--hidden-size must be between 1 and 8 (a tiny layer), got 50"),
    ]:
        assert main(["explain", "LSTM", *argv]) == 2
        captured = capsys.readouterr()
        assert (captured.out, captured.err) == ("", f"rnnlab: error: {sentence}\n")
