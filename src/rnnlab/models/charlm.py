"""A character language model: embedding -> rnnlab.nn recurrent stack -> tied or untied output layer.

``logits, state = model(ids, state)`` with ``ids`` (B, T) and ``logits`` (B, T, V): the scores of the next
character after each position; ``state`` is the stack's final state (``(h, c)`` for LSTM-like cells, ``h``
otherwise), to be passed to the next call (stateful truncated BPTT, sampling). :func:`detach_state` cuts the
graph between chunks.

Regularizers (Merity, Keskar & Socher 2017; Gal & Ghahramani 2016): ``embedding_dropout`` and
``output_dropout`` on the vectors in and out of the stack, ``dropout`` between layers (torch.nn's),
``weight_drop`` (DropConnect on every ``weight_hh``, :class:`rnnlab.nn.WeightDrop`), and the variant cells
(``layernorm_lstm``, ``layernorm_gru``, ``variational_dropout_lstm`` with ``dropout`` as its input and state
masks). ``tie_weights`` shares the embedding matrix with the output layer (Press & Wolf 2017; Inan et al.
2017); when the hidden size differs from the embedding size a linear projection H -> E comes first.

``reverse`` marks a backward LM: the task feeds it every text right to left (the model itself reads ids in
the order given), so a bidirectional classifier can take its reverse direction from it
(:mod:`rnnlab.models.transfer`).

**Model size for a budget** (:func:`hidden_size_for_budget`). A step over one character costs about six
floating-point operations per parameter (forward and backward; the input embedding, a lookup, left out of
``N`` as Kaplan et al. 2020 count), so a time budget buys a fixed number of parameter x character
products, ``K = N x C``: a bigger model reads fewer characters. Following Hoffmann et
al. (2022), whose compute-optimal models read about 20 tokens per parameter, the rule takes the largest
hidden size ``H`` (a multiple of 64 in [128, 1024]) whose model of ``N(H)`` parameters still reads
``C = K / N(H) >= 20 N(H)`` characters, counting at most 4 passes over the training text (Muennighoff et al.
2023: up to about four passes, repeated text is worth nearly as much as new text).

Dimension legend: B batch, T time, E embedding size, H hidden size, L layers, V vocabulary size.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
from torch import Tensor, nn

from rnnlab.nn.recurrent import GRU, LSTM
from rnnlab.nn.regularizers import VariationalDropoutLSTM, WeightDrop
from rnnlab.nn.variants import LayerNormGRU, LayerNormLSTM

__all__ = [
    "CharLMConfig",
    "CharLM",
    "CELLS",
    "detach_state",
    "parameter_count",
    "hidden_size_for_budget",
    "CHARS_PER_PARAMETER",
    "MAX_PASSES",
    "HIDDEN_SIZES",
]

CELLS = {
    "lstm": LSTM,
    "gru": GRU,
    "layernorm_lstm": LayerNormLSTM,
    "layernorm_gru": LayerNormGRU,
    "variational_dropout_lstm": VariationalDropoutLSTM,
}
State = Tensor | tuple[Tensor, Tensor]
CHARS_PER_PARAMETER = 20  # characters read per parameter at the compute-optimal size (Hoffmann et al. 2022)
MAX_PASSES = 4  # passes over the training text that count as new characters (Muennighoff et al. 2023)
HIDDEN_SIZES = tuple(range(128, 1025, 64))  # the sizes the rule picks from


@dataclass
class CharLMConfig:
    """Everything needed to rebuild the model; stored in every checkpoint."""

    vocab_size: int = 0  # V, <pad> and <unk> included; set by the task from the training text
    embedding_dim: int = 128  # E
    cell: str = "lstm"  # one of CELLS
    hidden_size: int = 512  # H; 0: chosen by the task for its time budget (hidden_size_for_budget)
    num_layers: int = 1  # L
    dropout: float = 0.0  # between layers (lstm / gru / layernorm_*); the masks of variational_dropout_lstm
    embedding_dropout: float = 0.0  # on the character vectors
    output_dropout: float = 0.1  # on the stack's output, before the output layer
    weight_drop: float = 0.0  # DropConnect on every recurrent matrix weight_hh (AWD-LSTM)
    tie_weights: bool = False  # share the embedding matrix with the output layer
    reverse: bool = False  # a backward LM: the task gives it every text right to left

    def validate(self) -> CharLMConfig:
        """Check every field; raises ValueError naming the field, the expected and the received value."""
        for name in ("vocab_size", "embedding_dim", "hidden_size", "num_layers"):
            value = getattr(self, name)
            if name in ("vocab_size", "hidden_size") and value == 0:
                continue
            low = 3 if name == "vocab_size" else 1
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"model.{name}: expected an integer >= {low}, received {value!r}")
        if self.cell not in CELLS:
            raise ValueError(f"model.cell: expected one of {', '.join(CELLS)}, received {self.cell!r}")
        for name in ("dropout", "embedding_dropout", "output_dropout", "weight_drop"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"model.{name}: expected a probability in [0, 1), received {value!r}")
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> CharLMConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"model config: unknown keys {unknown}; expected some of {sorted(known)}")
        return cls(**data).validate()


def detach_state(state: State | None) -> State | None:
    """The state without its graph: truncated BPTT's cut between chunks."""
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    return state.detach()


def _build_stack(cfg: CharLMConfig) -> nn.Module:
    args = (cfg.embedding_dim, cfg.hidden_size, cfg.num_layers)
    if cfg.cell == "variational_dropout_lstm":
        rnn = VariationalDropoutLSTM(
            *args, batch_first=True, dropout_input=cfg.dropout, dropout_state=cfg.dropout
        )
    else:
        rnn = CELLS[cfg.cell](*args, batch_first=True, dropout=cfg.dropout if cfg.num_layers > 1 else 0.0)
    if cfg.weight_drop > 0:
        names = [
            name for name, _ in rnn.named_parameters() if name.rsplit(".", 1)[-1].startswith("weight_hh")
        ]
        rnn = WeightDrop(rnn, names, dropout=cfg.weight_drop)
    return rnn


class CharLM(nn.Module):
    """Embedding -> recurrent stack -> (projection) -> output layer; see the module docstring."""

    def __init__(self, config: CharLMConfig) -> None:
        super().__init__()
        config = CharLMConfig.from_dict(config.to_dict())
        if config.vocab_size < 3:
            raise ValueError(f"model.vocab_size: expected an integer >= 3, received {config.vocab_size}")
        if config.hidden_size < 1:
            raise ValueError(
                f"model.hidden_size: expected an integer >= 1 (0 is resolved by the task), received "
                f"{config.hidden_size}"
            )
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.embedding_dim)
        self.rnn = _build_stack(config)
        self.drop_in = nn.Dropout(config.embedding_dropout)
        self.drop_out = nn.Dropout(config.output_dropout)
        out_size = config.hidden_size
        self.proj = None
        if config.tie_weights and config.hidden_size != config.embedding_dim:
            self.proj = nn.Linear(config.hidden_size, config.embedding_dim)
            out_size = config.embedding_dim
        self.decoder = nn.Linear(out_size, config.vocab_size)
        if config.tie_weights:
            self.decoder.weight = self.embedding.weight  # (V, E), one matrix for reading and writing

    @property
    def has_cell_state(self) -> bool:
        """True when the state is ``(h, c)`` (LSTM-like cells)."""
        return "lstm" in self.config.cell

    def forward(self, ids: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """``ids`` (B, T) -> next-character ``logits`` (B, T, V) and the final state of the stack."""
        x = self.drop_in(self.embedding(ids))  # (B, T, E)
        out, state = self.rnn(x, state)  # (B, T, H), state (L, B, H) or a pair of them
        out = self.drop_out(out)
        if self.proj is not None:
            out = self.proj(out)  # (B, T, E)
        return self.decoder(out), state  # (B, T, V)

    def step_states(self, ids: Tensor) -> tuple[Tensor, Tensor]:
        """Run ``ids`` (T,) one character at a time; returns the logits (T, V) and the last layer's cell
        state at every step (T, H): ``c`` for LSTM-like cells, ``h`` otherwise (for the cell picture)."""
        state, logits, cells = None, [], []
        for t in range(ids.shape[0]):
            out, state = self(ids[t].view(1, 1), state)
            logits.append(out[0, 0])
            cells.append((state[1] if isinstance(state, tuple) else state)[-1, 0])
        return torch.stack(logits), torch.stack(cells)


def parameter_count(config: CharLMConfig, embedding: bool = True) -> int:
    """N: the parameters of the model ``config`` describes (built on the meta device: no memory, no init).

    ``embedding=False`` leaves out the input embedding (a lookup that costs no arithmetic; with tied weights
    it is the output layer and stays), as Kaplan et al. (2020) count a model's size."""
    with torch.device("meta"):
        model = CharLM(config)
    skip = not embedding and not config.tie_weights
    return sum(p.numel() for name, p in model.named_parameters() if not (skip and name == "embedding.weight"))


def hidden_size_for_budget(compute: float, train_chars: int, config: CharLMConfig) -> int:
    """The hidden size the budget rule picks (module docstring).

    Args:
        compute: K, what the budget buys as parameters x characters (a measured rate in characters per
            second of a model of N non-embedding parameters, times N, times the seconds).
        train_chars: the training text's length; at most ``MAX_PASSES`` passes over it count.
        config: the rest of the model (vocabulary, embedding, cell, layers); its ``hidden_size`` is ignored.

    Returns:
        The largest H of :data:`HIDDEN_SIZES` with ``min(K / N(H), MAX_PASSES x train_chars) >= 20 N(H)``,
        or the smallest when none fits.
    """
    if not compute > 0 or train_chars < 1:
        raise ValueError(
            f"hidden_size_for_budget: expected compute > 0 and train_chars >= 1, received {compute!r} and "
            f"{train_chars!r}"
        )
    best = HIDDEN_SIZES[0]
    for size in HIDDEN_SIZES:
        sized = CharLMConfig.from_dict({**config.to_dict(), "hidden_size": size})
        n = parameter_count(sized, embedding=False)
        if min(compute / n, MAX_PASSES * train_chars) >= CHARS_PER_PARAMETER * n:
            best = size
    return best
