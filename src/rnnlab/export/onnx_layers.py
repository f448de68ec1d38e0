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
* ``nonlinearity="relu"``: ``activations=["Relu"]`` per direction;
* lengths go to ``sequence_lens`` (int32). ONNX runtime then stops each sequence's forward direction at its
  own last step, starts its reverse direction there, and ``Y_h`` / ``Y_c`` hold each sequence's own final
  state: the semantics of a PackedSequence. ONNX does not define ``Y`` at padded steps, so the stack's
  output is zeroed there explicitly (as ``pad_packed_sequence`` gives);
* layers stack as successive nodes, ``Y`` (T, D, B, P) transposed and reshaped to (T, B, D*P) between them.

LSTM with ``proj_size`` (LSTMP, Sak et al. 2014: :math:`h_t = W_{hr}(o_t \odot \tanh c_t)`) has no ONNX
operator: the projection sits inside the recurrence. It becomes an ONNX ``Scan`` (from torch's ``scan``
higher-order op) whose body is one step, with the same masking of padded steps, so it too keeps a free length.

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

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def state_size(self) -> int:  # P
        return self.proj_size or self.hidden_size


def layer_spec(layer: nn.Module) -> LayerSpec:
    """The :class:`LayerSpec` of an rnnlab.nn (or torch.nn) ``RNN`` / ``LSTM`` / ``GRU``, else ExportError.

    Only these exact classes are accepted: a subclass may change the step (a variant cell), which the ONNX
    operators could not express.
    """
    import rnnlab.nn as rnn

    kinds = {rnn.RNN: "RNN", rnn.LSTM: "LSTM", rnn.GRU: "GRU", nn.RNN: "RNN", nn.LSTM: "LSTM", nn.GRU: "GRU"}
    kind = kinds.get(type(layer))
    if kind is None:
        raise ExportError(
            f"module: expected an RNN, LSTM or GRU of rnnlab.nn (or torch.nn), received "
            f"{type(layer).__name__} (variant cells such as layer-norm, zoneout, peephole or minGRU have "
            "no ONNX export)"
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
            suffixes = ["", "_reverse"][: spec.directions]
            get = [
                lambda name, s=s, k=k: getattr(layer, f"{name}_l{k}{s}").detach().clone() for s in suffixes
            ]
            if spec.proj_size:  # LSTMP: torch's layout, used by the Scan step
                for d, g in enumerate(get):
                    self.register_buffer(f"W_ih_l{k}_d{d}", g("weight_ih"))  # (4H, H_in)
                    self.register_buffer(f"W_hh_l{k}_d{d}", g("weight_hh"))  # (4H, P)
                    self.register_buffer(f"W_hr_l{k}_d{d}", g("weight_hr"))  # (P, H)
                    if spec.bias:
                        self.register_buffer(f"b_l{k}_d{d}", g("bias_ih") + g("bias_hh"))  # (4H,)
                continue
            W = torch.stack([_reorder(g("weight_ih"), spec.mode) for g in get])  # (D, G*H, H_in)
            R = torch.stack([_reorder(g("weight_hh"), spec.mode) for g in get])  # (D, G*H, H)
            self.register_buffer(f"W_l{k}", W)
            self.register_buffer(f"R_l{k}", R)
            if spec.bias:
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
            x = torch.where(
                mask.unsqueeze(-1), x, torch.zeros_like(x)
            )  # (T, B, D*P); ONNX leaves Y undefined
        return x, tuple(torch.cat([f[i] for f in finals], dim=0) for i in range(len(finals[0])))

    def _onnx_layer(self, k: int, x: Tensor, lengths: Tensor | None, state: tuple[Tensor, ...] | None):
        """Layer ``k`` as one ONNX RNN / GRU / LSTM node: x (T, B, ·) -> (T, B, D*H), [(D, B, H), ...]."""
        spec = self.spec
        T, B, D, H = x.shape[0], x.shape[1], spec.directions, spec.hidden_size
        direction = "bidirectional" if D == 2 else "forward"
        attrs: dict = {"hidden_size": H, "direction": direction}
        if spec.mode == "GRU":
            attrs["linear_before_reset"] = 1  # torch's n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
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
        """Layer ``k`` of an LSTMP, a Scan per direction: x (T, B, ·) -> (T, B, D*P), [(D, B, P), (D, B, H)].

        torch's ``scan`` is a prototype; the dynamo exporter maps it to ONNX's Scan.
        """
        from torch._higher_order_ops.scan import scan

        spec = self.spec
        T, B, P, H = x.shape[0], x.shape[1], spec.proj_size, spec.hidden_size
        if mask is None:
            mask = torch.ones(T, B, dtype=torch.bool, device=x.device)  # (T, B)
        outputs, h_n, c_n = [], [], []
        for d in range(spec.directions):
            W_ih, W_hh = getattr(self, f"W_ih_l{k}_d{d}"), getattr(self, f"W_hh_l{k}_d{d}")
            W_hr = getattr(self, f"W_hr_l{k}_d{d}")
            gx = x @ W_ih.T  # (T, B, 4H): the input projection of every step in one product
            if spec.bias:
                gx = gx + getattr(self, f"b_l{k}_d{d}")
            h0 = x.new_zeros(B, P) if state is None else state[0][d]  # (B, P)
            c0 = x.new_zeros(B, H) if state is None else state[1][d]  # (B, H)

            def step(carry, xs, W_hh=W_hh, W_hr=W_hr):
                h_prev, c_prev = carry
                gx_t, valid = xs  # (B, 4H), (B, 1)
                ingate, forgetgate, cellgate, outgate = (gx_t + h_prev @ W_hh.T).chunk(4, dim=-1)
                c = torch.sigmoid(forgetgate) * c_prev + torch.sigmoid(ingate) * torch.tanh(cellgate)
                h = (torch.sigmoid(outgate) * torch.tanh(c)) @ W_hr.T  # (B, P): the projection
                h = torch.where(valid, h, h_prev)  # a padded step keeps the state (PackedSequence semantics)
                c = torch.where(valid, c, c_prev)
                return (h, c), h.clone()

            (h, c), y = scan(step, (h0, c0), (gx, mask.unsqueeze(-1)), reverse=d == 1)  # y (T, B, P)
            outputs.append(y)
            h_n.append(h.unsqueeze(0))
            c_n.append(c.unsqueeze(0))
        out = outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=-1)  # (T, B, D*P)
        return out, [torch.cat(h_n, dim=0), torch.cat(c_n, dim=0)]
