"""rnnlab.explain.shapes and `rnnlab shapes`: every printed shape is the real one; a wrong one, a sentence."""

from __future__ import annotations

import itertools
import re
import subprocess
import sys

import pytest
import torch

import rnnlab.nn as rnn
from rnnlab.explain import ShapeError, main, shapes

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def english_locale(monkeypatch):
    """The English output is what these tests read; a zh locale would make it Chinese (test_explain_zh.py)."""
    for name in ("LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", "C.UTF-8")


H_IN, H, P, T, B = 5, 6, 3, 4, 2
ROW = re.compile(r"^  (\S+)\s+\((.*)\)$")  # "  h_n      (D*L=2, B=2, H=6)"


def printed_rows(text: str) -> dict[str, tuple[tuple[str, int], ...]]:
    """Every ``name (X=4, Y=2)`` row of a printed table, as {name: ((X, 4), (Y, 2))}."""
    rows = {}
    for line in text.splitlines():
        found = ROW.match(line)
        if found:
            dims = [d.strip() for d in found.group(2).split(",") if d.strip()]
            rows[found.group(1)] = tuple((d.split("=")[0], int(d.split("=")[1])) for d in dims)
    return rows


def layer_options():
    for mode, layers, bidirectional, batch_first, batched in itertools.product(
        ("RNN", "LSTM", "GRU"), (1, 2), (False, True), (False, True), (True, False)
    ):
        for proj in (0, P) if mode == "LSTM" else (0,):
            yield (
                mode,
                dict(num_layers=layers, bidirectional=bidirectional, batch_first=batch_first),
                proj,
                batched,
            )


@pytest.mark.parametrize(("mode", "options", "proj", "batched"), list(layer_options()))
def test_every_printed_shape_is_the_real_one(mode, options, proj, batched):
    kwargs = dict(options, **({"proj_size": proj} if proj else {}))
    torch.manual_seed(0)
    ours = getattr(rnn, mode)(H_IN, H, **kwargs)
    reference = getattr(torch.nn, mode)(H_IN, H, **kwargs)  # torch.nn: the shapes are its contract
    in_shape = ((B, T) if options["batch_first"] else (T, B)) + (H_IN,) if batched else (T, H_IN)
    table = shapes(ours, in_shape)
    text = str(table)
    rows = printed_rows(text)

    x = torch.randn(in_shape)
    with torch.no_grad():
        out, state = reference(x)
    states = state if mode == "LSTM" else (state,)
    real = {"output": out.shape, "h_n": states[0].shape} | (
        {"c_n": states[1].shape} if mode == "LSTM" else {}
    )
    for name, shape in real.items():
        assert tuple(size for _, size in rows[name]) == tuple(shape), name
    for name, param in reference.named_parameters():
        assert tuple(size for _, size in rows[name]) == tuple(param.shape), name
    # The expected shapes are what torch.nn accepts: zeros of them run, and the state keeps its shape.
    expects = [tuple(size for _, size in rows[name]) for name in ("input", "h0", "c0") if name in rows]
    assert expects[0] == in_shape
    given = tuple(torch.zeros(s) for s in expects[1:])
    with torch.no_grad():
        _, state = reference(torch.zeros(expects[0]), given if mode == "LSTM" else given[0])
    assert [tuple(s.shape) for s in (state if mode == "LSTM" else (state,))] == expects[1:]
    # Each legend name labels a size equal to its value, and the names are the README's.
    legend = {name: value for name, value, _ in table.legend}
    values = legend | {
        "D*L": legend["D"] * legend["L"],
        "D*H": legend["D"] * H,
        "D*P": legend["D"] * (proj or H),
    }
    values |= {"4*H": 4 * H, "3*H": 3 * H}
    for name, dims in rows.items():
        for letter, size in dims:
            assert values[letter] == size, f"{name}: {letter}={size} but {letter} is {values[letter]}"
    assert "(not " not in text
    assert rows["input"][-1] == ("H_in", H_IN)
    if batched:
        assert rows["h0"][:2] == (("D*L", legend["D"] * legend["L"]), ("B", B))
        assert rows["input"][:2] == ((("B", B), ("T", T)) if options["batch_first"] else (("T", T), ("B", B)))
    assert rows["h_n"][-1] == (("P", P) if proj else ("H", H))


@pytest.mark.parametrize(
    ("mode", "batched"), list(itertools.product(("RNNCell", "LSTMCell", "GRUCell"), (True, False)))
)
def test_cells(mode, batched):
    torch.manual_seed(0)
    cell, reference = getattr(rnn, mode)(H_IN, H), getattr(torch.nn, mode)(H_IN, H)
    in_shape = (B, H_IN) if batched else (H_IN,)
    rows = printed_rows(str(shapes(cell, in_shape)))
    with torch.no_grad():
        result = reference(torch.zeros(in_shape))
    real = result if isinstance(result, tuple) else (result,)
    assert [tuple(s for _, s in rows[n]) for n in ("h'", "c'") if n in rows] == [tuple(r.shape) for r in real]
    assert rows["hx"] == ((("B", B), ("H", H)) if batched else (("H", H),))
    for name, param in reference.named_parameters():
        assert tuple(size for _, size in rows[name]) == tuple(param.shape)
    gates = {"LSTMCell": "4*H", "GRUCell": "3*H", "RNNCell": "H"}[mode]
    assert rows["weight_ih"] == ((gates, param.shape[0]), ("H_in", H_IN))


def test_torch_modules_and_tensors_are_accepted():
    layer = torch.nn.GRU(H_IN, H, num_layers=2)
    table = shapes(layer, torch.randn(T, B, H_IN), torch.randn(2, B, H))
    assert table.row("h_n").shape == (2, B, H) and table.row("output").names == ("T", "B", "D*H")
    with pytest.raises(TypeError, match="module must be an RNN, LSTM or GRU"):
        shapes(torch.nn.Linear(2, 3), (2, 2))


def message(module, input, hx=None) -> str:
    with pytest.raises(ShapeError) as caught:
        shapes(module, input, hx)
    return str(caught.value)


def test_wrong_shapes_are_one_sentence_naming_the_dimension():
    lstm = rnn.LSTM(H_IN, H, num_layers=2)
    assert message(lstm, (T, 3, H_IN), ((1, 3, H), (2, 3, H))) == (
        "h0 has 1 in dimension 0 (D*L = num_layers * directions), expected 2"
    )
    # The first study note: h0's middle dimension taken for the sequence length.
    assert message(lstm, (3, 1, H_IN), ((2, 3, H), (2, 3, H))) == (
        "h0 has 3 in dimension 1 (B = batch), expected 1: 3 is the input's T (time steps), "
        "but h0 holds one state per sequence, not one per step"
    )
    assert (
        message(lstm, (T, B, H_IN), ((2, B, H), (2, 3, H)))
        == "c0 has 3 in dimension 1 (B = batch), expected 2"
    )
    assert message(lstm, (T, B, 4)) == "input has 4 in dimension 2 (H_in = input_size), expected 5"
    assert message(lstm, (T, B, H_IN, 1)) == (
        "input has 4 dimensions (4, 2, 5, 1), expected 3 (T, B, H_in) "
        "or 2 for one unbatched sequence (T, H_in)"
    )
    assert (
        message(lstm, (T, H_IN), ((2, 1, H), (2, H)))
        == "h0 has 3 dimensions (2, 1, 6), expected 2: (D*L=2, H=6)"
    )
    assert message(lstm, (T, B, H_IN), torch.zeros(2, B, H)) == "hx must be (h0, c0) for LSTM, got 1 tensors"

    projected = rnn.LSTM(H_IN, H, proj_size=P, bidirectional=True, batch_first=True)
    assert message(projected, (B, T, H_IN), ((2, B, H), (2, B, H))) == (
        "h0 has 6 in dimension 2 (P = proj_size), expected 3"
    )
    assert message(projected, (B, T, H_IN), ((1, B, P), (2, B, H))) == (
        "h0 has 1 in dimension 0 (D*L = num_layers * directions), expected 2"
    )
    # batch_first=True: the note's (layers, sequence_length, hidden) h0 no longer happens to fit.
    assert message(projected, (B, T, H_IN), ((2, T, P), (2, B, H))) == (
        "h0 has 4 in dimension 1 (B = batch), expected 2: 4 is the input's T (time steps), "
        "but h0 holds one state per sequence, not one per step"
    )
    gru = rnn.GRU(H_IN, H)
    assert message(gru, (T, B, H_IN), (1, B, 7)) == "h0 has 7 in dimension 2 (H = hidden_size), expected 6"
    assert (
        message(rnn.GRUCell(H_IN, H), (B, H_IN), (3, H)) == "hx has 3 in dimension 0 (B = batch), expected 2"
    )
    assert (
        message(rnn.LSTMCell(H_IN, H), (H_IN,), ((H,), (B, H)))
        == "cx has 2 dimensions (2, 6), expected 1: (H=6,)"
    )
    assert message(rnn.RNNCell(H_IN, H), (B, B, H_IN)) == (
        "input has 3 dimensions (2, 2, 5), expected 2 (B, H_in) or 1 for one unbatched sample (H_in)"
    )


def test_shape_errors_carry_the_argument_and_dimension():
    lstm = rnn.LSTM(H_IN, H, num_layers=2)
    cases = [
        (((T, B, H_IN), ((1, B, H), (2, B, H))), ("h0", 0)),
        (((T, B, H_IN), ((2, B, H), (2, B, 7))), ("c0", 2)),
        (((T, B, 4), None), ("input", 2)),
        (((T, B, H_IN, 1), None), ("input", None)),
    ]
    for (input, hx), expected in cases:
        with pytest.raises(ShapeError) as caught:
            shapes(lstm, input, hx)
        assert (caught.value.argument, caught.value.dimension) == expected


def test_the_seed_notes_shapes_run_and_the_table_names_what_they_are():
    # The note's nn.RNN(5, 6, 1) on (1, 3, 5) with h0 (1, 3, 6) runs: its two mislabelings cancel out.
    table = shapes(rnn.RNN(5, 6, 1), (1, 3, 5), (1, 3, 6))
    assert table.row("input").names == ("T", "B", "H_in") and table.row("input").shape == (1, 3, 5)
    assert table.row("h0").names == ("D*L", "B", "H")
    assert "h0 (D*L, B, H): one state per layer" in str(table) and "no T dimension" in str(table)


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_prints_the_table_and_exits_0(capsys):
    code, out, err = run_cli(
        capsys, "shapes", "LSTM", "input_size=5", "hidden_size=6", "num_layers=2", "bidirectional=true",
        "proj_size=3", "batch_first=true", "--input", "3,1,5", "--h0", "4,3,3",
    )  # fmt: skip
    assert (code, err) == (0, "")
    rows = printed_rows(out)
    torch.manual_seed(0)
    reference = torch.nn.LSTM(5, 6, num_layers=2, bidirectional=True, proj_size=3, batch_first=True)
    out_ref, (h_ref, c_ref) = reference(torch.zeros(3, 1, 5), (torch.zeros(4, 3, 3), torch.zeros(4, 3, 6)))
    assert rows["output"] == (("B", 3), ("T", 1), ("D*P", 6)) and out_ref.shape == (3, 1, 6)
    assert rows["h_n"] == (("D*L", 4), ("B", 3), ("P", 3)) and h_ref.shape == (4, 3, 3)
    assert rows["c_n"] == (("D*L", 4), ("B", 3), ("H", 6)) and c_ref.shape == (4, 3, 6)
    # Without --input: the documented default, T = 4 steps of B = 2.
    code, out, _ = run_cli(capsys, "shapes", "GRU", "input_size=5", "hidden_size=6")
    assert code == 0 and printed_rows(out)["input"] == (("T", 4), ("B", 2), ("H_in", 5))
    code, out, _ = run_cli(capsys, "shapes", "RNNCell", "input_size=5", "hidden_size=6", "nonlinearity=relu")
    assert code == 0 and "nonlinearity=relu" in out and printed_rows(out)["input"] == (("B", 2), ("H_in", 5))


USER_ERRORS = [
    (
        "LSTM input_size=5 hidden_size=6 num_layers=2 --input 3,3,5 --h0 1,3,6",
        "h0 has 1 in dimension 0 (D*L = num_layers * directions), expected 2.",
    ),
    (  # the note's input (batch 1, 3 steps) read time first, and its h0 (layers, sequence_length, hidden)
        "GRU input_size=5 hidden_size=6 num_layers=2 --input 3,1,5 --h0 2,3,6",
        "h0 has 3 in dimension 1 (B = batch), expected 1: 3 is the input's T (time steps), but h0 holds "
        "one state per sequence, not one per step.",
    ),
    ("LSTM input_size=5 hidden_size=6 --c0 1,2,5", "c0 has 5 in dimension 2 (H = hidden_size), expected 6."),
    (
        "RNN input_size=5 hidden_size=6 --input 4,2,3",
        "input has 3 in dimension 2 (H_in = input_size), expected 5.",
    ),
    (
        "RNN input_size=5 hidden_size=6 --c0 1,2,6",
        "--c0 is only for LSTM and LSTMCell; RNN has no cell state",
    ),
    (
        "RNN input_size=5 hidden_size=6 --input 4;2",
        "--input must be sizes separated by commas, like 3,1,2; got '4;2'",
    ),
    ("RNN input_size=5", "RNN needs hidden_size=N, e.g. input_size=5 hidden_size=6"),
    (
        "GRU input_size=5 hidden_size=6 proj_size=2",
        "GRU(input_size=5, hidden_size=6, proj_size=2) cannot be built: ",
    ),
    (
        "GRU input_size hidden_size=6",
        "constructor arguments are key=value pairs like hidden_size=6; got 'input_size'",
    ),
]


@pytest.mark.parametrize(("argv", "sentence"), USER_ERRORS)
def test_cli_user_errors_exit_2_with_one_sentence(capsys, argv, sentence):
    code, out, err = run_cli(capsys, "shapes", *argv.split())
    assert (code, out) == (2, "")
    assert err.startswith(f"rnnlab: error: {sentence}") and err.count("\n") == 1


def test_python_m_entry_point_and_no_torch_at_import():
    script = "import sys, rnnlab.explain; print('torch' in sys.modules)"
    assert (
        subprocess.run([sys.executable, "-c", script], capture_output=True, text=True).stdout.strip()
        == "False"
    )
    argv = [
        sys.executable,
        "-m",
        "rnnlab.explain",
        "shapes",
        "LSTM",
        "input_size=5",
        "hidden_size=6",
        "--h0",
        "2,2,6",
    ]
    done = subprocess.run(argv, capture_output=True, text=True)
    assert done.returncode == 2 and done.stdout == ""
    assert (
        done.stderr == "rnnlab: error: h0 has 2 in dimension 0 (D*L = num_layers * directions), expected 1.\n"
    )


def test_wired_into_the_rnnlab_command_line(monkeypatch, capsys):
    """The lead's CLI adds extension packages' sub-commands via ``rnnlab.cli.EXTENSIONS``."""
    import rnnlab.cli as cli

    extensions = getattr(cli, "EXTENSIONS", None)
    assert extensions is not None, "rnnlab.cli no longer has EXTENSIONS: wire rnnlab.explain another way"
    monkeypatch.setattr(cli, "EXTENSIONS", tuple(dict.fromkeys((*extensions, "rnnlab.explain"))))
    assert cli.main(["shapes", "GRU", "input_size=5", "hidden_size=6", "--h0", "2,2,6"]) == 2
    assert capsys.readouterr().err == (
        "rnnlab: error: h0 has 2 in dimension 0 (D*L = num_layers * directions), expected 1.\n"
    )
    assert cli.main(["explain", "RNN", "--seed", "1"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("matches the layer's output")
