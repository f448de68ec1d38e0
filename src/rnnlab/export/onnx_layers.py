r"""Recurrent layers as ONNX graphs: each layer of a stack becomes one ONNX ``RNN`` / ``GRU`` / ``LSTM`` node.

The pieces here run only inside ``torch.onnx.export(..., dynamo=True)``:
:func:`torch.onnx.ops.symbolic_multi_out` puts the ONNX operator itself into the exported graph (eagerly it
returns zeros), so the time loop stays one node whose length is a free dimension, instead of being unrolled
into a graph of fixed length.

How torch's parameters map onto ONNX's (ONNX operators spec, ``LSTM`` / ``GRU`` / ``RNN``, opset 14):

* weights ``W`` (D, G*H, H_in), ``R`` (D, G*H, P) and biases ``B`` (D, 2*G*H) = ``[Wb; Rb]`` per direction,
  row 0 from ``weight_ih_l{k}`` etc., row 1 from ``weight_ih_l{k}_reverse`` (``direction="bidirectional"``);
* gate blocks reordered: torch's LSTM stacks ``i, f, g, o``, ONNX's ``i, o, f, c``; torch's GRU ``r, z, n``,
  ONNX's ``z, r, h``; the RNN has one block;
* torch's GRU applies the reset gate after the product ``W_hn h + b_hn``: ONNX's ``linear_before_reset=1``;
  :class:`rnnlab.nn.ChoGRU` (Cho et al. 2014) applies it before, ``W_hn (r * h) + b_hn``: ONNX's
  ``linear_before_reset=0`` (its default, spelled out), with the same weights and biases;
* ``nonlinearity="relu"``: ``activations=["Relu"]`` per direction;
* lengths go to ``sequence_lens`` (int32). ONNX runtime then stops each sequence's forward direction at its
  own last step, starts its reverse direction there, and ``Y_h`` / ``Y_c`` hold each sequence's own final
  state: the semantics of a PackedSequence. ONNX does not define ``Y`` at padded steps, so the stack's
  output is zeroed there explicitly (as ``pad_packed_sequence`` gives);
* layers stack as successive nodes, ``Y`` (T, D, B, P) transposed and reshaped to (T, B, D*P) between them.

LSTM with ``proj_size`` (LSTMP, Sak et al. 2014: :math:`h_t = W_{hr}(o_t \odot \tanh c_t)`) has no ONNX
operator: the projection sits inside the recurrence. Each direction becomes an ONNX ``Scan`` whose body is
one step (:mod:`rnnlab.export.onnx_scan`), with padded steps keeping the state, so it too keeps a free length.

Dimension legend: T time, B batch, H_in input size, H hidden size, P = proj_size or H, G gate blocks
(RNN 1, GRU 3, LSTM 4), D directions, L layers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

__all__ = ["LayerSpec", "layer_spec", "RecurrentGraph"]

OPSET = 18  # the model's opset; the recurrent operators' last change is version 14
_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "GRU": 3, "LSTM": 4}
# Position of each ONNX gate block in torch's order: LSTM torch (i, f, g, o) -> ONNX (i, o, f, c);
# GRU torch (r, z, n) -> ONNX (z, r, h).
_ONNX_ORDER = {"RNN_TANH": [0], "RNN_RELU": [0], "GRU": [1, 0, 2], "LSTM": [0, 3, 1, 2]}
# The placeholder of an LSTMP direction's recurrence, expanded into a Scan after the export (onnx_scan.py).
LSTMP_OP = "rnnlab.export::LSTMPScan"
_ONNX_OP = {"RNN_TANH": "RNN", "RNN_RELU": "RNN", "GRU": "GRU", "LSTM": "LSTM"}


class ExportError(ValueError):
    """A module, layer option or argument that rnnlab cannot export to ONNX; the message names it."""


@dataclass(frozen=True)
class LayerSpec:
    """What the export needs to know about a recurrent layer (read from its public attributes)."""

    mode: str  # "RNN_TANH" | "RNN_RELU" | "LSTM" | "GRU"
    input_size: int  # H_in
    hidden_size: int  # H
    num_layers: int  # L
    bias: bool
    batch_first: bool
    bidirectional: bool
    proj_size: int  # 0: none
    linear_before_reset: bool = True  # GRU only: torch's form (True) or Cho et al.'s (False, rnn.ChoGRU)

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def state_size(self) -> int:  # P
        return self.proj_size or self.hidden_size


def layer_spec(layer: nn.Module) -> LayerSpec:
    """The :class:`LayerSpec` of an rnnlab.nn (or torch.nn) ``RNN`` / ``LSTM`` / ``GRU`` or an rnnlab.nn
    ``ChoGRU``, else ExportError.

    Only these exact classes are accepted: a subclass may change the step (a variant cell), which the ONNX
    operators could not express.
    """
    import rnnlab.nn as rnn

    kinds = {rnn.RNN: "RNN", rnn.LSTM: "LSTM", rnn.GRU: "GRU", nn.RNN: "RNN", nn.LSTM: "LSTM", nn.GRU: "GRU"}
    kinds[rnn.ChoGRU] = "GRU"  # Cho et al.'s GRU is ONNX's GRU with linear_before_reset=0
    kind = kinds.get(type(layer))
    if kind is None:
        raise ExportError(
            f"module: expected an RNN, LSTM or GRU of rnnlab.nn (or torch.nn), received "
            f"{type(layer).__name__} (variant cells such as layer-norm, zoneout, peephole or minGRU have "
            "no ONNX export; ChoGRU has)"
        )
    if kind == "RNN":
        if layer.nonlinearity not in ("tanh", "relu"):
            raise ExportError(f"nonlinearity: expected 'tanh' or 'relu', received {layer.nonlinearity!r}")
        mode = "RNN_TANH" if layer.nonlinearity == "tanh" else "RNN_RELU"
    else:
        mode = kind
    return LayerSpec(
        mode, layer.input_size, layer.hidden_size, layer.num_layers, bool(layer.bias),
        bool(layer.batch_first), bool(layer.bidirectional), int(getattr(layer, "proj_size", 0)),
        linear_before_reset=not isinstance(layer, rnn.ChoGRU),
    )  # fmt: skip


def _reorder(t: Tensor, mode: str) -> Tensor:
    """Gate blocks of ``t`` (G*H, ...) from torch's order to ONNX's."""
    blocks = t.chunk(_GATES[mode], dim=0)
    return torch.cat([blocks[i] for i in _ONNX_ORDER[mode]], dim=0)


class RecurrentGraph(nn.Module):
    """The ONNX form of one recurrent stack, built from a layer's parameters (a detached copy).

    ``forward(x, lengths, state)`` runs only inside ``torch.onnx.export``: x (T, B, H_in) time-major, lengths
    (B,) int64 or None, state ``(h_0,)`` / ``(h_0, c_0)`` (each (D*L, B, ·)) or None for zeros; returns the
    output (T, B, D*P), zero at padded steps, and the final state, each (D*L, B, ·), rows ordered
    ``layer * D + direction`` as torch's.
    """

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.spec = spec = layer_spec(layer)
        for k in range(spec.num_layers):
            # get[d](name): layer k's parameter `name` of direction d (0 forward, 1 "_reverse"), copied
            get = [
                lambda name, suffix=suffix, k=k: getattr(layer, f"{name}_l{k}{suffix}").detach().clone()
                for suffix in ("", "_reverse")[: spec.directions]
            ]
            if spec.proj_size:  # LSTMP: transposed for the products of the Scan step, one set per direction
                for d, g in enumerate(get):
                    self.register_buffer(f"W_ihT_l{k}_d{d}", g("weight_ih").T.contiguous())  # (H_in, 4H)
                    self.register_buffer(f"W_hhT_l{k}_d{d}", g("weight_hh").T.contiguous())  # (P, 4H)
                    self.register_buffer(f"W_hrT_l{k}_d{d}", g("weight_hr").T.contiguous())  # (H, P)
                    if spec.bias:
                        self.register_buffer(f"b_l{k}_d{d}", g("bias_ih") + g("bias_hh"))  # (4H,)
                continue
            W = torch.stack([_reorder(g("weight_ih"), spec.mode) for g in get])  # (D, G*H, H_in)
            R = torch.stack([_reorder(g("weight_hh"), spec.mode) for g in get])  # (D, G*H, H)
            self.register_buffer(f"W_l{k}", W)
            self.register_buffer(f"R_l{k}", R)
            if spec.bias:  # B = [Wb; Rb] per direction, (D, 2*G*H)
                Wb = [_reorder(g("bias_ih"), spec.mode) for g in get]
                Rb = [_reorder(g("bias_hh"), spec.mode) for g in get]
                self.register_buffer(f"B_l{k}", torch.stack([torch.cat(b) for b in zip(Wb, Rb, strict=True)]))

    def forward(
        self, x: Tensor, lengths: Tensor | None, state: tuple[Tensor, ...] | None
    ) -> tuple[Tensor, tuple[Tensor, ...]]:
        spec = self.spec
        D = spec.directions
        T = x.shape[0]
        mask = None
        if lengths is not None:
            mask = torch.arange(T, device=x.device).unsqueeze(1) < lengths.unsqueeze(0)  # (T, B)
        finals: list[list[Tensor]] = []
        for k in range(spec.num_layers):
            layer_state = None if state is None else tuple(s[k * D : (k + 1) * D] for s in state)  # (D, B, ·)
            if spec.proj_size:
                x, final = self._lstmp_layer(k, x, mask, layer_state)
            else:
                x, final = self._onnx_layer(k, x, lengths, layer_state)
            finals.append(final)
        if mask is not None:
            # ONNX leaves Y undefined past a sequence's length: zero it, as pad_packed_sequence does. (Between
            # layers it does not matter: the next layer's sequence_lens never reads those steps.)
            valid = mask.unsqueeze(-1)  # (T, B, 1)
            x = torch.where(valid, x, torch.zeros_like(x))  # (T, B, D*P)
        return x, tuple(torch.cat([f[i] for f in finals], dim=0) for i in range(len(finals[0])))

    def _onnx_layer(self, k: int, x: Tensor, lengths: Tensor | None, state: tuple[Tensor, ...] | None):
        """Layer ``k`` as one ONNX RNN / GRU / LSTM node: x (T, B, ·) -> (T, B, D*H), [(D, B, H), ...]."""
        spec = self.spec
        T, B, D, H = x.shape[0], x.shape[1], spec.directions, spec.hidden_size
        direction = "bidirectional" if D == 2 else "forward"
        attrs: dict = {"hidden_size": H, "direction": direction}
        if spec.mode == "GRU":
            # torch's n = tanh(W_in x + b_in + r * (W_hn h + b_hn)): 1; Cho's W_hn (r * h) + b_hn: 0
            attrs["linear_before_reset"] = int(spec.linear_before_reset)
        elif spec.mode.startswith("RNN"):
            attrs["activations"] = ["Tanh" if spec.mode == "RNN_TANH" else "Relu"] * D
        inputs = [
            x,
            getattr(self, f"W_l{k}"),
            getattr(self, f"R_l{k}"),
            getattr(self, f"B_l{k}") if spec.bias else None,
            None if lengths is None else lengths.to(torch.int32),  # sequence_lens
            None if state is None else state[0],  # initial_h (D, B, H)
        ]
        if spec.mode == "LSTM":
            inputs.append(None if state is None else state[1])  # initial_c (D, B, H)
        n_states = 2 if spec.mode == "LSTM" else 1
        outs = torch.onnx.ops.symbolic_multi_out(
            _ONNX_OP[spec.mode],
            inputs,
            attrs,
            dtypes=[x.dtype] * (1 + n_states),
            shapes=[(T, D, B, H)] + [(D, B, H)] * n_states,
            version=14,
        )
        Y = outs[0].transpose(1, 2).reshape(T, B, D * H)  # (T, D, B, H) -> (T, B, D, H) -> (T, B, D*H)
        return Y, list(outs[1:])

    def _lstmp_layer(self, k: int, x: Tensor, mask: Tensor | None, state: tuple[Tensor, ...] | None):
        """Layer ``k`` of an LSTMP: x (T, B, ·) -> (T, B, D*P), [(D, B, P), (D, B, H)].

        The input projection of every step is one product here; the recurrence is a placeholder node
        (:data:`LSTMP_OP`) that :func:`rnnlab.export.onnx_scan.expand_lstmp` replaces by an ONNX Scan after
        the export. (torch's own ``scan`` also exports to a Scan, but it is a prototype and traces several
        times slower.)
        """
        spec = self.spec
        T, B, P, H = x.shape[0], x.shape[1], spec.proj_size, spec.hidden_size
        if mask is None:
            mask = torch.ones(T, B, dtype=torch.bool, device=x.device)  # (T, B)
        outputs, h_n, c_n = [], [], []
        for d in range(spec.directions):
            gx = x @ getattr(self, f"W_ihT_l{k}_d{d}")  # (T, B, 4H)
            if spec.bias:
                gx = gx + getattr(self, f"b_l{k}_d{d}")
            h0 = x.new_zeros(B, P) if state is None else state[0][d]  # (B, P)
            c0 = x.new_zeros(B, H) if state is None else state[1][d]  # (B, H)
            inputs = [gx, getattr(self, f"W_hhT_l{k}_d{d}"), getattr(self, f"W_hrT_l{k}_d{d}"),
                      mask.unsqueeze(-1), h0, c0]  # fmt: skip
            y, h, c = torch.onnx.ops.symbolic_multi_out(
                LSTMP_OP,
                inputs,
                {"reverse": int(d == 1)},
                dtypes=[x.dtype] * 3,
                shapes=[(T, B, P), (B, P), (B, H)],
                version=1,
            )
            outputs.append(y)
            h_n.append(h.unsqueeze(0))
            c_n.append(c.unsqueeze(0))
        out = outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=-1)  # (T, B, D*P)
        return out, [torch.cat(h_n, dim=0), torch.cat(c_n, dim=0)]
