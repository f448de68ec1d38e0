"""Classify texts with a trained run: ``Predictor.from_checkpoint(path).predict(texts)``.

A checkpoint is self-describing (config, vocabulary, tokenizer, label names and weights; see
:mod:`rnnlab.training.checkpoint`), so the predictor needs nothing else: no data set, no training code.
For each text it returns the label, the probability of every label, the tokens the model read and, when the
model pools with attention, each token's attention weight.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from rnnlab.data import DataError, TextBatches, Vocab, tokenizer_from_dict
from rnnlab.models.classifier import ClassifierConfig, RecurrentClassifier
from rnnlab.training.checkpoint import CheckpointError, load_checkpoint

__all__ = ["Predictor", "encode_texts", "resolve_checkpoint"]


def encode_texts(
    texts: Sequence[str], tokenizer, vocab: Vocab, max_len: int
) -> tuple[list[list[int]], list[int]]:
    """Tokenize, map to ids and truncate to ``max_len``; returns the ids and each text's full token count.

    A text with no token at all (it cannot come from a non-empty text with the bundled tokenizers) becomes
    one ``<unk>``, so every sequence has length >= 1.
    """
    ids, counts = [], []
    for text in texts:
        tokens = tokenizer(text)
        counts.append(len(tokens))
        ids.append(vocab.encode(tokens[:max_len]) or [vocab.unk_id])
    return ids, counts


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
        ids, _ = encode_texts(texts, self.tokenizer, self.vocab, self.max_len)
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
        (before truncation) and ``truncated``.
        """
        texts = self._check(texts)
        results: list[dict] = [{} for _ in texts]
        for index, probs, weights, lengths in self._run(texts, batch_size):
            for row, i in enumerate(index):
                tokens = self.tokenizer(texts[i])
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
                }
        return results
