"""Classify texts with a trained run: ``Predictor.from_checkpoint(path).predict(texts)``.

A checkpoint is self-describing (config, vocabulary, tokenizer, label names and weights; see
:mod:`rnnlab.training.checkpoint`), so the predictor needs nothing else: no data set, no training code.
For each text it returns the label, the probability of every label, the tokens the model read and, when the
model pools with attention, each token's attention weight.

A text the model mostly cannot read (more than half of its tokens are not in the training vocabulary and
become ``<unk>``) still gets a label, but one that says little: the predictor logs one warning per call
naming those texts and their share of unknown tokens (:data:`UNKNOWN_SHARE_WARNING` is the threshold). The
usual cause is a text in another language or script, or a tokenizer other than the one used in training.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import torch

from rnnlab.data import DataError, TextBatches, Vocab, tokenizer_from_dict
from rnnlab.data.text import encode_texts  # re-exported: it lived here before it moved to data/
from rnnlab.models.classifier import ClassifierConfig, RecurrentClassifier
from rnnlab.training.checkpoint import CheckpointError, load_checkpoint

__all__ = ["Predictor", "UNKNOWN_SHARE_WARNING", "encode_texts", "resolve_checkpoint", "unknown_shares"]

logger = logging.getLogger(__name__)
UNKNOWN_SHARE_WARNING = 0.5  # warn when more than this share of a text's tokens read are <unk>


def unknown_shares(ids: Sequence[Sequence[int]], counts: Sequence[int], unk_id: int) -> list[float]:
    """Per text, the share of the tokens read that are ``unk_id`` (0.0 for a text without tokens).

    ``ids`` and ``counts`` as :func:`encode_texts` returns them.

    >>> unknown_shares([[1, 5, 1], [7], [1]], [3, 1, 0], unk_id=1)
    [0.6666666666666666, 0.0, 0.0]
    """
    return [
        sum(i == unk_id for i in seq) / len(seq) if n else 0.0 for seq, n in zip(ids, counts, strict=True)
    ]


def _warn_if_mostly_unknown(shares: list[float], vocab_size: int, tokenizer) -> None:
    mostly = [(i, share) for i, share in enumerate(shares) if share > UNKNOWN_SHARE_WARNING]
    if not mostly:
        return
    shown = ", ".join(f"text {i + 1}: {share:.0%}" for i, share in mostly[:5])
    more = f" and {len(mostly) - 5} more" if len(mostly) > 5 else ""
    logger.warning(
        "%d of %d texts are mostly tokens unknown to the model (%s%s of their tokens are <unk>); the "
        "predictions say little. The text may be in another language or tokenization than the training "
        "data (%d-token vocabulary, %s).",
        len(mostly),
        len(shares),
        shown,
        more,
        vocab_size,
        type(tokenizer).__name__,
    )


def resolve_checkpoint(path: str | Path) -> Path:
    """A run folder means its ``best/`` checkpoint; a checkpoint folder is used as it is."""
    path = Path(path)
    if (path / "best").is_dir() or (path / "best.old").is_dir():
        return path / "best"
    if path.is_dir() and not (path / "meta.json").exists() and (path / "config.json").exists():
        raise CheckpointError(
            f"run {str(path)!r} has no best/ checkpoint (removed, or training has not finished an epoch yet)"
        )
    return path


class Predictor:
    """A trained classifier with its tokenizer, vocabulary and label names, in eval mode.

    Args:
        model: the classifier.
        tokenizer: callable text -> tokens (as used in training).
        vocab: the training vocabulary.
        label_names: class index -> label string.
        max_len: tokens read per text (longer texts are truncated, as in training).
        device: where the model runs.
    """

    def __init__(
        self,
        model: RecurrentClassifier,
        tokenizer,
        vocab: Vocab,
        label_names: list[str],
        max_len: int,
        device: str | torch.device = "cpu",
    ) -> None:
        self.model = model.to(device).eval()
        self.tokenizer, self.vocab, self.label_names, self.max_len = (
            tokenizer,
            vocab,
            list(label_names),
            max_len,
        )
        self.device = torch.device(device)

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device = "cpu") -> Predictor:
        """Load a run folder (its ``best/``) or a checkpoint folder; CheckpointError names any problem."""
        ckpt = load_checkpoint(resolve_checkpoint(path), device=device)
        meta = ckpt.meta
        missing = [k for k in ("config", "labels", "tokenizer", "vocab") if k not in meta]
        if missing:
            raise CheckpointError(
                f"checkpoint {str(ckpt.path)!r}: meta.json lacks {missing}; not a classifier"
            )
        try:
            model = RecurrentClassifier(ClassifierConfig.from_dict(meta["config"]["model"]))
            model.load_state_dict(ckpt.state_dict, strict=True)
            vocab = Vocab.from_dict(meta["vocab"])
            tokenizer = tokenizer_from_dict(meta["tokenizer"])
        except (KeyError, TypeError, ValueError, RuntimeError) as err:
            raise CheckpointError(
                f"checkpoint {str(ckpt.path)!r} does not describe a valid classifier: {err}"
            ) from None
        return cls(model, tokenizer, vocab, meta["labels"], int(meta["config"]["data"]["max_len"]), device)

    @staticmethod
    def _check(texts: Sequence[str]) -> list[str]:
        if isinstance(texts, str):
            texts = [texts]
        texts = list(texts)
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise DataError(f"text {i + 1}: expected a string, received {type(text).__name__}")
            if not text.strip():
                raise DataError(f"text {i + 1}: empty or whitespace-only text; nothing to classify")
        return texts

    @torch.no_grad()
    def _run(self, texts: list[str], batch_size: int):
        """Per length-bucketed batch: (index, probabilities (B, C), attention (B, T) or None, lengths)."""
        ids, counts = encode_texts(texts, self.tokenizer, self.vocab, self.max_len)
        _warn_if_mostly_unknown(
            unknown_shares(ids, counts, self.vocab.unk_id), len(self.vocab), self.tokenizer
        )
        for batch in TextBatches(ids, None, batch_size, shuffle=False, pad_id=self.vocab.pad_id):
            logits, weights = self.model(batch.ids.to(self.device), batch.lengths)
            yield batch.index, torch.softmax(logits.float(), -1).cpu(), weights, batch.lengths

    def probabilities(self, texts: Sequence[str], batch_size: int = 256) -> torch.Tensor:
        """Class probabilities (N, C) in the order of ``texts``."""
        texts = self._check(texts)
        out = torch.empty(len(texts), len(self.label_names))  # (N, C)
        for index, probs, _, _ in self._run(texts, batch_size):
            out[index] = probs
        return out

    def predict(self, texts: Sequence[str] | str, batch_size: int = 64) -> list[dict]:
        """Classify texts; one dict per text, in order.

        Each dict: ``text``, ``label``, ``probabilities`` ({label: p}), ``tokens`` (the tokens read, at most
        ``max_len``), ``attention`` (one weight per token, or None without attention pooling), ``num_tokens``
        (before truncation), ``truncated`` and ``unknown_share`` (the share of the tokens read that are not in
        the training vocabulary; above one half, one warning is logged for the call).
        """
        texts = self._check(texts)
        results: list[dict] = [{} for _ in texts]
        for index, probs, weights, lengths in self._run(texts, batch_size):
            for row, i in enumerate(index):
                tokens = self.tokenizer(texts[i])
                read = tokens[: self.max_len]
                p = probs[row].tolist()
                n = int(lengths[row])
                results[i] = {
                    "text": texts[i],
                    "label": self.label_names[max(range(len(p)), key=p.__getitem__)],
                    "probabilities": dict(zip(self.label_names, p, strict=True)),
                    "tokens": tokens[: self.max_len] or [self.vocab.tokens[self.vocab.unk_id]],
                    "attention": None if weights is None else weights[row, :n].float().cpu().tolist(),
                    "num_tokens": len(tokens),
                    "truncated": len(tokens) > self.max_len,
                    "unknown_share": unknown_shares(
                        [self.vocab.encode(read)], [len(read)], self.vocab.unk_id
                    )[0],
                }
        return results
