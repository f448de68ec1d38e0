"""rnnlab.nn.ChoGRU exported to ONNX: ONNX's own GRU node with linear_before_reset=0, run in onnxruntime
against the rnnlab layer (batched, batch_first, unbatched, packed with lengths, initial state, two layers,
both directions), and different from what the same weights give as a torch-form GRU."""

from __future__ import annotations

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from export_testing import assert_close, run, session  # noqa: E402

import rnnlab.nn as rnn  # noqa: E402
from rnnlab.export import to_onnx  # noqa: E402

pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.xdist_group("export_cho_gru")]

# name -> (layer arguments, packed example, pass h0, unbatched)
CASES = {
    "2layers_bi_packed_hx": (dict(num_layers=2, bidirectional=True), True, True, False),
    "batch_first_hx": (dict(batch_first=True), False, True, False),
    "unbatched_2layers": (dict(num_layers=2), False, False, True),
    "no_bias_bi_batch_first_packed": (
        dict(bias=False, bidirectional=True, batch_first=True),
        True,
        False,
        False,
    ),
}


def _example(layer, B, T, packed, hx, unbatched, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*((T,) if unbatched else (B, T)), 3, generator=g)
    if not unbatched and not layer.batch_first:
        x = x.transpose(0, 1).contiguous()  # (T, B, H_in)
    lengths = None
    if packed:
        lengths = torch.randint(1, T + 1, (B,), generator=g)
        lengths[0] = T
    D = 2 if layer.bidirectional else 1
    h0 = torch.randn(D * layer.num_layers, *(() if unbatched else (B,)), 4, generator=g) if hx else None
    return x, lengths, h0


def _reference(layer, x, lengths, h0):
    with torch.no_grad():
        if lengths is None:
            return layer(x, h0)
        packed = pack_padded_sequence(x, lengths, batch_first=layer.batch_first, enforce_sorted=False)
        out, h_n = layer(packed, h0)
        T = x.shape[1] if layer.batch_first else x.shape[0]
        return pad_packed_sequence(out, batch_first=layer.batch_first, total_length=T)[0], h_n


def _feeds(x, lengths, h0):
    feeds = {"input": x}
    if lengths is not None:
        feeds["lengths"] = lengths
    if h0 is not None:
        feeds["h0"] = h0
    return feeds


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder, done = tmp_path_factory.mktemp("onnx_cho"), {}
    for name, (kwargs, packed, hx, unbatched) in CASES.items():
        torch.manual_seed(0)
        layer = rnn.ChoGRU(3, 4, **kwargs).eval()
        x, lengths, h0 = _example(layer, 2, 4, packed, hx, unbatched, seed=1)
        first = (
            x
            if lengths is None
            else pack_padded_sequence(x, lengths, layer.batch_first, enforce_sorted=False)
        )
        args = (first,) if h0 is None else (first, h0)
        done[name] = layer, to_onnx(layer, args, folder / f"{name}.onnx")
    return done


@pytest.mark.parametrize("name", list(CASES))
def test_one_onnx_gru_node_per_layer_with_linear_before_reset_0(exported, name):
    layer, path = exported[name]
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    nodes = [n for n in model.graph.node if n.op_type == "GRU"]
    assert len(nodes) == layer.num_layers
    for node in nodes:
        attrs = {a.name: a.i for a in node.attribute if a.name == "linear_before_reset"}
        assert attrs == {"linear_before_reset": 0}
    assert not {"Loop", "Scan"} & {n.op_type for n in model.graph.node}


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize(("B", "T"), [(1, 6), (3, 5)])
def test_onnxruntime_matches_the_rnnlab_layer(exported, name, B, T):
    layer, path = exported[name]
    _, packed, hx, unbatched = CASES[name]
    x, lengths, h0 = _example(layer, B, T, packed, hx, unbatched, seed=10 * B + T)
    got = run(session(path), **_feeds(x, lengths, h0))
    out, h_n = _reference(layer, x, lengths, h0)
    assert_close(got["output"], out, "output")
    assert_close(got["h_n"], h_n, "h_n")


def test_the_exported_formula_is_not_torchs(exported):
    layer, path = exported["batch_first_hx"]
    torch_form = rnn.GRU(3, 4, batch_first=True)
    torch_form.load_state_dict(layer.state_dict(), strict=True)
    x, _, h0 = _example(layer, 2, 5, False, True, False, seed=7)
    got = torch.from_numpy(run(session(path), input=x, h0=h0)["output"])
    with torch.no_grad():
        assert (got - torch_form(x, h0)[0]).abs().max() > 1e-3
