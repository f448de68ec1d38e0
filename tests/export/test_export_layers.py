"""rnnlab.nn's recurrent layers exported to ONNX and run in onnxruntime: the file checks, uses ONNX's own
recurrent operators (a Scan for LSTMP), runs at sizes other than the example's with rnnlab's outputs and final
states, and a padded batch with lengths gives each sequence its own answer."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from export_testing import assert_close, op_types, run, session  # noqa: E402

import rnnlab.nn as rnn  # noqa: E402
from rnnlab.export import ExportError, to_onnx  # noqa: E402

# One worker per module under `--dist loadgroup`, so each layer is exported once.
pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.xdist_group("export_layers")]


@dataclass(frozen=True)
class Case:
    make: object  # () -> layer
    packed: bool  # export with a PackedSequence: the graph takes `lengths`
    hx: bool  # pass an initial state
    unbatched: bool = False


# Each case is one export (a few seconds); together they cover every option of the issue.
CASES = {
    "rnn_tanh_2layers_bi_hx": Case(lambda: rnn.RNN(3, 5, 2, bidirectional=True), packed=False, hx=True),
    "rnn_relu_batch_first_packed": Case(
        lambda: rnn.RNN(3, 5, nonlinearity="relu", batch_first=True), packed=True, hx=False
    ),
    "lstm_2layers_bi_batch_first_packed_hx": Case(
        lambda: rnn.LSTM(3, 5, 2, batch_first=True, bidirectional=True), packed=True, hx=True
    ),
    "lstm_no_bias": Case(lambda: rnn.LSTM(3, 5, bias=False), packed=False, hx=False),
    "lstmp_2layers_bi_packed_hx": Case(
        lambda: rnn.LSTM(3, 6, 2, bidirectional=True, proj_size=2), packed=True, hx=True
    ),
    "lstmp_batch_first": Case(lambda: rnn.LSTM(3, 6, batch_first=True, proj_size=4), packed=False, hx=False),
    "gru_2layers_bi_packed_hx": Case(lambda: rnn.GRU(3, 5, 2, bidirectional=True), packed=True, hx=True),
    "gru_batch_first_hx": Case(lambda: rnn.GRU(3, 5, batch_first=True), packed=False, hx=True),
    "gru_unbatched_hx": Case(lambda: rnn.GRU(3, 5, 2), packed=False, hx=True, unbatched=True),
    # torch.onnx cannot export torch.nn.LSTM with proj_size; the same parameters go through rnnlab's path.
    "torch_nn_lstmp_bi_packed": Case(
        lambda: torch.nn.LSTM(3, 6, bidirectional=True, proj_size=2), packed=True, hx=False
    ),
}


def _state(layer, B: int | None, generator) -> tuple:
    """A random initial state: (h0,) or (h0, c0), (D*L, B, ·), or (D*L, ·) unbatched."""
    D = 2 if layer.bidirectional else 1
    P = getattr(layer, "proj_size", 0) or layer.hidden_size
    batch = () if B is None else (B,)
    h0 = torch.randn(D * layer.num_layers, *batch, P, generator=generator)
    if isinstance(layer, (rnn.LSTM, torch.nn.LSTM)):
        return h0, torch.randn(D * layer.num_layers, *batch, layer.hidden_size, generator=generator)
    return (h0,)


def _inputs(case: Case, layer, B: int, T: int, seed: int):
    """Example input in the layer's layout, lengths (longest = T) or None, and the state or None."""
    g = torch.Generator().manual_seed(seed)
    shape = (T, layer.input_size) if case.unbatched else (B, T, layer.input_size)
    x = torch.randn(*shape, generator=g)
    if not case.unbatched and not layer.batch_first:
        x = x.transpose(0, 1).contiguous()  # (T, B, H_in)
    lengths = None
    if case.packed:
        lengths = torch.randint(1, T + 1, (B,), generator=g)
        lengths[0] = T  # the longest fills the padded length
    state = _state(layer, None if case.unbatched else B, g) if case.hx else None
    return x, lengths, state


def _reference(layer, x, lengths, state):
    """rnnlab's (or torch's) answer: output (padded, zero past each length) and the final states."""
    hx = None if state is None else (state if len(state) == 2 else state[0])
    with torch.no_grad():
        if lengths is None:
            out, final = layer(x, hx)
        else:
            packed = pack_padded_sequence(x, lengths, batch_first=layer.batch_first, enforce_sorted=False)
            out, final = layer(packed, hx)
            T = x.shape[1] if layer.batch_first else x.shape[0]
            out, _ = pad_packed_sequence(out, batch_first=layer.batch_first, total_length=T)
    return out, final if isinstance(final, tuple) else (final,)


def _feeds(x, lengths, state) -> dict:
    feeds = {"input": x}
    if lengths is not None:
        feeds["lengths"] = lengths
    if state is not None:
        feeds.update(zip(("h0", "c0"), state, strict=False))
    return feeds


@pytest.fixture(scope="module")
def export_case(tmp_path_factory):
    """name -> (case, layer, path): the layer exported from an example of batch 2, length 4, once."""
    done: dict = {}
    folder = tmp_path_factory.mktemp("onnx")

    def export(name: str):
        if name not in done:
            case = CASES[name]
            torch.manual_seed(0)
            layer = case.make()
            x, lengths, state = _inputs(case, layer, B=2, T=4, seed=1)
            first = x
            if lengths is not None:
                first = pack_padded_sequence(x, lengths, layer.batch_first, enforce_sorted=False)
            hx = None if state is None else (state if len(state) == 2 else state[0])
            args = (first,) if hx is None else (first, hx)
            done[name] = case, layer, to_onnx(layer, args, folder / f"{name}.onnx")
        return done[name]

    return export


@pytest.fixture(params=list(CASES))
def exported(request, export_case):
    return export_case(request.param)


@pytest.fixture(params=[name for name, case in CASES.items() if case.packed])
def exported_packed(request, export_case):
    return export_case(request.param)


def test_file_checks_and_uses_onnx_recurrent_operators(exported):
    case, layer, path = exported
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    is_lstm = isinstance(layer, (rnn.LSTM, torch.nn.LSTM))
    proj = getattr(layer, "proj_size", 0)
    expected = "Scan" if proj else {rnn.RNN: "RNN", rnn.GRU: "GRU"}.get(type(layer), "LSTM")
    nodes = [n for n in model.graph.node if n.op_type == expected]
    directions = 2 if layer.bidirectional else 1
    assert len(nodes) == layer.num_layers * (
        directions if proj else 1
    )  # one node per layer (Scan: direction)
    assert "Loop" not in op_types(path)
    if expected == "GRU":
        assert all(a.i == 1 for n in nodes for a in n.attribute if a.name == "linear_before_reset")
    inputs = ["input"] + (["lengths"] if case.packed else []) + (["h0"] if case.hx else [])
    inputs += ["c0"] if case.hx and is_lstm else []
    assert [i.name for i in model.graph.input] == inputs
    assert [o.name for o in model.graph.output] == ["output", "h_n"] + (["c_n"] if is_lstm else [])


@pytest.mark.parametrize(("B", "T"), [(1, 7), (5, 3)])
def test_matches_rnnlab_at_other_sizes(exported, B, T):
    case, layer, path = exported
    x, lengths, state = _inputs(case, layer, B, T, seed=10 * B + T)
    got = run(session(path), **_feeds(x, lengths, state))
    out, final = _reference(layer, x, lengths, state)
    assert_close(got["output"], out, "output")
    for name, expected in zip(("h_n", "c_n"), final, strict=False):
        assert_close(got[name], expected, name)


def test_padded_batch_gives_each_sequence_its_own_answer(exported_packed):
    case, layer, path = exported_packed
    B, T = 4, 6
    x, _, state = _inputs(case, layer, B, T, seed=3)
    lengths = torch.tensor([6, 1, 4, 2])
    sess = session(path)
    batch = run(sess, **_feeds(x, lengths, state))
    time_axis, batch_axis = (1, 0) if layer.batch_first else (0, 1)
    for b, n in enumerate(lengths.tolist()):
        alone_x = x.narrow(batch_axis, b, 1).narrow(time_axis, 0, n)
        alone_state = None if state is None else tuple(s[:, b : b + 1] for s in state)
        alone = run(sess, **_feeds(alone_x, torch.tensor([n]), alone_state))
        own = torch.from_numpy(batch["output"]).narrow(batch_axis, b, 1).narrow(time_axis, 0, n)
        assert_close(alone["output"], own, f"sequence {b}: output")
        padding = torch.from_numpy(batch["output"]).narrow(batch_axis, b, 1).narrow(time_axis, n, T - n)
        assert bool((padding == 0).all()), f"sequence {b}: output past its length is not zero"
        for name in ("h_n", "c_n")[: len(state or ())] or ("h_n",):
            assert_close(alone[name], torch.from_numpy(batch[name][:, b : b + 1]), f"sequence {b}: {name}")


def test_static_export_fixes_the_example_shapes(tmp_path):
    layer = rnn.GRU(3, 4)
    path = to_onnx(layer, (torch.randn(5, 2, 3),), tmp_path / "gru.onnx", dynamic=False)
    dims = [d.dim_value for d in onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim]
    assert dims == [5, 2, 3]
    x = torch.randn(5, 2, 3)
    assert_close(run(session(path), input=x)["output"], layer(x)[0], "output")


@pytest.mark.parametrize(
    ("make", "args", "message"),
    [
        (lambda: rnn.LayerNormLSTM(3, 4), (torch.randn(4, 2, 3),), "LayerNormLSTM"),
        (lambda: rnn.GRU(3, 4).double(), (torch.randn(4, 2, 3, dtype=torch.float64),), "float64"),
        (lambda: rnn.GRU(3, 4), (torch.randn(4, 2, 3, dtype=torch.float64),), "float64"),
        (lambda: rnn.GRU(3, 4), (torch.randn(4, 1, 3),), "batch axis"),
        (lambda: rnn.GRU(3, 4), (torch.randn(4, 2, 5),), "args[0]"),
        (lambda: rnn.LSTM(3, 4), (torch.randn(4, 2, 3), torch.zeros(1, 2, 4)), "(h0, c0)"),
    ],
)
def test_what_cannot_be_exported_raises_naming_it(tmp_path, make, args, message):
    with pytest.raises(
        ExportError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")
    ):
        to_onnx(make(), args, tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()
