r"""Greedy and beam-search decoding for :class:`rnnlab.models.seq2seq.Seq2Seq`, batched.

References:
    Sutskever, Vinyals & Le (2014), section 3.2: left-to-right beam search.
    Wu et al. (2016), Google's neural machine translation system, eq. (14): the length penalty.
    Ott et al. (2019), fairseq: the bookkeeping of finished hypotheses followed here.

Both decoders only use the model's two-method interface, ``memory, state = model.encode(src, lengths)`` and
``logits, state, weights = model.decode_step(y_prev, state, memory)``, with the state carried explicitly.

**Greedy** takes :math:`y_t = \arg\max_y p(y \mid y_{<t}, x)` until ``<eos>`` or ``max_len`` tokens.

**Beam search** keeps the ``K = beam_size`` best partial hypotheses per example. Each step scores all ``K V``
one-token extensions by their summed log-probability and takes the best ``2K``; an extension ending in
``<eos>`` that ranks among the best ``K`` is finished, and the first ``K`` that do not end in ``<eos>`` stay
alive.
An example stops when ``K`` hypotheses have finished (or after ``max_len`` tokens, when its alive hypotheses
compete too). The best finished one wins by

.. math::
    s(Y) = \frac{\log P(Y \mid X)}{lp(Y)}, \qquad lp(Y) = \frac{(5 + |Y|)^\alpha}{(5 + 1)^\alpha}

with :math:`\alpha` = ``length_penalty`` (0 compares raw log-probabilities, which favours short outputs) and
:math:`|Y|` the number of scored tokens, ``<eos>`` included. With ``K = 1`` this is exactly greedy search.

Every example is decoded independently: a padded batch gives what each source gives alone (tested), since the
encoder packs its input and the attention masks padding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["Decoded", "greedy_decode", "beam_search", "length_penalty_factor"]


@dataclass
class Decoded:
    """Outputs of a batch, one entry per example, in the batch's order."""

    tokens: list[list[int]]  # output ids without <bos> / <eos>
    log_probs: list[float]  # log P(Y | X) summed over the scored tokens (<eos> included when finished)
    scores: list[float]  # the ranking score: log_probs / lp(Y) (== log_probs for length_penalty=0)
    finished: list[bool]  # whether the output ended with <eos> (False: cut at max_len)
    attention: list[Tensor | None]  # (len(tokens) + finished, source length) weights, rows = output steps


def length_penalty_factor(length: int | Tensor, alpha: float) -> float | Tensor:
    """Wu et al. (2016) eq. (14): ``((5 + length) / 6) ** alpha``; 1 for ``alpha = 0``.

    >>> length_penalty_factor(1, 0.6), round(length_penalty_factor(10, 1.0), 4)
    (1.0, 2.5)
    """
    return ((5 + length) / 6) ** alpha


def _check(model: nn.Module, src: Tensor, src_lengths: Tensor, max_len: int, beam_size: int = 1) -> None:
    for name in ("encode", "decode_step", "config"):
        if not hasattr(model, name):
            raise TypeError(
                f"model: expected a Seq2Seq-like module with .{name}, received {type(model).__name__}"
            )
    if not isinstance(max_len, int) or max_len < 1:
        raise ValueError(f"max_len: expected an int >= 1, received {max_len!r}")
    if not isinstance(beam_size, int) or beam_size < 1:
        raise ValueError(f"beam_size: expected an int >= 1, received {beam_size!r}")
    if not isinstance(src, Tensor) or src.dim() != 2:
        raise ValueError(f"src: expected shape (B, T), received {getattr(src, 'shape', type(src).__name__)}")


def _log_softmax(logits: Tensor) -> Tensor:
    """log_softmax in at least float32 (half-precision logits lose the digits that rank hypotheses)."""
    return F.log_softmax(
        logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits, dim=-1
    )


class _EvalMode:
    """Decode in eval mode (no dropout), then give the model back its mode."""

    def __init__(self, model: nn.Module) -> None:
        self.model, self.was_training = model, model.training

    def __enter__(self) -> None:
        self.model.eval()

    def __exit__(self, *exc) -> None:
        self.model.train(self.was_training)


@torch.no_grad()
def greedy_decode(model: nn.Module, src: Tensor, src_lengths: Tensor, max_len: int = 100) -> Decoded:
    """Greedy decoding of a batch: src (B, T), src_lengths (B,) -> :class:`Decoded`.

    Args:
        model: a :class:`~rnnlab.models.seq2seq.Seq2Seq` (run in eval mode here, its mode restored after).
        src: (B, T) source ids, padded.
        src_lengths: (B,) source lengths.
        max_len: most output tokens per example, ``<eos>`` included.
    """
    _check(model, src, src_lengths, max_len)
    bos, eos = model.config.bos_id, model.config.eos_id
    with _EvalMode(model):
        memory, state = model.encode(src, src_lengths)
        B = src.shape[0]
        y = torch.full((B,), bos, dtype=torch.long, device=src.device)  # (B,)
        done = torch.zeros(B, dtype=torch.bool, device=src.device)
        log_prob = torch.zeros(B, dtype=torch.float64, device=src.device)  # sums kept in float64
        steps, weights = [], []
        for _ in range(max_len):
            logits, state, w = model.decode_step(y, state, memory)
            best, y = _log_softmax(logits).max(dim=-1)  # (B,), (B,)
            log_prob = log_prob + torch.where(done, torch.zeros_like(best), best)
            steps.append(y)
            weights.append(w)
            done = done | (y == eos)
            if bool(done.all()):
                break
    ids = torch.stack(steps, dim=1).tolist()  # (B, n)
    attention = None if weights[0] is None else torch.stack(weights, dim=1).float().cpu()  # (B, n, T)
    out = Decoded([], [], [], [], [])
    for b in range(B):
        row = ids[b]
        finished = eos in row
        n = row.index(eos) if finished else len(row)
        out.tokens.append(row[:n])
        out.log_probs.append(float(log_prob[b]))
        out.scores.append(float(log_prob[b]))
        out.finished.append(finished)
        length = int(src_lengths[b])
        out.attention.append(None if attention is None else attention[b, : n + finished, :length])
    return out


@torch.no_grad()
def beam_search(
    model: nn.Module,
    src: Tensor,
    src_lengths: Tensor,
    beam_size: int = 5,
    length_penalty: float = 0.0,
    max_len: int = 100,
) -> Decoded:
    """Beam search over a batch (see the module docstring): src (B, T), src_lengths (B,) -> :class:`Decoded`.

    Args:
        model: a :class:`~rnnlab.models.seq2seq.Seq2Seq` (run in eval mode here, its mode restored after).
        src: (B, T) source ids, padded.
        src_lengths: (B,) source lengths.
        beam_size: K, hypotheses kept per example (1 is greedy search).
        length_penalty: alpha of Wu et al. (2016); 0 ranks by raw log-probability, 0.6 to 1.0 favours longer
            outputs.
        max_len: most output tokens per example, ``<eos>`` included.
    """
    _check(model, src, src_lengths, max_len, beam_size)
    if length_penalty < 0:
        raise ValueError(f"length_penalty: expected alpha >= 0, received {length_penalty}")
    bos, eos = model.config.bos_id, model.config.eos_id
    K, device = beam_size, src.device
    B, T = src.shape
    with _EvalMode(model):
        memory, state = model.encode(src, src_lengths)
        repeat = torch.arange(B, device=device).repeat_interleave(K)  # (B*K,) example of each hypothesis
        memory, state = memory.index_select(repeat), state.index_select(repeat)
        y = torch.full((B * K,), bos, dtype=torch.long, device=device)  # (B*K,)
        # All K beams start identical: only beam 0 may expand at the first step.
        alive_logp = torch.full((B, K), -math.inf, dtype=torch.float64, device=device)  # sums in float64
        alive_logp[:, 0] = 0.0
        alive_tokens = torch.zeros(B, K, 0, dtype=torch.long, device=device)  # (B, K, t)
        alive_attn: Tensor | None = None  # (B, K, t, T) once the model returns weights
        finished: list[list[tuple]] = [[] for _ in range(B)]  # per example: (score, log_prob, tokens, attn)
        done = torch.zeros(B, dtype=torch.bool, device=device)
        for t in range(max_len):
            logits, state, w = model.decode_step(y, state, memory)
            logp = _log_softmax(logits)  # (B*K, V)
            V = logp.shape[-1]
            cand = (alive_logp.unsqueeze(-1) + logp.view(B, K, V)).view(B, K * V)  # (B, K*V)
            n_cand = min(2 * K, K * V)
            cand_logp, cand_index = cand.topk(n_cand, dim=1)  # (B, 2K), sorted best first
            parent, token = cand_index // V, cand_index % V  # (B, 2K) beam and next token of each candidate
            tokens = torch.cat(
                [alive_tokens.gather(1, parent.unsqueeze(-1).expand(-1, -1, t)), token.unsqueeze(-1)], dim=-1
            )  # (B, 2K, t + 1)
            attn = None
            if w is not None:
                step_w = (
                    w.float().view(B, K, 1, T).gather(1, parent.view(B, n_cand, 1, 1).expand(-1, -1, 1, T))
                )
                prev = alive_attn if alive_attn is not None else w.new_zeros(B, K, 0, T).float()
                attn = torch.cat(
                    [prev.gather(1, parent.view(B, n_cand, 1, 1).expand(-1, -1, t, T)), step_w], dim=2
                )  # (B, 2K, t + 1, T)

            # Finish the <eos> extensions that rank among the best K (fairseq's rule, which makes K=1 greedy).
            is_eos = token == eos  # (B, 2K)
            rank = torch.arange(n_cand, device=device).unsqueeze(0)  # (1, 2K)
            final = is_eos & (rank < K) & ~done.unsqueeze(1) & torch.isfinite(cand_logp)
            for b, j in final.nonzero().tolist():
                lp = float(cand_logp[b, j])
                score = lp / length_penalty_factor(t + 1, length_penalty)
                a = None if attn is None else attn[b, j]
                finished[b].append((score, lp, tokens[b, j, :-1], a))
            done = done | torch.tensor([len(f) >= K for f in finished], device=device)
            if bool(done.all()):
                break

            # The first K candidates that do not end in <eos> stay alive.
            masked = cand_logp.masked_fill(is_eos, -math.inf)  # (B, 2K)
            alive_logp, keep = masked.topk(K, dim=1)  # (B, K); topk of a sorted row keeps the order
            alive_tokens = tokens.gather(1, keep.unsqueeze(-1).expand(-1, -1, t + 1))  # (B, K, t + 1)
            if attn is not None:
                alive_attn = attn.gather(1, keep.view(B, K, 1, 1).expand(-1, -1, t + 1, T))  # (B, K, t+1, T)
            beam = parent.gather(1, keep)  # (B, K) parent beam of each kept hypothesis
            flat = (torch.arange(B, device=device).unsqueeze(1) * K + beam).view(-1)  # (B*K,)
            state = state.index_select(flat)
            y = token.gather(1, keep).view(-1)  # (B*K,)

    out = Decoded([], [], [], [], [])
    for b in range(B):
        hyps = finished[b]
        if not hyps:  # cut at max_len: the alive hypotheses compete, unfinished
            n = alive_tokens.shape[2]
            hyps = [
                (float(alive_logp[b, k]) / length_penalty_factor(n, length_penalty), float(alive_logp[b, k]),
                 alive_tokens[b, k], None if alive_attn is None else alive_attn[b, k])
                for k in range(K)
                if math.isfinite(float(alive_logp[b, k]))
            ]  # fmt: skip
        score, lp, tok, a = max(hyps, key=lambda h: h[0])
        length = int(src_lengths[b])
        out.tokens.append(tok.tolist())
        out.log_probs.append(lp)
        out.scores.append(score)
        out.finished.append(bool(finished[b]))
        out.attention.append(None if a is None else a[:, :length].cpu())
    return out
