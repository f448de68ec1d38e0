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

Dimension legend: B batch, T time (source time for seq2seq), E embedding, H hidden, D directions, L layers,
C classes, V target vocabulary.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from rnnlab.export.onnx_layers import ExportError, RecurrentGraph
from rnnlab.models.seq2seq import DecoderState, Memory

__all__ = ["TorchLikeLayer", "LayerModule", "ClassifierModule", "EncoderModule", "DecoderStepModule"]


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
        else:
            pooled, weights = self.pool(outputs, mask=mask)  # (B, D*H), (B, T)
            return self.output(pooled), weights
        return (self.output(pooled),)


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
