"""A recurrent text classifier: embedding -> (bi)RNN / LSTM / GRU -> pooling -> linear.

The encoder reads the padded batch as a PackedSequence, so padding never enters the recurrence: the forward
direction stops at each text's last token and the backward direction starts there (with plain padding the
backward LSTM would first read ``T - length`` pad tokens). The variant layers of :mod:`rnnlab.nn.variants`
(layer-norm, zoneout, peephole, variational dropout, minGRU / minLSTM; ``model.cell=layernorm_lstm`` etc.)
take padded input only; :class:`PaddedEncoder` runs them one direction at a time and feeds the reverse
direction each text reversed within its own length, which gives the same guarantee.

The pooling turns the encoder's outputs into one vector per text:

* ``last``: the final hidden state of each direction (forward: after the last token; backward: after the
  first), concatenated;
* ``mean`` / ``max``: over the valid time steps only;
* ``attention``: :class:`rnnlab.nn.AttentionPooling` (Yang et al. 2016), whose weights tell which tokens the
  decision rests on;
* ``concat``: ``[last, max, mean]`` side by side, (B, 3*D*H): ULMFiT's concat pooling (Howard & Ruder 2018),
  which keeps the final state and the strongest and average signal of every step.

For fine-tuning a pretrained encoder (:mod:`rnnlab.models.transfer`, :mod:`rnnlab.training.finetune`),
:meth:`RecurrentClassifier.layer_groups` cuts the model into groups bottom to top: the embedding, each
recurrent layer, and the head (pooling, the wide part, the output layer).

Beside this deep part, an optional wide part (``ngram_order > 0``, see :mod:`rnnlab.models.ngrams`): the
mean vector of the text's hashed token n-grams, concatenated to the pooled vector before the output
layer, as fastText reads a text; the model's input stays ``(ids, lengths)``.

Dimension legend: B batch, T time, E embedding size, H hidden size, D directions, C classes, G n-gram vector.

References:
    Yang et al. (2016), Hierarchical attention networks for document classification (attention pooling).
    Zhou et al. (2016), Attention-based bidirectional LSTM networks for relation classification.
    Joulin et al. (2017), Bag of tricks for efficient text classification (the wide part's n-gram mean).
    Howard & Ruder (2018), Universal language model fine-tuning for text classification (concat pooling).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnlab.models.ngrams import HashedNgrams
from rnnlab.nn._stack import run_stack
from rnnlab.nn.attention import AttentionPooling
from rnnlab.nn.masking import lengths_to_mask
from rnnlab.nn.recurrent import GRU, LSTM, RNN
from rnnlab.nn.variants import VARIANTS

__all__ = ["ClassifierConfig", "RecurrentClassifier", "PaddedEncoder", "ENCODERS", "POOLINGS"]

# Encoder layers by name, resolved in one place (RecurrentClassifier.__init__); the torch.nn drop-ins take
# PackedSequences, the variants run inside a PaddedEncoder.
ENCODERS = {"rnn": RNN, "lstm": LSTM, "gru": GRU, **VARIANTS}
POOLINGS = ("last", "mean", "max", "attention", "concat")
_POOLED_STATES = {"concat": 3}  # pooled vector size in units of D*H (1 for the others)


@dataclass
class ClassifierConfig:
    """Everything needed to rebuild the model; stored in every checkpoint."""

    vocab_size: int = 0  # V, including <pad> and <unk>; 0 until the task sets it from the vocabulary
    num_classes: int = 2  # C; set from the training labels by the task
    embedding_dim: int = 128  # E, size of each token's vector (learned from scratch)
    cell: str = (
        "lstm"  # encoder: "rnn" (tanh) | "lstm" | "gru" | a variant ("layernorm_lstm", "min_gru", ...)
    )
    hidden_size: int = 128  # H, per direction
    num_layers: int = 1  # stacked recurrent layers
    bidirectional: bool = True  # read the text both ways (D = 2)
    pooling: str = "attention"  # "last" | "mean" | "max" | "attention" | "concat" (last, max, mean)
    attention_size: int = 128  # hidden size of the attention pooling's scoring MLP
    embedding_dropout: float = 0.3  # dropout on the token vectors
    rnn_dropout: float = 0.0  # dropout between stacked layers (num_layers > 1 only)
    dropout: float = 0.3  # dropout on the pooled vector, before the output layer
    padding_idx: int = 0  # the vocabulary's <pad> id (its embedding stays zero)
    # The wide part (rnnlab.models.ngrams): the mean vector of the text's hashed token n-grams, joined to the
    # pooled state before the output layer. On by default: on reviews-zh (seed 0) it lifted test accuracy
    # from 0.840 to 0.852 and on a 3,000-row movies-en sample validation from 0.667 to 0.680
    # (benchmarks/results/sentiment_tuning.md); it costs about twice the CPU time per epoch. 0 turns it off.
    ngram_order: int = 3  # n-grams of 1..ngram_order consecutive tokens; 0: no wide part
    ngram_buckets: int = 262144  # rows of the n-gram hash table (2^18)
    ngram_dim: int = 32  # G, size of each n-gram vector
    # charlm run folder(s) the embedding and encoder start from: "FWD" or "FWD,BWD" (rnnlab.models.transfer);
    # None: random initialisation. Read by the task's train(); the model itself never opens it.
    init: str | None = None

    def validate(self) -> ClassifierConfig:
        """Check every field; raises ValueError naming the field, the expected and the received value.

        ``vocab_size = 0`` passes (a config whose vocabulary is not built yet); the model itself needs >= 2.
        """
        for name in (
            "vocab_size",
            "num_classes",
            "embedding_dim",
            "hidden_size",
            "num_layers",
            "attention_size",
            "ngram_buckets",
            "ngram_dim",
        ):
            low = 2 if name in ("vocab_size", "num_classes") else 1
            value = getattr(self, name)
            if name == "vocab_size" and value == 0:
                continue
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"model.{name}: expected an integer >= {low}, received {value!r}")
        if (
            not isinstance(self.ngram_order, int)
            or isinstance(self.ngram_order, bool)
            or self.ngram_order < 0
        ):
            raise ValueError(f"model.ngram_order: expected an integer >= 0, received {self.ngram_order!r}")
        if self.cell not in ENCODERS:
            raise ValueError(f"model.cell: expected one of {', '.join(ENCODERS)}, received {self.cell!r}")
        if self.pooling not in POOLINGS:
            raise ValueError(
                f"model.pooling: expected one of {', '.join(POOLINGS)}, received {self.pooling!r}"
            )
        for name in ("embedding_dropout", "rnn_dropout", "dropout"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"model.{name}: expected a probability in [0, 1), received {value!r}")
        if self.init is not None and (not isinstance(self.init, str) or not self.init.strip()):
            raise ValueError(
                f"model.init: expected a charlm run folder (or two, FWD,BWD) or None, received {self.init!r}"
            )
        if self.vocab_size and not 0 <= self.padding_idx < self.vocab_size:
            raise ValueError(
                f"model.padding_idx: expected in [0, {self.vocab_size}), received {self.padding_idx}"
            )
        return self

    def to_dict(self) -> dict:
        """JSON-ready copy (what a checkpoint stores)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ClassifierConfig:
        """Rebuild from :meth:`to_dict`; unknown keys are an error (a checkpoint from another model)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"model config: unknown keys {unknown}; expected some of {sorted(known)}")
        return cls(**data).validate()


def _reverse_within_lengths(lengths: Tensor, T: int) -> Tensor:
    """Index (B, T) that reverses each row's first ``lengths[b]`` steps and leaves its padding in place.

    Gathering with it twice is the identity. Example: lengths [3, 1], T = 3 -> [[2, 1, 0], [0, 1, 2]].
    """
    t = torch.arange(T, device=lengths.device).unsqueeze(0)  # (1, T)
    n = lengths.unsqueeze(1)  # (B, 1)
    return torch.where(t < n, n - 1 - t, t)  # (B, T)


class PaddedEncoder(nn.Module):
    """A stack of one-direction layers that take padded (B, T, ·) input (the rnnlab.nn variants).

    Layer ``l`` direction ``d`` is ``layers[l][d]``, built as ``make_layer(input_size, hidden_size)``; the
    layers, directions and inter-layer dropout are walked by rnnlab.nn's one stack (``run_stack``). The
    reverse direction reads each text from its last real token to its first. Returns outputs (B, T, D*H),
    zero at padding, and the last layer's final state of each direction (B, D*H).
    """

    def __init__(self, make_layer, input_size: int, hidden_size: int, num_layers: int, bidirectional: bool,
                 dropout: float) -> None:  # fmt: skip
        super().__init__()
        directions = 2 if bidirectional else 1
        self.hidden_size, self.dropout = hidden_size, dropout
        self.layers = nn.ModuleList(
            nn.ModuleList(
                make_layer(input_size if l == 0 else directions * hidden_size, hidden_size)
                for _ in range(directions)
            )
            for l in range(num_layers)
        )

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        B, T, _ = x.shape
        lengths = lengths.to(x.device)
        valid = lengths_to_mask(lengths, T).unsqueeze(-1)  # (B, T, 1)
        flip = _reverse_within_lengths(lengths, T).unsqueeze(-1)  # (B, T, 1)

        def run(layer: int, direction: int, x: Tensor, state: tuple) -> tuple[Tensor, tuple]:
            module = self.layers[layer][direction]
            if direction == 0:
                out, _ = module(x)  # (B, T, H)
                return out * valid, ()  # the steps past a text's end are zeroed
            out, _ = module(x.gather(1, flip.expand(-1, -1, x.shape[-1])))  # each text reversed in its length
            return out.gather(1, flip.expand(-1, -1, out.shape[-1])) * valid, ()  # (B, T, H), back in order

        x, _ = run_stack(run, x, (), len(self.layers), len(self.layers[0]), self.dropout, self.training)
        H = self.hidden_size
        last = [x[torch.arange(B, device=x.device), lengths - 1, :H]]  # forward: after the last token, (B, H)
        if len(self.layers[0]) == 2:
            last.append(x[:, 0, H:])  # reverse: after the first token, (B, H)
        return x, torch.cat(last, dim=-1)  # (B, T, D*H), (B, D*H)


def _mean(outputs: Tensor, lengths: Tensor) -> Tensor:
    """Mean over the valid steps: outputs (B, T, D*H), zero at padding -> (B, D*H)."""
    return outputs.sum(1) / lengths.to(outputs.device, outputs.dtype).unsqueeze(1)


def _max(outputs: Tensor, mask: Tensor) -> Tensor:
    """Max over the valid steps: outputs (B, T, D*H), mask (B, T) True at tokens -> (B, D*H)."""
    filled = outputs.masked_fill(~mask.unsqueeze(-1), torch.finfo(outputs.dtype).min)  # (B, T, D*H)
    return filled.max(dim=1).values


class RecurrentClassifier(nn.Module):
    """Embedding -> recurrent encoder -> pooling -> linear, built only from :mod:`rnnlab.nn` layers.

    ``forward(ids, lengths)`` takes ids (B, T) padded with ``padding_idx`` and lengths (B,) >= 1 and returns
    ``(logits, weights)``: logits (B, C) and, with attention pooling, the attention weights (B, T) (zero at
    padding, each row summing to one); ``weights`` is None for the other poolings.
    """

    def __init__(self, config: ClassifierConfig) -> None:
        super().__init__()
        self.config = config.validate()
        if config.vocab_size < 2:
            raise ValueError(
                f"model.vocab_size: expected >= 2 (set it from the vocabulary), received {config.vocab_size}"
            )
        c = config
        directions = 2 if c.bidirectional else 1
        self.embedding = nn.Embedding(c.vocab_size, c.embedding_dim, padding_idx=c.padding_idx)
        self.embedding_dropout = nn.Dropout(c.embedding_dropout)
        layer_dropout = c.rnn_dropout if c.num_layers > 1 else 0.0
        if c.cell in VARIANTS:
            variant = VARIANTS[c.cell]
            self.encoder = PaddedEncoder(
                lambda n_in, H: variant(n_in, H, batch_first=True),
                c.embedding_dim, c.hidden_size, c.num_layers, c.bidirectional, layer_dropout,
            )  # fmt: skip
        else:
            self.encoder = ENCODERS[c.cell](
                c.embedding_dim,
                c.hidden_size,
                num_layers=c.num_layers,
                batch_first=True,
                bidirectional=c.bidirectional,
                dropout=layer_dropout,
            )
        self.pool = (
            AttentionPooling(directions * c.hidden_size, c.attention_size)
            if c.pooling == "attention"
            else None
        )
        self.ngrams = (
            HashedNgrams(tuple(range(1, c.ngram_order + 1)), c.ngram_buckets, c.ngram_dim)
            if c.ngram_order
            else None
        )
        wide = c.ngram_dim if c.ngram_order else 0
        self.dropout = nn.Dropout(c.dropout)
        pooled = _POOLED_STATES.get(c.pooling, 1) * directions * c.hidden_size
        self.output = nn.Linear(pooled + wide, c.num_classes)

    def layer_groups(self) -> list[list[nn.Parameter]]:
        """The parameters cut into groups, bottom to top: the embedding, recurrent layer 0, ..., L-1, then
        the head (attention pooling, the wide part, the output layer). Every parameter appears once."""
        groups: list[list[nn.Parameter]] = [list(self.embedding.parameters())]
        L = self.config.num_layers
        if isinstance(self.encoder, PaddedEncoder):
            groups += [list(layer.parameters()) for layer in self.encoder.layers]
        else:  # torch.nn names: weight_ih_l{l}, weight_hh_l{l}_reverse, ...
            by_layer: list[list[nn.Parameter]] = [[] for _ in range(L)]
            for name, p in self.encoder.named_parameters():
                layer = int(name.rsplit("_l", 1)[1].split("_")[0])
                by_layer[layer].append(p)
            groups += by_layer
        seen = {id(p) for g in groups for p in g}
        groups.append([p for p in self.parameters() if id(p) not in seen])
        return groups

    def encode(self, ids: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """Run the encoder; returns outputs (B, T, D*H) (zero at padding) and the last layer's final hidden
        state of each direction, concatenated, (B, D*H)."""
        B, T = ids.shape
        x = self.embedding_dropout(self.embedding(ids))  # (B, T, E)
        if isinstance(self.encoder, PaddedEncoder):
            return self.encoder(x, lengths)
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        packed_out, state = self.encoder(packed)
        outputs, _ = pad_packed_sequence(packed_out, batch_first=True, total_length=T)  # (B, T, D*H)
        h_n = state[0] if isinstance(state, tuple) else state  # LSTM: (h_n, c_n); (D*L, B, H)
        directions = 2 if self.config.bidirectional else 1
        last = h_n[-directions:].transpose(0, 1).reshape(B, -1)  # (D, B, H) -> (B, D, H) -> (B, D*H)
        return outputs, last

    def forward(self, ids: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor | None]:
        if ids.dim() != 2:
            raise ValueError(f"ids: expected shape (B, T), received {tuple(ids.shape)}")
        if lengths.shape != ids.shape[:1]:
            raise ValueError(f"lengths: expected shape ({ids.shape[0]},), received {tuple(lengths.shape)}")
        if ids.shape[0] and (int(lengths.min()) < 1 or int(lengths.max()) > ids.shape[1]):
            raise ValueError(f"lengths: expected values in [1, {ids.shape[1]}], received {lengths.tolist()}")
        outputs, last = self.encode(ids, lengths)
        mask = lengths_to_mask(lengths.to(ids.device), ids.shape[1])  # (B, T), True = token
        weights = None
        pooling = self.config.pooling
        if pooling == "attention":
            pooled, weights = self.pool(outputs, mask=mask)  # (B, D*H), (B, T)
        elif pooling == "last":
            pooled = last  # (B, D*H)
        elif pooling == "mean":
            pooled = _mean(outputs, lengths)  # (B, D*H)
        elif pooling == "max":
            pooled = _max(outputs, mask)  # (B, D*H)
        else:  # concat
            pooled = torch.cat([last, _max(outputs, mask), _mean(outputs, lengths)], dim=-1)  # (B, 3*D*H)
        if self.ngrams is not None:  # the wide part beside the deep one
            pooled = torch.cat([pooled, self.ngrams(ids, lengths)], dim=-1)  # (B, D*H + G)
        logits = self.output(self.dropout(pooled))  # (B, C)
        return logits, weights
