"""Exportable forms of a recurrent layer and of the task models, built on :class:`RecurrentGraph`.

Each wrapper computes what the rnnlab module computes, written so that ``torch.export`` can trace it with a
free batch size and length: no PackedSequence (lengths go to the ONNX operators' ``sequence_lens``) and no
checks that read tensor values. They hold the module's own submodules (embeddings, attention, output layers)
and a :class:`RecurrentGraph` in place of each recurrent stack.

* :class:`LayerModule`: ``(input[, lengths][, h0[, c0]]) -> (output, h_n[, c_n])``, the layer's own layout
  (batch_first or not, unbatched).
* :class:`ClassifierModule`: ``(ids, lengths) -> (logits[, attention])``.
* :class:`EncoderModule` / :class:`DecoderStepModule`: the seq2seq model as its encoder and one decoder step
  (the decoder's own :meth:`~rnnlab.models.seq2seq.AttnDecoder.step`, with the recurrent layer swapped for its
  ONNX form), so that greedy or beam search run outside, as :mod:`rnnlab.inference.decoding` does.
* :class:`ForecasterModule`: ``(x, calendar) -> (quantiles,)``, the forecaster's own ``predict`` (the
  ensemble's mean) with each member's encoder swapped for its ONNX form.
* :class:`CharLMModule`: ``(ids, h0[, c0]) -> (logits, h_n[, c_n])``, the char LM's own ``forward`` with its
  stack swapped, the state an input and an output so that a sampler outside carries it.

The swaps go through :func:`plain_layer`, which turns what the task models wrap their layers in (AWD-LSTM's
``WeightDrop``, the variational-dropout LSTM) into the plain layer they equal in eval mode.

Dimension legend: B batch, T time (source time for seq2seq), E embedding, H hidden, D directions, L layers,
C classes, V target vocabulary; forecaster: W window, F calendar features, H horizon, Q quantile levels.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from rnnlab.export.onnx_layers import ExportError, RecurrentGraph, layer_spec
from rnnlab.models.seq2seq import DecoderState, Memory

__all__ = [
    "TorchLikeLayer",
    "LayerModule",
    "ClassifierModule",
    "EncoderModule",
    "DecoderStepModule",
    "ForecasterModule",
    "CharLMModule",
    "plain_layer",
]


def _mask(lengths: Tensor, T) -> Tensor:
    """(B, T) bool, True at the first ``lengths[b]`` steps (rnnlab's polarity), built without value checks."""
    return torch.arange(T, device=lengths.device).unsqueeze(0) < lengths.unsqueeze(1)  # (1, T) < (B, 1)


class TorchLikeLayer(nn.Module):
    """A :class:`RecurrentGraph` called like torch.nn's layer: ``(input, hx=None, lengths=None)`` ->
    ``(output, h_n)`` or ``(output, (h_n, c_n))``, in the layer's layout (batch_first or not, unbatched)."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.graph = RecurrentGraph(layer)

    def forward(self, input: Tensor, hx=None, lengths: Tensor | None = None):
        spec = self.graph.spec
        is_lstm = spec.mode == "LSTM"
        state = None if hx is None else (tuple(hx) if is_lstm else (hx,))
        unbatched = input.dim() == 2
        if unbatched:  # (T, H_in) -> (T, 1, H_in); states (D*L, ·) -> (D*L, 1, ·)
            x = input.unsqueeze(1)
            state = None if state is None else tuple(s.unsqueeze(1) for s in state)
        else:
            x = input.transpose(0, 1) if spec.batch_first else input  # (T, B, H_in)
        out, final = self.graph(x, lengths, state)  # (T, B, D*P), each (D*L, B, ·)
        if unbatched:
            out, final = out.squeeze(1), tuple(s.squeeze(1) for s in final)
        elif spec.batch_first:
            out = out.transpose(0, 1)  # (B, T, D*P)
        return out, (final if is_lstm else final[0])


class LayerModule(nn.Module):
    """A recurrent layer's ONNX graph: inputs ``input``, ``lengths``, ``h0``, ``c0`` (each optional but the
    first), outputs ``output``, ``h_n``, ``c_n`` (LSTM)."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = TorchLikeLayer(layer)

    def forward(self, input: Tensor, lengths=None, h0=None, c0=None):
        hx = None if h0 is None else ((h0, c0) if c0 is not None else h0)
        out, state = self.layer(input, hx, lengths)
        return (out, *state) if isinstance(state, tuple) else (out, state)


class ClassifierModule(nn.Module):
    """:class:`~rnnlab.models.classifier.RecurrentClassifier` as a graph: ``(ids, lengths) -> (logits[,
    attention])``; ids (B, T) int64 padded, lengths (B,) int64 >= 1; logits (B, C), attention (B, T)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        cell = model.config.cell
        if cell not in ("rnn", "lstm", "gru"):
            raise ExportError(
                f"model.cell: expected 'rnn', 'lstm' or 'gru' for ONNX export, received {cell!r} (the "
                "variant cells have no ONNX operator)"
            )
        self.pooling = model.config.pooling
        self.directions = 2 if model.config.bidirectional else 1
        self.embedding, self.pool, self.output = model.embedding, model.pool, model.output
        # the wide part (hashed n-grams of the ids, rnnlab.models.ngrams), when the model has one
        self.ngrams = getattr(model, "ngrams", None)
        self.encoder = RecurrentGraph(model.encoder)

    def forward(self, ids: Tensor, lengths: Tensor):
        B, T = ids.shape
        x = self.embedding(ids)  # (B, T, E); dropout is off in eval mode
        outputs, final = self.encoder(x.transpose(0, 1), lengths, None)  # (T, B, D*H), each (D*L, B, H)
        outputs = outputs.transpose(0, 1)  # (B, T, D*H), zero at padding
        mask = _mask(lengths, T)  # (B, T)
        if self.pooling == "last":
            pooled = final[0][-self.directions :].transpose(0, 1).reshape(B, -1)  # (D, B, H) -> (B, D*H)
        elif self.pooling == "mean":
            pooled = outputs.sum(1) / lengths.to(outputs.dtype).unsqueeze(1)  # (B, D*H)
        elif self.pooling == "max":
            filled = outputs.masked_fill(~mask.unsqueeze(-1), torch.finfo(outputs.dtype).min)  # (B, T, D*H)
            pooled = filled.max(dim=1).values  # (B, D*H)
        elif self.pooling == "concat":  # ULMFiT's: last, max, mean side by side, (B, 3*D*H)
            last = final[0][-self.directions :].transpose(0, 1).reshape(B, -1)  # (D, B, H) -> (B, D*H)
            filled = outputs.masked_fill(~mask.unsqueeze(-1), torch.finfo(outputs.dtype).min)  # (B, T, D*H)
            mean = outputs.sum(1) / lengths.to(outputs.dtype).unsqueeze(1)  # (B, D*H)
            pooled = torch.cat([last, filled.max(dim=1).values, mean], dim=-1)
        else:
            pooled, weights = self.pool(outputs, mask=mask)  # (B, D*H), (B, T)
        if self.ngrams is not None:  # the wide part beside the deep one
            pooled = torch.cat([pooled, self.ngrams(ids, lengths)], dim=-1)  # (B, D*H + G)
        logits = self.output(pooled)  # (B, C); dropout is off in eval mode
        return (logits, weights) if self.pooling == "attention" else (logits,)


class EncoderModule(nn.Module):
    """The seq2seq encoder: ``(src, src_lengths) -> (memory, h0[, c0][, feed])``: memory (B, T, H) the
    annotations, zero at padding; h0 / c0 (L, B, H) the decoder's initial state; feed (B, H) zeros, the
    first attentional vector under input feeding."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.config = model.config
        self.embedding = model.encoder.embedding
        self.rnn = RecurrentGraph(model.encoder.rnn)

    def forward(self, src: Tensor, src_lengths: Tensor):
        B = src.shape[0]
        D = self.rnn.spec.directions
        x = self.embedding(src).transpose(0, 1)  # (T, B, E)
        outputs, states = self.rnn(x, src_lengths, None)  # (T, B, H), each (L*D, B, H/D)
        merged = []
        for s in states:  # rows layer*D + direction -> (L, B, H) with [forward; backward] per layer
            LD, _, Hd = s.shape
            merged.append(s.view(LD // D, D, B, Hd).permute(0, 2, 1, 3).reshape(LD // D, B, D * Hd))
        result = (outputs.transpose(0, 1), *merged)  # (B, T, H), (L, B, H) ...
        if self.config.uses_feeding:
            result += (outputs.new_zeros(B, self.config.hidden_size),)  # (B, H)
        return result


class DecoderStepModule(nn.Module):
    """One decoder step: ``(y_prev, h0[, c0][, feed], memory, src_lengths) -> (logits, h_n[, c_n][,
    feed_n][, attention])``: y_prev (B,) int64, logits (B, V), attention (B, T)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.decoder = copy.deepcopy(model.decoder).eval()
        self.decoder.rnn = TorchLikeLayer(model.decoder.rnn)  # the same step, its recurrence as ONNX's op

    def forward(self, y_prev, h0, c0, feed, memory, src_lengths):
        state = DecoderState(h0, c0, feed)
        logits, state, weights = self.decoder.step(
            y_prev, state, Memory(memory, _mask(src_lengths, memory.shape[1]))
        )
        out = (logits, state.hidden)
        out += () if state.cell is None else (state.cell,)
        out += () if state.feed is None else (state.feed,)
        return out + (() if weights is None else (weights,))


def plain_layer(layer: nn.Module, where: str) -> nn.Module:
    """The plain rnnlab.nn layer that ``layer`` computes in eval mode, for :class:`RecurrentGraph`.

    * :class:`~rnnlab.nn.regularizers.WeightDrop` uses its raw weights in eval: a copy of the wrapped layer
      with each raw weight (``<name>_raw``, dots as underscores) back in its slot;
    * :class:`~rnnlab.nn.regularizers.VariationalDropoutLSTM` draws no masks in eval and is then exactly
      torch.nn's LSTM, with the same parameter names: an rnnlab.nn LSTM with its state_dict;
    * anything else is returned as it is (:func:`~rnnlab.export.onnx_layers.layer_spec` judges it).

    ``where`` names the layer in an error (``model.cell``).
    """
    import rnnlab.nn as rnn
    from rnnlab.nn.regularizers import VariationalDropoutLSTM, WeightDrop

    if isinstance(layer, WeightDrop):
        inner = copy.deepcopy(layer.module)
        for name in layer.weights:
            prefix, _, leaf = name.rpartition(".")
            raw = getattr(layer, name.replace(".", "_") + "_raw").detach().clone()
            inner.get_submodule(prefix).register_parameter(leaf, nn.Parameter(raw))
        for m in inner.modules():  # torch.nn's layers read their weights from a cache: rebuild it
            if isinstance(m, nn.RNNBase):
                m._init_flat_weights()
        return plain_layer(inner, where)
    if type(layer) is VariationalDropoutLSTM:
        plain = rnn.LSTM(layer.input_size, layer.hidden_size, layer.num_layers, bias=layer.bias,
                         batch_first=layer.batch_first, bidirectional=layer.bidirectional)  # fmt: skip
        plain.load_state_dict(layer.state_dict(), strict=True)
        return plain
    try:
        layer_spec(layer)
    except ExportError as err:
        raise ExportError(f"{where}: {err}") from None
    return layer


class ForecasterModule(nn.Module):
    """:class:`~rnnlab.models.forecaster.RecurrentForecaster` as a graph: ``(x, calendar) -> (quantiles,)``;
    x (B, W) float32 scaled values, calendar (B, W, F) float32, quantiles (B, H, Q) in the scaled space.

    The model's own ``predict`` runs on a copy whose members' encoders are their ONNX form, so the level,
    highway, head and monotone quantiles are the model's, whatever they become.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = copy.deepcopy(model).eval()
        for member in self.model.members:
            layer = plain_layer(member.encoder, f"model.cell={model.config.cell!r}")
            member.encoder = TorchLikeLayer(layer)

    def forward(self, x: Tensor, calendar: Tensor):
        return (self.model.predict(x, calendar),)  # (B, H, Q)


class CharLMModule(nn.Module):
    """:class:`~rnnlab.models.charlm.CharLM` as a step / chunk graph: ``(ids, h0[, c0]) -> (logits, h_n[,
    c_n])``; ids (B, T) int64, h0 / c0 (L, B, H) float32 (zeros to start), logits (B, T, V) the scores of the
    next character after each position; h_n / c_n the state to feed back as h0 / c0."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = copy.deepcopy(model).eval()
        layer = plain_layer(model.rnn, f"model.cell={model.config.cell!r}")
        self.model.rnn = TorchLikeLayer(layer)
        self.has_cell_state = layer_spec(layer).mode == "LSTM"

    def forward(self, ids: Tensor, h0: Tensor, c0: Tensor | None = None):
        state = (h0, c0) if self.has_cell_state else h0
        logits, final = self.model(ids, state)  # (B, T, V), (L, B, H) or a pair of them
        return (logits, *final) if self.has_cell_state else (logits, final)
