"""Write text with a trained character language model: ``Sampler.from_checkpoint(run).sample(...)``.

Each step feeds one character, carries the recurrent state on and draws the next character from
``softmax(logits / temperature)`` after the filters:

* ``top_k = K``: only the K most likely characters stay;
* ``top_p = P`` (nucleus sampling, Holtzman et al. 2020): the smallest set of most likely characters whose
  probabilities sum to at least P stays (the most likely one always does);
* ``temperature = 0`` means greedy decoding: the most likely character every step (top-k / top-p then
  change nothing).

``<pad>`` and ``<unk>`` are never drawn. Draws come from a ``torch.Generator`` seeded with ``seed``: the
same seed, prime and settings give the same text. The prime's characters unseen in training are read as
``<unk>``; a prime made only of unseen characters is an error. An empty prime starts from a newline (or the
most frequent character when the training text had no newline).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
from torch import Tensor

from rnnlab.data import DataError, Vocab
from rnnlab.models.charlm import CharLM, CharLMConfig
from rnnlab.training.checkpoint import CheckpointError, load_checkpoint

__all__ = ["Sampler", "filter_logits", "check_sampling", "seeded_generator"]


def check_sampling(length: int, temperature: float, top_k: int | None, top_p: float | None) -> None:
    """A DataError naming the option for a value out of range (``--length 0``, ``--top-p 1.5``, ...)."""
    if isinstance(length, bool) or not isinstance(length, int) or length < 1:
        raise DataError(f"--length: expected an integer >= 1, received {length!r}")
    if not isinstance(temperature, int | float) or not math.isfinite(temperature) or temperature < 0:
        raise DataError(
            f"--temperature: expected a number >= 0 (0 means greedy: always the most likely character), "
            f"received {temperature!r}"
        )
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise DataError(f"--top-k: expected an integer >= 1, received {top_k!r}")
    if top_p is not None and not (isinstance(top_p, int | float) and 0 < top_p <= 1):
        raise DataError(f"--top-p: expected a probability in (0, 1], received {top_p!r}")


def seeded_generator(seed: int | None) -> torch.Generator:
    """A generator seeded with ``seed`` (None: a fresh random seed): the same seed, the same draws."""
    generator = torch.Generator()
    generator.manual_seed(seed if seed is not None else torch.seed())
    return generator


def filter_logits(logits: Tensor, top_k: int | None = None, top_p: float | None = None) -> Tensor:
    """``logits`` (V,) with every character outside the top-k / top-p set at ``-inf``."""
    logits = logits.clone()
    if top_k is not None and top_k < logits.numel():
        kth = torch.topk(logits, top_k).values[-1]
        logits[logits < kth] = -math.inf
    if top_p is not None and top_p < 1:
        probs, order = torch.softmax(logits, -1).sort(descending=True)  # (V,), (V,)
        before = probs.cumsum(-1) - probs  # mass of the more likely characters
        drop = order[before >= top_p]  # the first character is always kept (before = 0 < top_p)
        logits[drop] = -math.inf
    return logits


class Sampler:
    """A trained character model with its vocabulary, in eval mode, on the CPU."""

    def __init__(self, model: CharLM, vocab: Vocab) -> None:
        self.model = model.eval()
        self.vocab = vocab

    @classmethod
    def from_checkpoint(cls, path: str | Path) -> Sampler:
        """Load a run folder's ``best/`` checkpoint (or a checkpoint folder)."""
        from rnnlab.inference.predictor import resolve_checkpoint

        ckpt = load_checkpoint(resolve_checkpoint(path))
        if ckpt.meta.get("task") != "charlm":
            raise CheckpointError(f"{path}: a {ckpt.meta.get('task')!r} checkpoint, not a charlm one")
        model = CharLM(CharLMConfig.from_dict(ckpt.meta["config"]["model"]))
        model.load_state_dict(ckpt.state_dict)
        return cls(model, Vocab.from_dict(ckpt.meta["vocab"]))

    def encode_prime(self, prime: str) -> list[int]:
        """The prime's ids (unseen characters as ``<unk>``); see the module docstring for an empty prime."""
        if not prime:
            return [self.vocab.index.get("\n", 2)]
        ids = self.vocab.encode(list(prime))
        if all(i == self.vocab.unk_id for i in ids):
            raise DataError(
                f"--prime {prime!r}: none of its characters was seen in training; the model knows "
                f"{len(self.vocab) - 2} characters, e.g. {''.join(self.vocab.tokens[2:22])!r}"
            )
        return ids

    @torch.no_grad()
    def stream(
        self,
        prime: str = "",
        length: int = 200,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int | None = 0,
        generator: torch.Generator | None = None,
    ) -> Iterator[str]:
        """Yield ``length`` new characters one at a time, as they are made (the prime is not repeated)."""
        check_sampling(length, temperature, top_k, top_p)
        generator = generator if generator is not None else seeded_generator(seed)
        last, state = self.read_prime(prime)
        for _ in range(length):
            nxt = self.draw(last, temperature, top_k, top_p, generator)
            yield self.vocab.tokens[nxt]
            logits, state = self.model(torch.tensor([[nxt]]), state)
            last = logits[0, -1]

    @torch.no_grad()
    def read_prime(self, prime: str) -> tuple[Tensor, object]:
        """The scores of the character after ``prime`` (V,) and the state after it (batch of one)."""
        ids = torch.tensor(self.encode_prime(prime)).view(1, -1)  # (1, P)
        logits, state = self.model(ids)
        return logits[0, -1], state

    def draw(
        self,
        last: Tensor,
        temperature: float,
        top_k: int | None,
        top_p: float | None,
        generator: torch.Generator,
    ) -> int:
        """One character id from the scores ``last`` (V,) (see :meth:`draw_rows`)."""
        return self.draw_rows(last.view(1, -1), [(temperature, top_k, top_p)], [generator])[0]

    def draw_rows(
        self,
        last: Tensor,
        options: Sequence[tuple[float, int | None, float | None]],
        generators: Sequence[torch.Generator],
    ) -> list[int]:
        """One character id per row of the scores ``last`` (B, V), row ``b`` with its own ``(temperature,
        top_k, top_p)`` and generator: greedy at temperature 0, else the inverse of the filtered softmax's
        cumulative sum at one uniform number from the row's generator (never ``<pad>`` / ``<unk>``; a
        character of probability 0 is never drawn). The filters and the softmax work on all rows at once,
        each row exactly as it would alone, so a row's draw does not depend on the other rows."""
        last = last.float().clone()
        last[:, [self.vocab.pad_id, self.vocab.unk_id]] = -math.inf
        out = last.argmax(-1).tolist()  # the greedy rows' answer; the others are drawn below
        rows = [b for b, (temperature, _, _) in enumerate(options) if temperature != 0]
        if not rows:
            return out
        probs = self.probabilities(last[rows], [options[b] for b in rows])  # (S, V)
        cdf = probs.double().cumsum(-1)  # (S, V)
        u = torch.cat([torch.rand(1, dtype=torch.float64, generator=generators[b]) for b in rows])  # (S,)
        picked = torch.searchsorted(cdf, (u * cdf[:, -1]).unsqueeze(-1), right=True).squeeze(-1)  # (S,)
        possible = probs.shape[-1] - 1 - (probs > 0).flip(-1).int().argmax(-1)  # the last id with p > 0
        for b, i in zip(rows, torch.minimum(picked, possible).tolist(), strict=True):
            out[b] = i
        return out

    @staticmethod
    def probabilities(logits: Tensor, options: Sequence[tuple[float, int | None, float | None]]) -> Tensor:
        """``softmax(logits / temperature)`` after the top-k / top-p filters, per row of ``logits`` (S, V)
        (every temperature > 0): row ``s`` equals ``softmax(filter_logits(logits[s] / t, k, p))``."""
        temperature = torch.tensor([t for t, _, _ in options], dtype=logits.dtype).unsqueeze(-1)
        x = logits / temperature  # (S, V)
        vocab = x.shape[-1]
        if any(k is not None and k < vocab for _, k, _ in options):
            k = torch.tensor([min(k or vocab, vocab) for _, k, _ in options]).unsqueeze(-1)  # (S, 1)
            kth = x.sort(-1, descending=True).values.gather(-1, k - 1)  # the k-th largest score
            x = x.masked_fill(x < kth, -math.inf)
        if any(p is not None and p < 1 for _, _, p in options):
            p = torch.tensor([p if p is not None else 1.0 for _, _, p in options], dtype=x.dtype)
            probs, order = torch.softmax(x, -1).sort(-1, descending=True)
            before = probs.cumsum(-1) - probs  # mass of the more likely characters
            drop = (before >= p.unsqueeze(-1)) & (p < 1).unsqueeze(-1)  # the first is always kept
            x = x.masked_fill(torch.zeros_like(drop).scatter(-1, order, drop), -math.inf)
        return torch.softmax(x, -1)

    def sample(
        self,
        prime: str = "",
        length: int = 200,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int | None = 0,
    ) -> str:
        """The prime followed by ``length`` sampled characters (see :meth:`stream`)."""
        return prime + "".join(self.stream(prime, length, temperature, top_k, top_p, seed))

    @torch.no_grad()
    def cell_states(self, text: str) -> tuple[list[str], Tensor]:
        """The characters of ``text`` and the last layer's state after each (T, H): ``tanh(c)`` for
        LSTM-like cells (as Karpathy et al. 2015 show them), ``h`` for GRU-like ones."""
        if not text:
            raise DataError("TEXT: expected some text to colour, received an empty string")
        _, cells = self.model.step_states(torch.tensor(self.vocab.encode(list(text))))
        return list(text), torch.tanh(cells) if self.model.has_cell_state else cells
