r"""Sequence to sequence with attention: a recurrent encoder, an attentional decoder, teacher forcing.

References:
    Sutskever, Vinyals & Le (2014), Sequence to sequence learning with neural networks.
    Bahdanau, Cho & Bengio (2015), Neural machine translation by jointly learning to align and translate.
    Luong, Pham & Manning (2015), Effective approaches to attention-based neural machine translation.
    Bengio et al. (2015), Scheduled sampling for sequence prediction with recurrent neural networks.

The encoder embeds the source and runs an :mod:`rnnlab.nn` RNN / LSTM / GRU over it as a PackedSequence, so
padding never enters a state. Bidirectional encoders use ``H / 2`` units per direction, so the annotation
of source position ``j`` is :math:`\bar h_j = [\overrightarrow{h}_j; \overleftarrow{h}_j]` of size ``H``,
and each decoder layer starts from the matching encoder layer's final states, concatenated the same way
(as OpenNMT does): no bridge parameters, and every attention score, "dot" included, sees queries and keys
of one size.

The decoder is Luong's global attention, one target step ``t`` at a time:

.. math::
    x_t = [E y_{t-1};\ \tilde h_{t-1}] \ \text{(input feeding)} \quad\text{or}\quad x_t = E y_{t-1}

    h_t = \mathrm{RNN}(x_t, h_{t-1})

    a_t = \mathrm{softmax}_j\, \mathrm{score}(h_t, \bar h_j) \ \text{(over source positions, padding masked)}

    c_t = \textstyle\sum_j a_{tj} \bar h_j, \qquad \tilde h_t = \tanh(W_c [c_t; h_t]), \qquad
    p(y_t \mid y_{<t}, x) = \mathrm{softmax}(W_s \tilde h_t)

(Luong eq. 5-6). ``score`` is any of :data:`rnnlab.nn.ATTENTION`: ``"additive"`` is Bahdanau's
:math:`v^\top \tanh(W h_t + U \bar h_j)` (used here with Luong's query :math:`h_t` rather than Bahdanau's
:math:`s_{t-1}`), ``"dot"``, ``"general"`` and ``"concat"`` are Luong's three. ``attention="none"`` is the
Sutskever-style model, :math:`p(y_t) = \mathrm{softmax}(W_s h_t)`, whose only view of the source is the
encoder's final state. Input feeding (Luong section 3.3) gives the decoder last step's attentional vector.

Dimension legend (rnnlab's): B batch, T source time, S target time, H hidden, E embedding, L layers,
V vocabulary.

Two ways to run the decoder give the same numbers (tested): :meth:`Seq2Seq.forward` over a whole
teacher-forced target, and :meth:`Seq2Seq.decode_step` with an explicit carried :class:`DecoderState`, which
is what greedy and beam search (:mod:`rnnlab.inference.decoding`) call. Without input feeding the
teacher-forced pass runs the decoder RNN over all steps at once and attends with every query together
(B, S, T); with input feeding each step needs the last one's output, so it loops.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import rnnlab.nn as rnn
from rnnlab.nn.masking import lengths_to_mask

__all__ = [
    "CELLS",
    "ATTENTION_CHOICES",
    "Seq2SeqConfig",
    "Memory",
    "DecoderState",
    "Encoder",
    "AttnDecoder",
    "Seq2Seq",
    "sequence_loss",
]

# Recurrent layers by name, resolved in one place.
CELLS: dict[str, type[nn.Module]] = {"rnn": rnn.RNN, "lstm": rnn.LSTM, "gru": rnn.GRU}
ATTENTION_CHOICES = ("additive", "dot", "general", "concat", "none")


@dataclass
class Seq2SeqConfig:
    src_vocab_size: int = 0  # V_src, set from the data's source vocabulary (specials included)
    tgt_vocab_size: int = 0  # V, set from the data's target vocabulary (specials included)
    pad_id: int = 0  # padding id (both vocabularies): padding_idx of the embeddings, ignore_index of the loss
    bos_id: int = 2  # target start token, the decoder's first input
    eos_id: int = 3  # target end token, the decoder's last output
    cell: str = "gru"  # "rnn" | "lstm" | "gru", from rnnlab.nn, for encoder and decoder
    embedding_dim: int = 64  # E, both embeddings
    hidden_size: int = 128  # H: decoder units; a bidirectional encoder has H / 2 per direction
    num_layers: int = 1  # L, stacked layers in encoder and decoder (equal, layer k starts layer k)
    bidirectional: bool = True  # encoder reads the source both ways
    attention: str = "additive"  # "additive" | "dot" | "general" | "concat" | "none"
    attention_size: int = 128  # hidden size of the additive / concat score (ignored by the others)
    input_feeding: bool = (
        True  # Luong's input feeding: x_t = [E y_{t-1}; h~_{t-1}] (ignored without attention)
    )
    dropout: float = 0.1  # on embeddings, between layers and before the output layer

    def __post_init__(self) -> None:
        if self.cell not in CELLS:
            raise ValueError(f"cell: expected one of {sorted(CELLS)}, received {self.cell!r}")
        if self.attention not in ATTENTION_CHOICES:
            raise ValueError(
                f"attention: expected one of {list(ATTENTION_CHOICES)}, received {self.attention!r}"
            )
        for name in ("embedding_dim", "hidden_size", "num_layers", "attention_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected an int >= 1, received {value!r}")
        if self.bidirectional and self.hidden_size % 2:
            raise ValueError(
                f"hidden_size: a bidirectional encoder splits it in two halves, expected an even number, "
                f"received {self.hidden_size}"
            )
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout: expected 0 <= dropout < 1, received {self.dropout}")
        specials = (self.pad_id, self.bos_id, self.eos_id)
        if len(set(specials)) != 3:
            raise ValueError(f"pad_id, bos_id, eos_id: expected three distinct ids, received {specials}")

    @property
    def uses_feeding(self) -> bool:
        return self.input_feeding and self.attention != "none"


class Memory(NamedTuple):
    """What the decoder attends to: the encoder's annotations and which of them are real tokens."""

    outputs: Tensor  # (B, T, H) annotations [h_fwd; h_bwd]
    mask: Tensor  # (B, T) bool, True at real source tokens

    def index_select(self, index: Tensor) -> Memory:
        """Rows ``index`` (beam search repeats and reorders examples)."""
        return Memory(self.outputs.index_select(0, index), self.mask.index_select(0, index))


class DecoderState(NamedTuple):
    """The decoder's carried state between steps, explicit (nothing is kept on the module)."""

    hidden: Tensor  # (L, B, H)
    cell: Tensor | None  # (L, B, H) for the LSTM, else None
    feed: Tensor | None  # (B, H) last attentional vector h~_{t-1} under input feeding, else None

    def index_select(self, index: Tensor) -> DecoderState:
        """Examples ``index`` (beam search reorders hypotheses by their parent beam)."""
        return DecoderState(
            self.hidden.index_select(1, index),
            None if self.cell is None else self.cell.index_select(1, index),
            None if self.feed is None else self.feed.index_select(0, index),
        )


class Encoder(nn.Module):
    """Embedding -> (bi)RNN over a PackedSequence; returns annotations (B, T, H) and states (L, B, H)."""

    def __init__(self, config: Seq2SeqConfig) -> None:
        super().__init__()
        c = config
        self.num_directions = 2 if c.bidirectional else 1
        self.embedding = nn.Embedding(c.src_vocab_size, c.embedding_dim, padding_idx=c.pad_id)
        self.rnn = CELLS[c.cell](
            c.embedding_dim,
            c.hidden_size // self.num_directions,
            num_layers=c.num_layers,
            batch_first=True,
            dropout=c.dropout if c.num_layers > 1 else 0.0,
            bidirectional=c.bidirectional,
        )
        self.dropout = nn.Dropout(c.dropout)

    def _merge_directions(self, h: Tensor) -> Tensor:
        """(L*D, B, H/D), rows ordered layer*D + direction -> (L, B, H) with [forward; backward] per layer."""
        LD, B, Hd = h.shape
        D = self.num_directions
        h = h.view(LD // D, D, B, Hd)  # (L, D, B, H/D)
        return h.permute(0, 2, 1, 3).reshape(LD // D, B, D * Hd)  # (L, B, D, H/D) -> (L, B, H)

    def forward(self, src: Tensor, src_lengths: Tensor) -> tuple[Tensor, tuple[Tensor, ...]]:
        """src (B, T), src_lengths (B,) -> outputs (B, T, H), zero at padding, and states (h,) or (h, c),
        each (L, B, H)."""
        embedded = self.dropout(self.embedding(src))  # (B, T, E)
        packed = pack_padded_sequence(embedded, src_lengths.cpu(), batch_first=True, enforce_sorted=False)
        packed_out, state = self.rnn(packed)
        outputs, _ = pad_packed_sequence(packed_out, batch_first=True, total_length=src.shape[1])  # (B, T, H)
        states = state if isinstance(state, tuple) else (state,)
        return outputs, tuple(self._merge_directions(s) for s in states)


class AttnDecoder(nn.Module):
    """Luong's attentional decoder (module docstring), one step or a whole teacher-forced target."""

    def __init__(self, config: Seq2SeqConfig) -> None:
        super().__init__()
        c = config
        self.config = c
        H = c.hidden_size
        self.embedding = nn.Embedding(c.tgt_vocab_size, c.embedding_dim, padding_idx=c.pad_id)
        self.rnn = CELLS[c.cell](
            c.embedding_dim + (H if c.uses_feeding else 0),
            H,
            num_layers=c.num_layers,
            batch_first=True,
            dropout=c.dropout if c.num_layers > 1 else 0.0,
        )
        if c.attention == "none":
            self.attention, self.combine = None, None
        else:
            self.attention = rnn.build_attention(c.attention, H, H, c.attention_size)
            self.combine = nn.Linear(2 * H, H, bias=False)  # W_c of Luong eq. (5)
        self.out = nn.Linear(H, c.tgt_vocab_size)  # W_s of Luong eq. (6)
        self.dropout = nn.Dropout(c.dropout)

    def _attend(self, h: Tensor, memory: Memory) -> tuple[Tensor, Tensor | None]:
        """h (B, H) or (B, S, H) -> attentional vector h~ (same shape), weights (B, [S,] T) or None."""
        if self.attention is None:
            return h, None
        context, weights = self.attention(h, memory.outputs, mask=memory.mask)  # c_t (B, [S,] H), a_t
        h_tilde = torch.tanh(self.combine(torch.cat([context, h], dim=-1)))  # tanh(W_c [c_t; h_t])
        return h_tilde, weights

    def _rnn_state(self, state: DecoderState):
        return state.hidden if state.cell is None else (state.hidden, state.cell)

    def step(self, y_prev: Tensor, state: DecoderState, memory: Memory):
        """One step: y_prev (B,) -> logits (B, V), next state, attention weights (B, T) or None."""
        x = self.dropout(self.embedding(y_prev))  # (B, E)
        if state.feed is not None:
            x = torch.cat([x, state.feed], dim=-1)  # (B, E + H)
        out, rnn_state = self.rnn(x.unsqueeze(1), self._rnn_state(state))  # (B, 1, H)
        h_tilde, weights = self._attend(out.squeeze(1), memory)  # (B, H), (B, T)
        logits = self.out(self.dropout(h_tilde))  # (B, V)
        hidden, cell = (rnn_state, None) if state.cell is None else rnn_state
        return logits, DecoderState(hidden, cell, h_tilde if state.feed is not None else None), weights

    def forward_all(self, tgt_in: Tensor, state: DecoderState, memory: Memory):
        """All steps at once (no input feeding): tgt_in (B, S) -> logits (B, S, V), weights (B, S, T)."""
        x = self.dropout(self.embedding(tgt_in))  # (B, S, E)
        out, _ = self.rnn(x, self._rnn_state(state))  # (B, S, H): causal, so padding never reaches real steps
        h_tilde, weights = self._attend(out, memory)  # (B, S, H), (B, S, T)
        return self.out(self.dropout(h_tilde)), weights  # (B, S, V)


def sequence_loss(logits: Tensor, tgt_out: Tensor, pad_id: int, label_smoothing: float = 0.0) -> Tensor:
    """Mean cross-entropy over the non-padding target tokens: logits (B, S, V), tgt_out (B, S) -> scalar.

    ``ignore_index=pad_id`` leaves padded positions out of both the sum and the count, so a batch's loss does
    not depend on how much padding it holds.
    """
    if logits.dim() != 3 or logits.shape[:2] != tgt_out.shape:
        raise ValueError(
            f"logits: expected shape (B, S, V) matching tgt_out (B, S) = {tuple(tgt_out.shape)}, "
            f"received {tuple(logits.shape)}"
        )
    V = logits.shape[-1]
    return F.cross_entropy(
        logits.reshape(-1, V).float(),  # (B*S, V)
        tgt_out.reshape(-1),  # (B*S,)
        ignore_index=pad_id,
        label_smoothing=label_smoothing,
    )


class Seq2Seq(nn.Module):
    """Encoder + attentional decoder (see the module docstring).

    >>> torch.manual_seed(0)
    <torch._C.Generator object at ...>
    >>> model = Seq2Seq(Seq2SeqConfig(src_vocab_size=12, tgt_vocab_size=9, hidden_size=16, embedding_dim=8,
    ...                               attention_size=16)).eval()
    >>> src, lengths = torch.tensor([[5, 6, 7], [8, 9, 0]]), torch.tensor([3, 2])
    >>> logits, attention = model(src, lengths, torch.tensor([[2, 4, 5], [2, 6, 0]]))
    >>> tuple(logits.shape), tuple(attention.shape), attention[1, :, 2].tolist()
    ((2, 3, 9), (2, 3, 3), [0.0, 0.0, 0.0])
    """

    def __init__(self, config: Seq2SeqConfig) -> None:
        super().__init__()
        if not isinstance(config, Seq2SeqConfig):
            raise TypeError(f"config: expected a Seq2SeqConfig, received {type(config).__name__}")
        c = config
        specials = max(c.pad_id, c.bos_id, c.eos_id)
        for name in ("src_vocab_size", "tgt_vocab_size"):
            if getattr(c, name) <= specials:
                raise ValueError(
                    f"{name}: expected more than the special ids (> {specials}), received {getattr(c, name)}"
                )
        self.config = c
        self.encoder = Encoder(c)
        self.decoder = AttnDecoder(c)

    def config_dict(self) -> dict:
        """The config as plain JSON values, for checkpoints (``Seq2Seq(Seq2SeqConfig(**d))`` rebuilds it)."""
        return asdict(self.config)

    def _check_source(self, src: Tensor, src_lengths: Tensor) -> None:
        if not isinstance(src, Tensor) or src.dim() != 2 or src.dtype != torch.long:
            got = (tuple(src.shape), src.dtype) if isinstance(src, Tensor) else type(src).__name__
            raise ValueError(f"src: expected an int64 tensor of shape (B, T), received {got}")
        B, T = src.shape
        if not isinstance(src_lengths, Tensor) or tuple(src_lengths.shape) != (B,):
            got = tuple(src_lengths.shape) if isinstance(src_lengths, Tensor) else type(src_lengths).__name__
            raise ValueError(f"src_lengths: expected shape (B={B},), received {got}")
        if B and (int(src_lengths.min()) < 1 or int(src_lengths.max()) > T):
            raise ValueError(
                f"src_lengths: expected every length in [1, T={T}], received "
                f"[{int(src_lengths.min())}, {int(src_lengths.max())}]"
            )

    def encode(self, src: Tensor, src_lengths: Tensor) -> tuple[Memory, DecoderState]:
        """Run the encoder: src (B, T), src_lengths (B,) -> the memory to attend to and the decoder's h_0."""
        self._check_source(src, src_lengths)
        outputs, states = self.encoder(src, src_lengths)  # (B, T, H), each (L, B, H)
        mask = lengths_to_mask(src_lengths.to(src.device), src.shape[1])  # (B, T)
        feed = outputs.new_zeros(src.shape[0], self.config.hidden_size) if self.config.uses_feeding else None
        cell = states[1] if len(states) == 2 else None
        return Memory(outputs, mask), DecoderState(states[0], cell, feed)

    def decode_step(self, y_prev: Tensor, state: DecoderState, memory: Memory):
        """One decoder step, state explicit: y_prev (B,) -> (logits (B, V), state, weights (B, T) or None)."""
        return self.decoder.step(y_prev, state, memory)

    def forward(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor, teacher_forcing: float = 1.0):
        """Teacher-forced (or partly self-fed) pass.

        Args:
            src: (B, T) source ids, padded with ``pad_id``.
            src_lengths: (B,) source lengths (the CPU is fine).
            tgt_in: (B, S) decoder inputs ``<bos> y_1 ... y_{S-1}``, padded.
            teacher_forcing: probability of feeding the true previous token; otherwise (per example and step,
                Bengio et al. 2015) the model's own argmax. ``1.0`` is plain teacher forcing.

        Returns:
            ``(logits, attention)``: (B, S, V) and (B, S, T), or None when ``attention="none"``.
        """
        self._check_source(src, src_lengths)
        if not isinstance(tgt_in, Tensor) or tgt_in.dim() != 2 or tgt_in.shape[0] != src.shape[0]:
            got = tuple(tgt_in.shape) if isinstance(tgt_in, Tensor) else type(tgt_in).__name__
            raise ValueError(f"tgt_in: expected shape (B={src.shape[0]}, S), received {got}")
        if not 0.0 <= teacher_forcing <= 1.0:
            raise ValueError(f"teacher_forcing: expected a probability in [0, 1], received {teacher_forcing}")
        memory, state = self.encode(src, src_lengths)
        if teacher_forcing == 1.0 and state.feed is None:
            return self.decoder.forward_all(tgt_in, state, memory)
        logits, weights = [], []
        y = tgt_in[:, 0]  # (B,)
        for t in range(tgt_in.shape[1]):
            step_logits, state, w = self.decoder.step(y, state, memory)
            logits.append(step_logits)
            weights.append(w)
            if t + 1 < tgt_in.shape[1]:
                y = tgt_in[:, t + 1]
                if teacher_forcing < 1.0:
                    own = step_logits.argmax(-1)  # (B,)
                    keep = torch.rand(y.shape, device=y.device) < teacher_forcing
                    y = torch.where(keep, y, own)
        attention = None if weights[0] is None else torch.stack(weights, dim=1)  # (B, S, T)
        return torch.stack(logits, dim=1), attention  # (B, S, V)
