"""Transfer: start a classifier's embedding and recurrent encoder from pretrained character language models.

ULMFiT (Howard & Ruder 2018) fine-tunes a language model's encoder as a classifier; a bidirectional
classifier needs both a forward LM (reads the text left to right) and a backward LM (trained on reversed
text, ``model.reverse`` in its run's config). :func:`load_encoder` copies their weights into a
:class:`rnnlab.models.classifier.RecurrentClassifier` whose encoder is a torch.nn-form LSTM or GRU:

* **Vocabularies mapped by character.** Row ``i`` of the classifier's embedding (token ``vocab[i]``) takes
  the LM's row of the same character; characters the LM never saw, and the specials ``<pad>`` / ``<unk>``,
  keep the classifier's own initialisation (``<pad>`` stays zero). The report gives the coverage.
* **Directions.** The forward LM's layer ``l`` goes to the classifier's ``weight_*_l{l}``, the backward
  LM's to ``weight_*_l{l}_reverse``; the classifier's reverse direction reads each text from its last token
  to its first, as the backward LM read its reversed text. With a forward LM only, the reverse direction
  keeps its initialisation.
* **The columns that read the other side start at zero**, so that at the start each direction computes
  exactly its LM's states: with two LMs the classifier's embedding holds both LMs' vectors side by side
  (``embedding_dim = E_fwd + E_bwd``; the forward direction's layer-0 input matrix reads the first
  ``E_fwd`` columns, the reverse one the rest), and a layer ``l >= 1`` of a bidirectional classifier reads
  both directions' outputs of layer ``l - 1`` (``D*H`` inputs), where its LM read ``H``: the LM's matrix
  fills the ``H`` columns of its own direction, the others are zero. Fine-tuning then learns to mix them.
* **Shapes must match** (cell, hidden size, layers; embedding size as above): a mismatch is a
  ``ValueError`` naming both sides. :func:`matching_sizes` gives the classifier sizes that fit.

Only the embedding and the recurrent stack are copied: the LM's output layer has no place in a classifier.

Dimension legend: V vocabulary, E embedding size, H hidden size, L layers, D directions, G gates (4 LSTM,
3 GRU).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

__all__ = ["PretrainedLM", "TransferReport", "load_encoder", "matching_sizes", "TRANSFERABLE_CELLS"]

# LM cell -> the classifier cell with the same equations and torch.nn's parameter names
TRANSFERABLE_CELLS = {"lstm": "lstm", "variational_dropout_lstm": "lstm", "gru": "gru"}


@dataclass
class PretrainedLM:
    """A character LM's pieces that transfer needs; :meth:`from_checkpoint` reads them from a charlm run."""

    state_dict: dict[str, Tensor]  # the LM's weights: embedding.weight (V, E), rnn.* (its recurrent stack)
    config: dict  # its model config: embedding_dim, hidden_size, num_layers, cell (CharLMConfig.to_dict())
    tokens: list[str]  # its vocabulary in id order (<pad>, <unk> first)
    reverse: bool = False  # True: trained on reversed text (a backward LM)
    source: str = "the language model"  # where it came from, for messages

    @classmethod
    def from_checkpoint(cls, checkpoint, run_config: dict | None = None, source: str = "") -> PretrainedLM:
        """From a loaded charlm checkpoint (``rnnlab.training.load_checkpoint(run / "best")``).

        ``run_config``: the run's ``config.json`` when there is one (its ``model.reverse`` says the
        direction; absent: a forward LM); else the config stored in the checkpoint's meta is read.
        """
        meta = checkpoint.meta
        source = source or str(checkpoint.path)
        if meta.get("task") != "charlm":
            raise ValueError(f"{source}: expected a charlm run, received a {meta.get('task')!r} checkpoint")
        config = run_config if run_config is not None else meta.get("config", {})
        model = config.get("model", {})
        return cls(
            checkpoint.state_dict,
            model,
            list(meta["vocab"]["tokens"]),
            bool(model.get("reverse", False)),
            source,
        )

    @property
    def rnn_state(self) -> dict[str, Tensor]:
        """The recurrent stack's weights under torch.nn's names: ``rnn.`` dropped, and WeightDrop's
        ``module.`` and ``_raw`` (the undropped weight) undone."""
        out = {}
        for name, value in self.state_dict.items():
            if not name.startswith("rnn."):
                continue
            name = name.removeprefix("rnn.").replace("module.", "").removesuffix("_raw")
            out[name] = value
        return out


@dataclass
class TransferReport:
    """What :func:`load_encoder` copied."""

    sources: dict[str, str]  # direction ("forward" / "reverse") -> the LM it came from
    coverage: dict[str, float]  # direction -> share of the classifier's characters the LM knew
    mapped: dict[str, int]  # direction -> how many embedding rows were copied
    vocab_size: int  # the classifier's characters (specials left out)
    unseen: list[str] = field(default_factory=list)  # a few characters no LM knew (they start fresh)
    notes: list[str] = field(default_factory=list)  # choices worth telling the user

    def to_dict(self) -> dict:
        return {
            "sources": self.sources,
            "coverage": self.coverage,
            "mapped": self.mapped,
            "vocab_size": self.vocab_size,
            "unseen": self.unseen,
            "notes": self.notes,
        }


def matching_sizes(forward: PretrainedLM, backward: PretrainedLM | None = None) -> dict:
    """The classifier's model config values that fit the LMs: ``embedding_dim``, ``hidden_size``,
    ``num_layers``, ``cell`` (and ``bidirectional`` True when there is a backward LM)."""
    lm = forward.config
    cell = lm.get("cell")
    if cell not in TRANSFERABLE_CELLS:
        raise ValueError(
            f"{forward.source}: model.cell={cell!r} cannot be transferred; expected one of "
            f"{', '.join(TRANSFERABLE_CELLS)}"
        )
    sizes = {
        "embedding_dim": lm["embedding_dim"] + (backward.config["embedding_dim"] if backward else 0),
        "hidden_size": lm["hidden_size"],
        "num_layers": lm["num_layers"],
        "cell": TRANSFERABLE_CELLS[cell],
    }
    return sizes | ({"bidirectional": True} if backward is not None else {})


def _check(model: nn.Module, forward: PretrainedLM, backward: PretrainedLM | None) -> None:
    """Directions and shapes; a ValueError naming both sides."""
    if forward.reverse:
        raise ValueError(
            f"{forward.source}: a backward LM (model.reverse=true) was given as the forward one; "
            "pass the forward LM first, the backward one second"
        )
    if backward is not None and not backward.reverse:
        raise ValueError(
            f"{backward.source}: expected a backward LM (model.reverse=true in its config) as the second LM, "
            "received a forward one"
        )
    c = model.config
    if backward is not None and not c.bidirectional:
        raise ValueError(
            f"{backward.source}: a backward LM needs a bidirectional classifier; the classifier has "
            "model.bidirectional=false"
        )
    lms = [lm for lm in (forward, backward) if lm is not None]
    for lm in lms:
        expected = matching_sizes(lm)
        mine = {"hidden_size": c.hidden_size, "num_layers": c.num_layers, "cell": c.cell}
        for key, value in mine.items():
            if value != expected[key]:
                raise ValueError(
                    f"{lm.source}: the language model gives model.{key}={expected[key]!r} (its cell "
                    f"{lm.config['cell']!r}), the classifier has model.{key}={value!r}; they must match "
                    f"(set model.{key}={expected[key]} or leave it at its default)"
                )
    embedding = sum(lm.config["embedding_dim"] for lm in lms)
    if c.embedding_dim != embedding:
        sides = " + ".join(str(lm.config["embedding_dim"]) for lm in lms)
        raise ValueError(
            f"{forward.source}: the classifier's model.embedding_dim={c.embedding_dim}, the language "
            f"model{'s give' if len(lms) > 1 else ' gives'} {sides} = {embedding} (two LMs' vectors sit "
            f"side by side); they must match (set model.embedding_dim={embedding} or leave it at its default)"
        )


@torch.no_grad()
def load_encoder(
    model: nn.Module, vocab_tokens: list[str], forward: PretrainedLM, backward: PretrainedLM | None = None
) -> TransferReport:
    """Copy ``forward`` (and ``backward``) into ``model``'s embedding and encoder, in place.

    Args:
        model: a :class:`~rnnlab.models.classifier.RecurrentClassifier` with an ``lstm`` or ``gru`` encoder.
        vocab_tokens: the classifier's vocabulary in id order (``<pad>``, ``<unk>`` first).
        forward: the forward LM; its weights go to the forward direction.
        backward: a backward LM (``reverse=True``) for the reverse direction, or None.

    Returns:
        a :class:`TransferReport` (sources, coverage, rows copied, unseen characters).
    """
    if len(vocab_tokens) != model.embedding.num_embeddings:
        raise ValueError(
            f"vocab_tokens: expected {model.embedding.num_embeddings} tokens (the classifier's vocabulary), "
            f"received {len(vocab_tokens)}"
        )
    _check(model, forward, backward)
    H, L = model.config.hidden_size, model.config.num_layers
    D = 2 if model.config.bidirectional else 1
    chars = [(i, t) for i, t in enumerate(vocab_tokens) if i >= 2]  # ids 0, 1: <pad>, <unk>
    report = TransferReport({}, {}, {}, len(chars))
    encoder = dict(model.encoder.named_parameters())
    known: set[str] = set()
    column = 0  # where this LM's vectors start in the classifier's embedding
    for direction, lm in enumerate((forward, backward)):
        if lm is None:
            continue
        name = ("forward", "reverse")[direction]
        E = lm.config["embedding_dim"]
        # embedding: rows of the characters the LM knows, in this LM's columns
        index = {t: i for i, t in enumerate(lm.tokens)}
        lm_embedding = lm.state_dict["embedding.weight"]  # (V_lm, E)
        rows = [(i, index[t]) for i, t in chars if t in index]
        if rows:
            mine, theirs = (torch.tensor(x) for x in zip(*rows, strict=True))
            model.embedding.weight[mine, column : column + E] = lm_embedding[theirs].to(
                model.embedding.weight
            )
        known |= {t for _, t in chars if t in index}
        report.sources[name], report.mapped[name] = lm.source, len(rows)
        report.coverage[name] = len(rows) / max(1, len(chars))
        # the stack: layer l of the LM -> layer l, this direction, of the classifier
        state = lm.rnn_state
        suffix = "_reverse" if direction == 1 else ""
        for layer in range(L):
            for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                source, target = f"{kind}_l{layer}", encoder[f"{kind}_l{layer}{suffix}"]
                if source not in state:
                    raise ValueError(
                        f"{lm.source}: the LM's weights have no {source!r}; found {sorted(state)}"
                    )
                value = state[source].to(target)
                if kind != "weight_ih":
                    target.copy_(value)  # (G*H, H) or (G*H,)
                    continue
                start = column if layer == 0 else direction * H  # the LM's inputs among the classifier's
                target.zero_()  # (G*H, E_total) or (G*H, D*H): the other side's columns start at zero
                target[:, start : start + value.shape[1]] = value
        column += E
    if backward is None and D == 2:
        report.notes.append(
            "one forward LM: the reverse direction starts from random weights (give a backward LM too)"
        )
    report.unseen = [t for _, t in chars if t not in known][:20]
    return report
