r"""The recurrence of an LSTM with projection (LSTMP) as an ONNX ``Scan``, built with ``onnx.helper``.

ONNX's ``LSTM`` operator has no projection, so :class:`rnnlab.export.onnx_layers.RecurrentGraph` leaves a
placeholder node (``rnnlab.export::LSTMPScan``) per direction in the exported graph, and
:func:`expand_lstmp` replaces each by a ``Scan`` whose body is one step of torch's LSTMP (Sak et al. 2014):

.. math::
    i, f, g, o = \mathrm{split}_4(\tilde x_t + h_{t-1} W_{hh}^\top), \quad
    c_t = \sigma(f) \odot c_{t-1} + \sigma(i) \odot \tanh(g), \quad
    h_t = (\sigma(o) \odot \tanh(c_t))\, W_{hr}^\top

where :math:`\tilde x_t = x_t W_{ih}^\top + b_{ih} + b_{hh}` was computed for all steps before the Scan. A
padded step (``valid`` False) keeps the previous state, so each sequence's forward direction stops after its
last step and its reverse direction starts there: a PackedSequence's semantics. The Scan's length is that of
its input, free like the other recurrent operators'.

Placeholder inputs: ``gx`` (T, B, 4H), ``W_hhT`` (P, 4H), ``W_hrT`` (H, P), ``valid`` (T, B, 1) bool,
``h0`` (B, P), ``c0`` (B, H); attribute ``reverse``; outputs ``Y`` (T, B, P), ``h_n`` (B, P), ``c_n`` (B, H).
"""

from __future__ import annotations

__all__ = ["expand_lstmp"]

_DOMAIN, _OP = "rnnlab.export", "LSTMPScan"


def _step_body(prefix: str, W_hhT: str, W_hrT: str, dtype: int):
    """The Scan body (h_prev, c_prev, gx_t, valid_t) -> (h, c, y_t); the weights come from the outer graph."""
    from onnx import TensorProto, helper

    n = lambda name: f"{prefix}/{name}"  # noqa: E731 - names unique within the whole model
    node = helper.make_node
    nodes = [
        node("MatMul", [n("h_prev"), W_hhT], [n("gh")]),  # (B, 4H)
        node("Add", [n("gx_t"), n("gh")], [n("gates")]),
        node(
            "Split",
            [n("gates")],
            [n("ingate"), n("forgetgate"), n("cellgate"), n("outgate")],
            axis=-1,
            num_outputs=4,
        ),  # fmt: skip
        node("Sigmoid", [n("ingate")], [n("i")]),
        node("Sigmoid", [n("forgetgate")], [n("f")]),
        node("Tanh", [n("cellgate")], [n("g")]),
        node("Sigmoid", [n("outgate")], [n("o")]),
        node("Mul", [n("f"), n("c_prev")], [n("fc")]),
        node("Mul", [n("i"), n("g")], [n("ig")]),
        node("Add", [n("fc"), n("ig")], [n("c_new")]),  # c = f * c_prev + i * g
        node("Tanh", [n("c_new")], [n("tanh_c")]),
        node("Mul", [n("o"), n("tanh_c")], [n("o_tanh_c")]),
        node("MatMul", [n("o_tanh_c"), W_hrT], [n("h_new")]),  # h = (o * tanh(c)) W_hr^T, (B, P)
        node("Where", [n("valid_t"), n("h_new"), n("h_prev")], [n("h")]),  # padded steps keep the state
        node("Where", [n("valid_t"), n("c_new"), n("c_prev")], [n("c")]),
        node("Identity", [n("h")], [n("y_t")]),
    ]
    value = helper.make_tensor_value_info
    inputs = [value(n("h_prev"), dtype, None), value(n("c_prev"), dtype, None), value(n("gx_t"), dtype, None),
              value(n("valid_t"), TensorProto.BOOL, None)]  # fmt: skip
    outputs = [value(n("h"), dtype, None), value(n("c"), dtype, None), value(n("y_t"), dtype, None)]
    return helper.make_graph(nodes, f"{prefix}/step", inputs, outputs)


def _elem_type(model, name: str) -> int:
    from onnx import TensorProto

    for info in (*model.graph.input, *model.graph.value_info, *model.graph.output):
        if info.name == name:
            return info.type.tensor_type.elem_type
    return TensorProto.FLOAT


def expand_lstmp(model):
    """Replace every ``rnnlab.export::LSTMPScan`` node of ``model`` (an onnx.ModelProto) by a Scan, in place;
    drops the placeholder's domain from the model's opsets. Returns ``model``."""
    from onnx import helper

    graph = model.graph
    nodes = list(graph.node)
    if not any(node.domain == _DOMAIN and node.op_type == _OP for node in nodes):
        return model
    del graph.node[:]
    for index, node in enumerate(nodes):
        if not (node.domain == _DOMAIN and node.op_type == _OP):
            graph.node.append(node)
            continue
        gx, W_hhT, W_hrT, valid, h0, c0 = node.input
        reverse = next((a.i for a in node.attribute if a.name == "reverse"), 0)
        prefix = f"lstmp_scan_{index}"
        body = _step_body(prefix, W_hhT, W_hrT, _elem_type(model, node.output[0]))
        h_n, c_n = node.output[1], node.output[2]
        graph.node.append(
            helper.make_node(
                "Scan",
                [h0, c0, gx, valid],
                [h_n, c_n, node.output[0]],
                name=prefix,
                body=body,
                num_scan_inputs=2,
                scan_input_directions=[reverse, reverse],
                scan_output_directions=[reverse],  # reverse: y_t lands back at step t
            )
        )
    kept = [opset for opset in model.opset_import if opset.domain != _DOMAIN]
    del model.opset_import[:]
    model.opset_import.extend(kept)
    return model
