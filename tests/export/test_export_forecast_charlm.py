"""The forecaster and the char LM exported to ONNX and run in onnxruntime against rnnlab: the files check,
use ONNX's own recurrent operators, name their inputs and outputs as documented, and give rnnlab's answers
at batch sizes (and, for the char LM, lengths) other than the example's; the char LM's state fed back
chunk by chunk equals one pass; cells without an ONNX form raise errors that name them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from export_testing import assert_close, op_types, run, session  # noqa: E402

from rnnlab.export import ExportError, to_onnx  # noqa: E402
from rnnlab.models.charlm import CharLM, CharLMConfig  # noqa: E402
from rnnlab.models.forecaster import ForecasterConfig, RecurrentForecaster  # noqa: E402

# One worker per module under `--dist loadgroup`, so each model is exported once.
pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.xdist_group("export_forecast_charlm")]

W, H = 8, 3  # window, horizon
FORECASTERS = {
    "lstm_ensemble3_calendar": dict(cell="lstm", ensemble=3, num_features=2, period=4),
    "gru_2layers_no_calendar": dict(
        cell="gru", num_layers=2, ensemble=2, num_features=0, period=1, quantiles="0.05,0.25,0.5,0.75,0.95"
    ),  # fmt: skip
    "rnn_no_highway": dict(cell="rnn", ensemble=1, num_features=4, period=12, highway=False),
}
V = 9  # characters, <pad> and <unk> included
CHARLMS = {
    "lstm_2layers_weight_drop": dict(cell="lstm", num_layers=2, weight_drop=0.4, dropout=0.2),
    "gru_tied_with_projection": dict(cell="gru", tie_weights=True),
    "variational_dropout_lstm": dict(cell="variational_dropout_lstm", dropout=0.3),
}


def _forecaster(name: str) -> RecurrentForecaster:
    torch.manual_seed(0)
    config = ForecasterConfig(hidden_size=5, window=W, horizon=H, dropout=0.1, **FORECASTERS[name])
    model = RecurrentForecaster(config).eval()
    for member in model.members:  # the head starts at zero: give the encoder a say in the answer
        torch.nn.init.normal_(member.head.weight, std=0.5)
        torch.nn.init.normal_(member.head.bias, std=0.5)
    if hasattr(model, "set_spread"):  # a calibrated model: the export must carry the calibration along
        model.set_spread(0.7, 1.4)
    return model


def _window(model: RecurrentForecaster, B: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    F = model.config.num_features
    return torch.randn(B, W, generator=g), torch.rand(B, W, F, generator=g) * 2 - 1


@pytest.fixture(scope="module", params=list(FORECASTERS))
def forecaster(request, tmp_path_factory):
    model = _forecaster(request.param)
    path = to_onnx(model, _window(model, 2, seed=0), tmp_path_factory.mktemp("onnx") / "f.onnx")
    return model, path


def test_forecaster_file_checks_and_names_its_inputs_and_outputs(forecaster):
    model, path = forecaster
    graph = onnx.load(str(path))
    onnx.checker.check_model(graph, full_check=True)
    assert [i.name for i in graph.graph.input] == ["x", "calendar"]
    assert [o.name for o in graph.graph.output] == ["quantiles"]
    c = model.config
    op = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}[c.cell]
    assert sum(n.op_type == op for n in graph.graph.node) == c.ensemble * c.num_layers  # one per layer
    assert "Loop" not in op_types(path) and "Scan" not in op_types(path)
    batch = graph.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch.dim_param and not batch.dim_value  # the batch is free


@pytest.mark.parametrize("B", [1, 7])
def test_forecaster_matches_rnnlab_at_other_batch_sizes(forecaster, B):
    model, path = forecaster
    x, calendar = _window(model, B, seed=B)
    got = run(session(path), x=x, calendar=calendar)["quantiles"]
    with torch.no_grad():
        expected = model.predict(x, calendar)  # (B, H, Q)
    assert_close(got, expected, "quantiles")
    assert np.all(np.diff(got, axis=-1) >= 0), "quantiles not increasing"


def test_forecaster_window_is_fixed(forecaster):
    """The highway reads exactly W values: a window of another length is refused, not silently read."""
    model, path = forecaster
    x, calendar = _window(model, 2, seed=3)
    with pytest.raises(Exception, match="(?i)dimension|shape|index"):
        run(session(path), x=x[:, 1:], calendar=calendar[:, 1:])


def test_forecaster_with_a_variant_cell_or_a_bad_example_raises_naming_it(tmp_path):
    model = RecurrentForecaster(ForecasterConfig(cell="layernorm_lstm", window=W, horizon=H, ensemble=1))
    with pytest.raises(ExportError, match="model.cell='layernorm_lstm'"):
        to_onnx(model, (torch.zeros(2, W), torch.zeros(2, W, 0)), tmp_path / "x.onnx")
    good = _forecaster("rnn_no_highway")
    with pytest.raises(ExportError, match=r"args: expected \(x \(B, 8\), calendar \(B, 8, 4\)\)"):
        to_onnx(good, (torch.zeros(2, W + 1), torch.zeros(2, W + 1, 4)), tmp_path / "x.onnx")
    with pytest.raises(ExportError, match="batch axis"):
        to_onnx(good, (torch.zeros(1, W), torch.zeros(1, W, 4)), tmp_path / "x.onnx")
    assert not list(tmp_path.iterdir())


def _charlm(name: str) -> CharLM:
    torch.manual_seed(0)
    config = CharLMConfig(vocab_size=V, embedding_dim=4, hidden_size=6, **CHARLMS[name])
    return CharLM(config).eval()


def _state(model: CharLM, B: int, g: torch.Generator) -> dict[str, torch.Tensor]:
    shape = (model.config.num_layers, B, model.config.hidden_size)
    state = {"h0": torch.randn(*shape, generator=g)}
    if model.has_cell_state:
        state["c0"] = torch.randn(*shape, generator=g)
    return state


def _reference(model: CharLM, ids: torch.Tensor, state: dict) -> dict[str, torch.Tensor]:
    hx = (state["h0"], state["c0"]) if model.has_cell_state else state["h0"]
    with torch.no_grad():
        logits, final = model(ids, hx)
    finals = final if isinstance(final, tuple) else (final,)
    return {"logits": logits, **dict(zip(("h_n", "c_n"), finals, strict=False))}


@pytest.fixture(scope="module", params=list(CHARLMS))
def charlm(request, tmp_path_factory):
    model = _charlm(request.param)
    ids = torch.tensor([[2, 3, 4], [5, 6, 7]])
    path = to_onnx(model, (ids,), tmp_path_factory.mktemp("onnx") / "lm.onnx")
    return model, path


def test_charlm_file_checks_and_names_its_inputs_and_outputs(charlm):
    model, path = charlm
    graph = onnx.load(str(path))
    onnx.checker.check_model(graph, full_check=True)
    lstm = model.has_cell_state
    assert [i.name for i in graph.graph.input] == ["ids", "h0"] + (["c0"] if lstm else [])
    assert [o.name for o in graph.graph.output] == ["logits", "h_n"] + (["c_n"] if lstm else [])
    op = "LSTM" if lstm else "GRU"
    assert sum(n.op_type == op for n in graph.graph.node) == model.config.num_layers


@pytest.mark.parametrize(("B", "T"), [(1, 7), (4, 1), (3, 5)])
def test_charlm_matches_rnnlab_at_other_sizes(charlm, B, T):
    model, path = charlm
    g = torch.Generator().manual_seed(B * 10 + T)
    ids, state = torch.randint(0, V, (B, T), generator=g), _state(model, B, g)
    got = run(session(path), ids=ids, **state)
    for name, expected in _reference(model, ids, state).items():
        assert_close(got[name], expected, name)


def test_charlm_state_fed_back_chunk_by_chunk_equals_one_pass(charlm):
    model, path = charlm
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, V, (2, 9), generator=g)
    state = {k: v.numpy() for k, v in _state(model, 2, g).items()}
    sess, whole = session(path), run(session(path), ids=ids, **state)
    logits = []
    for chunk in (ids[:, :4], ids[:, 4:5], ids[:, 5:]):  # 4, 1 and 4 characters
        out = run(sess, ids=chunk, **state)
        logits.append(out["logits"])
        state = {"h0": out["h_n"]} | ({"c0": out["c_n"]} if "c_n" in out else {})
    assert_close(np.concatenate(logits, axis=1), torch.from_numpy(whole["logits"]), "logits")
    assert_close(state["h0"], torch.from_numpy(whole["h_n"]), "h_n")


@pytest.mark.parametrize("cell", ["layernorm_lstm", "layernorm_gru"])
def test_charlm_with_a_variant_cell_raises_naming_it(tmp_path, cell):
    model = CharLM(CharLMConfig(vocab_size=V, embedding_dim=4, hidden_size=6, cell=cell))
    with pytest.raises(ExportError, match=f"model.cell='{cell}'"):
        to_onnx(model, (torch.tensor([[2, 3], [4, 5]]),), tmp_path / "x.onnx")
    assert not list(tmp_path.iterdir())


def test_charlm_bad_state_raises_naming_it(tmp_path):
    model = _charlm("lstm_2layers_weight_drop")
    ids = torch.tensor([[2, 3], [4, 5]])
    with pytest.raises(ExportError, match=r"args\[1\]: expected the state \(h0, c0\), each \(2, 2, 6\)"):
        to_onnx(model, (ids, torch.zeros(2, 2, 6)), tmp_path / "x.onnx")
