"""``to_onnx``: an rnnlab layer or task model to an ONNX file, through torch's dynamo-based exporter.

The graph is traced by ``torch.onnx.export(..., dynamo=True)`` from the wrappers of
:mod:`rnnlab.export.onnx_models`; each recurrent layer enters it as ONNX's own ``RNN`` / ``GRU`` / ``LSTM``
operator (:func:`torch.onnx.ops.symbolic_multi_out`) or, for an LSTM with ``proj_size``, as a ``Scan``
(see :mod:`rnnlab.export.onnx_layers`). The module is exported in eval mode (no dropout) and left in the
mode it had.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

from rnnlab.export.onnx_layers import OPSET, ExportError, layer_spec
from rnnlab.export.onnx_models import (
    CharLMModule,
    ClassifierModule,
    DecoderStepModule,
    EncoderModule,
    ForecasterModule,
    LayerModule,
)
from rnnlab.export.onnx_scan import expand_lstmp

__all__ = ["to_onnx", "ExportError"]


def _shape(x: object) -> object:
    return tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__


@contextlib.contextmanager
def _quiet_exporter():
    """Silence the exporter's own chatter: deprecation warnings raised inside torch's tracing (which a
    ``-W error`` run would turn into a failed trace) and its log lines about optional packages."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _export(module: nn.Module, inputs: dict, outputs: list[str], dynamic: dict | None, path: Path) -> Path:
    """Trace ``module`` with the named example ``inputs`` (None = absent) and save the ONNX model."""
    names = [name for name, value in inputs.items() if value is not None]
    dynamic_shapes = None
    if dynamic is not None:
        dims = {}  # one torch.export.Dim per axis name, shared between the inputs that carry it
        dynamic_shapes = {
            name: None
            if value is None
            else {
                axis: dims.setdefault(dim, torch.export.Dim(dim))
                for axis, dim in dynamic.get(name, {}).items()
            }
            for name, value in inputs.items()
        }
    path.parent.mkdir(parents=True, exist_ok=True)
    with _quiet_exporter(), torch.no_grad():
        program = torch.onnx.export(
            module,
            tuple(inputs.values()),
            dynamo=True,
            input_names=names,
            output_names=outputs,
            dynamic_shapes=dynamic_shapes,
            opset_version=OPSET,
            verbose=False,
            report=False,
        )
    from rnnlab.training import atomic_write_bytes

    # An LSTM with projection left placeholder nodes for its recurrence: expand them into Scans. Written
    # atomically (a reader never sees half a model); onnx.save would leave a truncated file on failure.
    return atomic_write_bytes(path, expand_lstmp(program.model_proto).SerializeToString())


def _check_dynamic_sizes(name: str, x: Tensor, axes: dict[int, str]) -> None:
    """torch.export fixes an axis whose example size is 0 or 1, so a dynamic axis needs >= 2."""
    for axis, dim in axes.items():
        if x.shape[axis] < 2:
            raise ExportError(
                f"{name}: with dynamic=True the example's {dim} axis (dim {axis}) needs a size >= 2 "
                f"(torch.export fixes sizes 0 and 1), received shape {tuple(x.shape)}"
            )


def _layer_inputs(layer: nn.Module, args: tuple) -> tuple[dict, dict]:
    """Named example inputs of a layer export and their dynamic axes."""
    spec = layer_spec(layer)
    if not args or len(args) > 2:
        raise ExportError(f"args: expected (input,) or (input, hx), received {len(args)} values")
    x, lengths = args[0], None
    if isinstance(x, PackedSequence):
        x, lengths = pad_packed_sequence(
            x, batch_first=spec.batch_first
        )  # the caller's order, lengths on the CPU
    if not isinstance(x, Tensor) or x.dim() not in (2, 3) or x.shape[-1] != spec.input_size:
        raise ExportError(
            f"args[0]: expected an input (T, B, {spec.input_size}) / (B, T, {spec.input_size}) / (T, "
            f"{spec.input_size}) or a PackedSequence, received {_shape(x)}"
        )
    if x.dtype != torch.float32:
        raise ExportError(
            f"args[0]: expected float32 (what ONNX runtime's recurrent kernels run), received {x.dtype}"
        )
    hx = args[1] if len(args) == 2 else None
    is_lstm = spec.mode == "LSTM"
    if hx is not None and is_lstm and not (isinstance(hx, tuple | list) and len(hx) == 2):
        raise ExportError(f"args[1]: expected the LSTM's (h0, c0), received {type(hx).__name__}")
    if hx is not None and not is_lstm and not isinstance(hx, Tensor):
        raise ExportError(f"args[1]: expected h0 as a tensor, received {type(hx).__name__}")
    h0, c0 = (None, None) if hx is None else ((hx[0], hx[1]) if is_lstm else (hx, None))
    unbatched = x.dim() == 2
    batch_axis = 0 if spec.batch_first else 1
    axes = {"input": {0: "time"} if unbatched else {batch_axis: "batch", 1 - batch_axis: "time"}}
    if lengths is not None:
        axes["lengths"] = {0: "batch"}
    if not unbatched:
        axes["h0"] = axes["c0"] = {1: "batch"}
    inputs = {"input": x, "lengths": None if lengths is None else lengths.to(torch.int64), "h0": h0, "c0": c0}
    return inputs, axes


def to_onnx(module: nn.Module, args: tuple, path: str | Path, *, dynamic: bool = True):
    """Export an rnnlab recurrent layer or task model to ONNX; returns the path(s) written.

    Args:
        module: an ``RNN`` (tanh or relu) / ``LSTM`` (with or without ``proj_size``) / ``GRU`` of
            :mod:`rnnlab.nn` (torch.nn's are accepted too), any number of layers, bidirectional or not,
            batch_first or not; a :class:`~rnnlab.models.classifier.RecurrentClassifier` (rnn / lstm / gru
            encoder); a :class:`~rnnlab.models.seq2seq.Seq2Seq`; a
            :class:`~rnnlab.models.forecaster.RecurrentForecaster` (rnn / lstm / gru members); or a
            :class:`~rnnlab.models.charlm.CharLM` (lstm / gru, also with weight drop or the
            variational-dropout LSTM, which in eval mode are plain LSTMs).
        args: an example call. A layer: ``(input,)`` or ``(input, hx)`` with ``hx`` = ``h0`` or, for the LSTM,
            ``(h0, c0)``; ``input`` may be a PackedSequence, and then the graph takes the padded input and
            its lengths. The classifier: ``(ids, lengths)``. Seq2Seq: ``(src, src_lengths)``. The forecaster:
            ``(x, calendar)``. The char LM: ``(ids,)`` or ``(ids, state)`` (``h0``, or ``(h0, c0)`` for an
            LSTM; zeros when left out).
        path: the ``.onnx`` file to write; for Seq2Seq, ``<stem>.encoder.onnx`` and ``<stem>.decoder.onnx``
            are written beside it instead.
        dynamic: leave the batch size and the length free (the example then needs sizes >= 2 on both);
            False fixes the example's shapes.

    Inputs and outputs of the graph, by name (absent ones are left out):

    * layer: ``input`` (the layer's layout, float32), ``lengths`` (B,) int64 when the example was packed,
      ``h0``, ``c0`` -> ``output`` (zero at padded steps), ``h_n``, ``c_n``; shapes as torch.nn's;
    * classifier: ``ids`` (B, T) int64 padded, ``lengths`` (B,) int64 >= 1 -> ``logits`` (B, C) and, with
      attention pooling, ``attention`` (B, T) (zero at padding, rows summing to one);
    * seq2seq encoder: ``src`` (B, T) int64, ``src_lengths`` (B,) int64 -> ``memory`` (B, T, H), ``h0``
      (L, B, H), ``c0`` (LSTM), ``feed`` (B, H, input feeding: zeros);
    * seq2seq decoder step: ``y_prev`` (B,) int64, ``h0``, ``c0``, ``feed``, ``memory``, ``src_lengths`` ->
      ``logits`` (B, V), ``h_n``, ``c_n``, ``feed_n``, ``attention`` (B, T): feed ``h_n`` back as ``h0``
      (and so on) for the next step, starting from the encoder's outputs and ``<bos>``;
    * forecaster: ``x`` (B, W) float32, the last W values scaled as the run's scaler does, ``calendar``
      (B, W, F) float32, the calendar features of those W times -> ``quantiles`` (B, H, Q), the ensemble's
      mean, in the scaled space (only the batch is free: the window and horizon are the model's);
    * char LM: ``ids`` (B, T) int64, ``h0`` (L, B, H) and, for an LSTM, ``c0`` (L, B, H) -> ``logits``
      (B, T, V), the next character's scores after each position, ``h_n``, ``c_n``: feed them back as
      ``h0`` / ``c0`` with the next chunk (one character at a time to sample); start from zeros.

    Every recurrent layer is ONNX's ``RNN`` / ``GRU`` / ``LSTM`` operator (one node per layer, lengths as
    ``sequence_lens``), except an LSTM with ``proj_size``, which becomes a ``Scan`` over one step.

    Raises:
        ExportError: a module or option that cannot be exported (a variant cell, a dtype other than
            float32), or an example that does not fit; the message names it.
    """
    if not isinstance(args, tuple):
        raise ExportError(f"args: expected a tuple of example inputs, received {type(args).__name__}")
    if not isinstance(dynamic, bool):
        raise ExportError(f"dynamic: expected a bool, received {dynamic!r}")
    if not isinstance(module, nn.Module):
        raise ExportError(f"module: expected a torch.nn.Module, received {type(module).__name__}")
    dtypes = sorted({str(p.dtype) for p in module.parameters()} - {"torch.float32"})
    if dtypes:
        raise ExportError(
            f"module: expected float32 parameters (what ONNX runtime's recurrent kernels run), "
            f"received {dtypes}"
        )
    path = Path(path)
    was_training = module.training
    module.eval()
    try:
        return _model_export(module)(module, args, path, dynamic)
    finally:
        module.train(was_training)


def _model_export(module: nn.Module):
    """The export of ``module``'s model class (the first line of :data:`MODEL_EXPORTS` it is an instance
    of), else the single-layer export."""
    import importlib

    for spec, export in MODEL_EXPORTS.items():
        where, _, name = spec.partition(":")
        if isinstance(module, getattr(importlib.import_module(where), name)):
            return export
    return _layer_to_onnx


def _layer_to_onnx(module: nn.Module, args: tuple, path: Path, dynamic: bool) -> Path:
    inputs, axes = _layer_inputs(module, args)
    if dynamic:
        _check_dynamic_sizes("args[0]", inputs["input"], axes["input"])
    outputs = ["output", "h_n"] + (["c_n"] if layer_spec(module).mode == "LSTM" else [])
    return _export(LayerModule(module), inputs, outputs, axes if dynamic else None, path)


def _classifier_to_onnx(module: nn.Module, args: tuple, path: Path, dynamic: bool) -> Path:
    if len(args) != 2 or not all(
        isinstance(a, Tensor) and a.dim() == d for a, d in zip(args, (2, 1), strict=False)
    ):
        raise ExportError(
            f"args: expected (ids (B, T), lengths (B,)), received {tuple(_shape(a) for a in args)}"
        )
    ids, lengths = args
    axes = {"ids": {0: "batch", 1: "time"}, "lengths": {0: "batch"}}
    if dynamic:
        _check_dynamic_sizes("args[0]", ids, axes["ids"])
    outputs = ["logits"] + (["attention"] if module.config.pooling == "attention" else [])
    wrapper = ClassifierModule(module)
    inputs = {"ids": ids.to(torch.int64), "lengths": lengths.to(torch.int64)}
    return _export(wrapper, inputs, outputs, axes if dynamic else None, path)


def _seq2seq_to_onnx(model: nn.Module, args: tuple, path: Path, dynamic: bool) -> tuple[Path, Path]:
    """The encoder and the one-step decoder of a Seq2Seq, as two files beside ``path``."""
    if len(args) != 2 or not all(
        isinstance(a, Tensor) and a.dim() == d for a, d in zip(args, (2, 1), strict=False)
    ):
        raise ExportError(
            f"args: expected (src (B, T), src_lengths (B,)), received {tuple(_shape(a) for a in args)}"
        )
    src, src_lengths = args[0].to(torch.int64), args[1].to(torch.int64)
    if dynamic:
        _check_dynamic_sizes("args[0]", src, {0: "batch", 1: "source time"})
    c = model.config
    stem = path.with_suffix("") if path.suffix == ".onnx" else path
    encoder_path, decoder_path = Path(f"{stem}.encoder.onnx"), Path(f"{stem}.decoder.onnx")
    is_lstm, feeding = c.cell == "lstm", c.uses_feeding
    batch, src_time = {0: "batch"}, {0: "batch", 1: "src_time"}
    state_axes = {1: "batch"}

    enc_outputs = ["memory", "h0"] + (["c0"] if is_lstm else []) + (["feed"] if feeding else [])
    enc_axes = {"src": src_time, "src_lengths": batch}
    _export(EncoderModule(model), {"src": src, "src_lengths": src_lengths}, enc_outputs,
            enc_axes if dynamic else None, encoder_path)  # fmt: skip

    with torch.no_grad():
        memory, state = model.encode(src, src_lengths)
    inputs = {
        "y_prev": torch.full((src.shape[0],), c.bos_id, dtype=torch.int64),
        "h0": state.hidden,
        "c0": state.cell,
        "feed": state.feed,
        "memory": memory.outputs,
        "src_lengths": src_lengths,
    }
    dec_outputs = ["logits", "h_n"] + (["c_n"] if is_lstm else []) + (["feed_n"] if feeding else [])
    dec_outputs += [] if c.attention == "none" else ["attention"]
    dec_axes = {"y_prev": batch, "h0": state_axes, "c0": state_axes, "feed": batch, "memory": src_time,
                "src_lengths": batch}  # fmt: skip
    _export(DecoderStepModule(model), inputs, dec_outputs, dec_axes if dynamic else None, decoder_path)
    return encoder_path, decoder_path


def _forecaster_to_onnx(model: nn.Module, args: tuple, path: Path, dynamic: bool) -> Path:
    """``(x, calendar) -> quantiles``; only the batch axis is free."""
    c = model.config
    expected = ((2, (c.window,)), (3, (c.window, c.num_features)))
    if len(args) != 2 or not all(
        isinstance(a, Tensor) and a.dim() == d and tuple(a.shape[1:]) == rest
        for a, (d, rest) in zip(args, expected, strict=False)
    ):
        raise ExportError(
            f"args: expected (x (B, {c.window}), calendar (B, {c.window}, {c.num_features})) for window "
            f"{c.window} and {c.num_features} calendar features, received {tuple(_shape(a) for a in args)}"
        )
    x, calendar = (a.to(torch.float32) for a in args)
    if calendar.shape[0] != x.shape[0]:
        raise ExportError(f"args: x and calendar differ in batch size, {x.shape[0]} and {calendar.shape[0]}")
    axes = {"x": {0: "batch"}, "calendar": {0: "batch"}}
    if dynamic:
        _check_dynamic_sizes("args[0]", x, axes["x"])
    inputs = {"x": x, "calendar": calendar}
    return _export(ForecasterModule(model), inputs, ["quantiles"], axes if dynamic else None, path)


def _charlm_to_onnx(model: nn.Module, args: tuple, path: Path, dynamic: bool) -> Path:
    """``(ids, h0[, c0]) -> (logits, h_n[, c_n])``; batch and length free."""
    wrapper = CharLMModule(model)  # refuses a cell without an ONNX form first
    c = model.config
    if not 1 <= len(args) <= 2 or not (isinstance(args[0], Tensor) and args[0].dim() == 2):
        raise ExportError(
            f"args: expected (ids (B, T),) or (ids, state), received {tuple(_shape(a) for a in args)}"
        )
    ids = args[0].to(torch.int64)
    B, is_lstm = ids.shape[0], wrapper.has_cell_state
    shape = (c.num_layers, B, c.hidden_size)  # (L, B, H)
    state = args[1] if len(args) == 2 else None
    if state is None:
        state = (torch.zeros(shape), torch.zeros(shape)) if is_lstm else torch.zeros(shape)
    parts = tuple(state) if is_lstm and isinstance(state, tuple | list) else (state,)
    if len(parts) != (2 if is_lstm else 1) or any(
        not isinstance(s, Tensor) or tuple(s.shape) != shape for s in parts
    ):
        want = f"(h0, c0), each {shape}" if is_lstm else f"h0 {shape}"
        raise ExportError(f"args[1]: expected the state {want}, received {tuple(_shape(s) for s in parts)}")
    axes = {"ids": {0: "batch", 1: "time"}, "h0": {1: "batch"}, "c0": {1: "batch"}}
    if dynamic:
        _check_dynamic_sizes("args[0]", ids, axes["ids"])
    inputs = {
        "ids": ids,
        "h0": parts[0].to(torch.float32),
        "c0": parts[1].to(torch.float32) if is_lstm else None,
    }
    outputs = ["logits", "h_n"] + (["c_n"] if is_lstm else [])
    return _export(wrapper, inputs, outputs, axes if dynamic else None, path)


# Whole-model exports: model class (an import string, imported on use: a layer export needs no models/) ->
# the function that exports it. A new model is one line here; anything else is exported as one layer.
MODEL_EXPORTS = {
    "rnnlab.models.seq2seq:Seq2Seq": _seq2seq_to_onnx,
    "rnnlab.models.forecaster:RecurrentForecaster": _forecaster_to_onnx,
    "rnnlab.models.charlm:CharLM": _charlm_to_onnx,
    "rnnlab.models.classifier:RecurrentClassifier": _classifier_to_onnx,
}
