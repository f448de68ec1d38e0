r"""Evaluation metrics as pure functions of tensors (or lists), each returning plain Python numbers.

Classification (``pred`` are labels of shape (N,) or scores / logits of shape (N, C), argmax taken over C):

.. math::
    \mathrm{accuracy} = \tfrac{1}{N}\sum_i [\hat y_i = y_i] \qquad
    F_1^{(c)} = \frac{2\,TP_c}{2\,TP_c + FP_c + FN_c} \qquad
    \mathrm{macro\text{-}F_1} = \tfrac{1}{|K|}\sum_{c \in K} F_1^{(c)}

Sequences (``pred`` ids of shape (B, S) or logits (B, S, V); positions where ``target == pad_id`` are
ignored): token accuracy over non-pad positions, exact match over whole sequences, and corpus BLEU
(Papineni et al. 2002; computed by sacrebleu when installed, Post 2018, "A call for clarity in reporting
BLEU scores").

Language modelling, from the mean negative log-likelihood :math:`\bar\ell` in nats per token:
:math:`\mathrm{PPL} = e^{\bar\ell}`, :math:`\mathrm{BPC} = \bar\ell / \ln 2`.

Forecasting (``pred``, ``target`` of the same shape; errors averaged over every element):
MAE, RMSE, MAPE (in percent) and MASE (Hyndman & Koehler 2006) scaled by the in-sample seasonal naive error.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = [
    "accuracy",
    "confusion_matrix",
    "f1_per_class",
    "macro_f1",
    "token_accuracy",
    "exact_match",
    "corpus_bleu",
    "perplexity",
    "bits_per_char",
    "mae",
    "rmse",
    "mape",
    "mase",
]


def _as_tensor(x) -> Tensor:
    return x if isinstance(x, Tensor) else torch.as_tensor(x)


def _labels(pred, target, name: str = "pred") -> tuple[Tensor, Tensor]:
    """Labels from labels or scores: (N,) stays, (N, C) -> argmax over C. Checks the shapes agree."""
    pred, target = _as_tensor(pred), _as_tensor(target)
    if pred.dim() == target.dim() + 1:
        pred = pred.argmax(dim=-1)
    if pred.shape != target.shape:
        raise ValueError(
            f"{name} must have the shape of target {tuple(target.shape)} (labels) or that plus a class "
            f"dimension (scores); got {tuple(pred.shape)}"
        )
    return pred, target


def accuracy(pred, target) -> float:
    """Fraction of positions where the predicted label equals the target label (``pred`` labels or scores).

    >>> accuracy(torch.tensor([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]]), torch.tensor([1, 1, 1]))
    0.666...
    """
    pred, target = _labels(pred, target)
    if target.numel() == 0:
        raise ValueError("accuracy of an empty batch is undefined (target has no elements)")
    return (pred == target).double().mean().item()


def confusion_matrix(pred, target, num_classes: int) -> Tensor:
    """``M[i, j]`` = number of examples of true class ``i`` predicted as class ``j``; shape (C, C), int64."""
    pred, target = _labels(pred, target)
    pred, target = pred.reshape(-1).long(), target.reshape(-1).long()
    for name, t in (("pred", pred), ("target", target)):
        if t.numel() and (t.min() < 0 or t.max() >= num_classes):
            raise ValueError(
                f"{name} labels must lie in [0, num_classes={num_classes}); got range "
                f"[{t.min().item()}, {t.max().item()}]"
            )
    flat = target * num_classes + pred  # (N,) index of cell (true, predicted)
    return torch.bincount(flat, minlength=num_classes * num_classes).view(num_classes, num_classes)


def f1_per_class(pred, target, num_classes: int) -> list[float]:
    """F1 of each class, ``2TP / (2TP + FP + FN)``; 0.0 for a class absent from both pred and target."""
    cm = confusion_matrix(pred, target, num_classes).double()
    tp = cm.diagonal()
    fp = cm.sum(dim=0) - tp  # predicted as c, truly another class
    fn = cm.sum(dim=1) - tp  # truly c, predicted as another class
    denom = 2 * tp + fp + fn
    f1 = torch.where(denom > 0, 2 * tp / denom.clamp(min=1), torch.zeros_like(denom))
    return f1.tolist()


def macro_f1(pred, target, num_classes: int | None = None) -> float:
    """Unweighted mean of per-class F1 over the classes K present in ``target`` or ``pred``.

    Classes that appear in neither are left out of the mean (as scikit-learn does by default), so the value
    does not depend on whether ``num_classes`` counts labels unseen in this batch.

    >>> macro_f1([0, 1, 1, 1], [0, 0, 1, 1])  # F1: class 0 = 2/3, class 1 = 4/5
    0.733...
    """
    pred, target = _labels(pred, target)
    if target.numel() == 0:
        raise ValueError("macro_f1 of an empty batch is undefined (target has no elements)")
    if num_classes is None:
        num_classes = int(max(pred.max().item(), target.max().item())) + 1
    f1 = torch.tensor(f1_per_class(pred, target, num_classes), dtype=torch.float64)
    present = torch.zeros(num_classes, dtype=torch.bool)
    present[target.reshape(-1).long()] = True
    present[pred.reshape(-1).long()] = True
    return f1[present].mean().item()


def token_accuracy(pred, target, pad_id: int | None) -> float:
    """Fraction of non-pad target positions predicted correctly; ``pad_id=None`` counts every position."""
    pred, target = _labels(pred, target)
    keep = torch.ones_like(target, dtype=torch.bool) if pad_id is None else target != pad_id
    n = int(keep.sum().item())
    if n == 0:
        raise ValueError(f"token_accuracy: target has no positions other than pad_id={pad_id}")
    return ((pred == target) & keep).sum().item() / n


def exact_match(pred, target, pad_id: int | None = None) -> float:
    """Fraction of sequences predicted exactly.

    Either two lists of sequences (strings or token lists; compared with ``==``), or tensors: ``target``
    (B, S) and ``pred`` (B, S) ids or (B, S, V) logits, where a row matches when every non-pad position does.
    """
    if isinstance(target, Tensor):
        pred, target = _labels(pred, target)
        if target.dim() != 2:
            raise ValueError(f"exact_match expects target of shape (B, S), got {tuple(target.shape)}")
        ok = pred == target  # (B, S)
        if pad_id is not None:
            ok = ok | (target == pad_id)
        return ok.all(dim=1).double().mean().item()  # (B,) -> scalar
    if len(pred) != len(target):
        raise ValueError(f"exact_match: got {len(pred)} predictions for {len(target)} targets")
    if not target:
        raise ValueError("exact_match of an empty list is undefined")
    return sum(list(p) == list(t) for p, t in zip(pred, target, strict=True)) / len(target)


def _ngram_counts(tokens: list[str], n: int) -> Counter:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def _bleu_fallback(hyps: list[str], refs: list[str], max_n: int = 4) -> float:
    """BLEU-4 on whitespace tokens with sacrebleu's defaults (brevity penalty, 'exp' smoothing)."""
    matches, totals = [0] * max_n, [0] * max_n
    hyp_len = ref_len = 0
    for h, r in zip(hyps, refs, strict=True):
        h_tok, r_tok = h.split(), r.split()
        hyp_len, ref_len = hyp_len + len(h_tok), ref_len + len(r_tok)
        for n in range(1, max_n + 1):
            h_counts, r_counts = _ngram_counts(h_tok, n), _ngram_counts(r_tok, n)
            matches[n - 1] += sum(min(c, r_counts[g]) for g, c in h_counts.items())  # clipped counts
            totals[n - 1] += max(len(h_tok) - n + 1, 0)
    if hyp_len == 0 or totals[0] == 0:
        return 0.0
    log_p, smooth = 0.0, 1.0
    for m, t in zip(matches, totals, strict=True):
        if t == 0:  # no hypothesis n-grams of this order at all: BLEU is 0
            return 0.0
        if m == 0:  # 'exp' smoothing (Chen & Cherry 2014, method 3): 1 / 2^k for the k-th zero precision
            smooth *= 2
            p = 1.0 / (smooth * t)
        else:
            p = m / t
        log_p += math.log(p) / max_n
    bp = 1.0 if hyp_len >= ref_len else math.exp(1 - ref_len / hyp_len)
    return 100.0 * bp * math.exp(log_p)


def corpus_bleu(hypotheses: Sequence, references: Sequence, use_sacrebleu: bool | None = None) -> float:
    """Corpus BLEU in [0, 100] with one reference per hypothesis.

    Items are strings (tokenized by sacrebleu's standard '13a' tokenizer) or token lists (joined with spaces
    and not re-tokenized, so character-level Chinese is scored per character). Uses sacrebleu when it is
    installed (``use_sacrebleu=None``); the built-in fallback follows the same definition (4-grams, brevity
    penalty, 'exp' smoothing) on whitespace tokens and equals sacrebleu for pre-tokenized input.
    """
    if len(hypotheses) != len(references):
        raise ValueError(f"corpus_bleu: got {len(hypotheses)} hypotheses for {len(references)} references")
    tokenized = any(not isinstance(x, str) for x in [*hypotheses, *references])
    hyps = [x if isinstance(x, str) else " ".join(map(str, x)) for x in hypotheses]
    refs = [x if isinstance(x, str) else " ".join(map(str, x)) for x in references]
    if use_sacrebleu is not False:
        try:
            import sacrebleu
        except ImportError:
            if use_sacrebleu:
                raise
        else:
            tokenize = "none" if tokenized else "13a"
            # force: pre-tokenized input is meant to be scored as it is (no "forgot to detokenize" warning)
            return float(sacrebleu.corpus_bleu(hyps, [refs], tokenize=tokenize, force=tokenized).score)
    return _bleu_fallback(hyps, refs)


def perplexity(mean_nll: float | Tensor) -> float:
    """``exp(mean NLL)`` with the NLL in nats per token; ``inf`` when it overflows.

    >>> round(perplexity(math.log(50.0)), 6)  # as uncertain as a uniform choice among 50 tokens
    50.0
    """
    nll = float(mean_nll)
    return math.exp(nll) if nll < 709.0 else math.inf  # exp(709.8) is the largest finite double


def bits_per_char(mean_nll: float | Tensor) -> float:
    """Mean NLL converted from nats to bits: ``nll / ln 2``."""
    return float(mean_nll) / math.log(2)


def _regression_pair(pred, target) -> tuple[Tensor, Tensor]:
    pred, target = _as_tensor(pred).double(), _as_tensor(target).double()
    if pred.shape != target.shape:
        raise ValueError(f"pred must have the shape of target {tuple(target.shape)}, got {tuple(pred.shape)}")
    if target.numel() == 0:
        raise ValueError("error metrics of an empty target are undefined")
    return pred, target


def mae(pred, target) -> float:
    """Mean absolute error ``mean |y - ŷ|``."""
    pred, target = _regression_pair(pred, target)
    return (pred - target).abs().mean().item()


def rmse(pred, target) -> float:
    """Root mean squared error ``sqrt(mean (y - ŷ)^2)``."""
    pred, target = _regression_pair(pred, target)
    return (pred - target).pow(2).mean().sqrt().item()


def mape(pred, target, eps: float = 1e-8) -> float:
    """Mean absolute percentage error ``100 * mean |y - ŷ| / max(|y|, eps)``, in percent.

    ``eps`` only guards against division by zero; targets near zero make MAPE meaningless (prefer MASE).
    """
    pred, target = _regression_pair(pred, target)
    return (100.0 * (pred - target).abs() / target.abs().clamp(min=eps)).mean().item()


def mase(pred, target, history, seasonality: int = 1) -> float:
    r"""Mean absolute scaled error (Hyndman & Koehler 2006).

    .. math::
        \mathrm{MASE} = \frac{\mathrm{mean}_h |y_h - \hat y_h|}
                             {\frac{1}{T - m}\sum_{t=m+1}^{T} |x_t - x_{t-m}|}

    with ``history`` :math:`x_{1..T}` the in-sample series and ``m = seasonality``. Shapes: ``pred`` and
    ``target`` (..., H), ``history`` (..., T) with the same leading dimensions; each series is scaled by its
    own naive error and the per-series values are averaged. A series whose history is constant at lag ``m``
    has no scale and gives ``inf`` (``nan`` if its forecast is also perfect).
    """
    pred, target = _regression_pair(pred, target)
    history = _as_tensor(history).double()
    if seasonality < 1:
        raise ValueError(f"seasonality must be >= 1, got {seasonality}")
    if history.shape[:-1] != target.shape[:-1] or history.shape[-1] <= seasonality:
        raise ValueError(
            f"history must have shape {tuple(target.shape[:-1])} + (T,) with T > seasonality={seasonality}; "
            f"got {tuple(history.shape)}"
        )
    scale = (history[..., seasonality:] - history[..., :-seasonality]).abs().mean(dim=-1)  # (...)
    err = (pred - target).abs().mean(dim=-1)  # (...)
    return (err / scale).mean().item()
