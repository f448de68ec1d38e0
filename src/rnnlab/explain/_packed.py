"""``packed("GRU", [3, 1, 2])``: which steps of a packed batch are computed, and proof that padding is not.

The grid is read from the ``PackedSequence`` itself (its ``batch_sizes`` and ``sorted_indices``), not from
the lengths: at step ``t`` the layer runs on the first ``batch_sizes[t]`` sequences in ``sorted_indices``
order. Three checks follow, each on the real layer:

1. the padding is filled with NaN before packing, and no NaN reaches the output or ``h_n``;
2. each sequence's ``h_n`` from the packed run equals that sequence run alone on its own length;
3. without packing, the shorter sequences' ``h_n`` differ: there the padding *was* computed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence

import rnnlab.nn as rnn

__all__ = ["PackedExplanation", "packed"]

TOLERANCE = 1e-6  # the same float32 arithmetic on the same numbers: packed and alone agree to rounding


@dataclass
class PackedExplanation:
    """What :func:`packed` returns; ``print`` it."""

    lengths: list[int]
    computed: list[list[bool]]  # (B, T): True where the layer ran a step
    batch_sizes: list[int]
    sorted_indices: list[int]
    finite: bool  # no NaN from the NaN-filled padding reached the output or the final state
    alone_difference: list[float]  # per sequence: packed h_n against the sequence run alone
    unpacked_difference: list[float]  # per sequence: h_n of a plain (padding computed) run against alone
    lines: list[str] = field(repr=False, default_factory=list)

    @property
    def matches(self) -> bool:
        return self.finite and max(self.alone_difference) <= TOLERANCE

    def __str__(self) -> str:
        return "\n".join(self.lines)


def _final_h(state: Tensor | tuple[Tensor, Tensor]) -> Tensor:
    return state[0] if isinstance(state, tuple) else state  # (D*L, B, H)


def packed(
    mode: str,
    lengths: Sequence[int],
    input_size: int = 2,
    hidden_size: int = 3,
    seed: int = 0,
    nonlinearity: str = "tanh",
) -> PackedExplanation:
    """Run ``rnnlab.nn.<mode>(input_size, hidden_size)`` on a packed batch of sequences of ``lengths``.

    Args:
        mode: ``"LSTM"``, ``"GRU"`` or ``"RNN"``.
        lengths: one positive length per sequence, in any order, e.g. ``[3, 1, 2]``.
    """
    if mode not in ("LSTM", "GRU", "RNN"):
        raise ValueError(f"packed: mode must be 'LSTM', 'GRU' or 'RNN', got {mode!r}")
    lengths = [int(n) for n in lengths]
    if not lengths or min(lengths) < 1:
        raise ValueError(f"packed: lengths must be positive, one per sequence; got {lengths}")
    B, T = len(lengths), max(lengths)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        kwargs = {"nonlinearity": nonlinearity} if mode == "RNN" else {}
        layer: nn.Module = getattr(rnn, mode)(input_size, hidden_size, **kwargs)
        x = torch.randn(T, B, input_size)  # (T, B, H_in)
    real = torch.arange(T)[:, None] < torch.tensor(lengths)[None, :]  # (T, B): True at real steps
    poisoned = x.masked_fill(~real[:, :, None], float("nan"))  # (T, B, H_in): NaN wherever padding is
    with torch.no_grad():
        packed_x = pack_padded_sequence(poisoned, torch.tensor(lengths), enforce_sorted=False)
        packed_out, state = layer(packed_x)
        h_packed = _final_h(state)[0]  # (B, H): rows in the caller's order
        h_alone = torch.stack([_final_h(layer(x[:n, b])[1])[0] for b, n in enumerate(lengths)])  # (B, H)
        _, plain_state = layer(x.masked_fill(~real[:, :, None], 0.0))  # padding as zeros, and computed
        h_plain = _final_h(plain_state)[0]  # (B, H)
    finite = bool(torch.isfinite(packed_out.data).all() and torch.isfinite(h_packed).all())
    batch_sizes = packed_x.batch_sizes.tolist()
    order = packed_x.sorted_indices.tolist()
    computed = [[False] * T for _ in range(B)]
    for t, size in enumerate(batch_sizes):
        for b in order[:size]:
            computed[b][t] = True
    alone = (h_packed - h_alone).abs().amax(dim=1).tolist()
    plain = (h_plain - h_alone).abs().amax(dim=1).tolist()

    width = len(str(T - 1)) + 1
    label = len(f"sequence {B - 1}")
    lines = [
        f"{mode}: a packed batch of {B} sequences of lengths {', '.join(map(str, lengths))} "
        f"(B = {B}, T = {T}), rnnlab.nn.{layer!r}, seed {seed}",
        "",
        f"{'step t':<{label}}  " + "".join(f"{t:>{width}}" for t in range(T)),
    ]
    for b in range(B):
        marks = "".join(f"{'#' if done else '.':>{width}}" for done in computed[b])
        lines.append(f"{f'sequence {b}':<{label}}  {marks}    length {lengths[b]}")
    lines += [
        "(# = a step the layer computed, . = padding, never computed)",
        "",
        f"the PackedSequence: batch_sizes = {batch_sizes}, sorted_indices = {order}",
        "(the sequences sorted longest first; at step t the layer runs on the first batch_sizes[t] of them)",
    ]
    for t, size in enumerate(batch_sizes):
        who = ", ".join(str(b) for b in order[:size])
        lines.append(f"  step {t}: a batch of {size}, sequence{'s' if size > 1 else ''} {who}")
    lines += [
        "",
        "padding filled with NaN before packing: "
        + (
            "no NaN in the output or h_n, so no padding entered a step"
            if finite
            else "NaN REACHED THE OUTPUT"
        ),
        "h_n of the packed run against each sequence run alone on its own length:",
    ]
    lines += [
        f"  sequence {b} ({n} step{'s' if n > 1 else ''}): max |difference| = {alone[b]:.2e}"
        for b, n in enumerate(lengths)
    ]
    shorter = [b for b, n in enumerate(lengths) if n < T]
    if shorter:
        lines.append(
            f"without packing (padding as zeros, run for all {T} steps), h_n of the shorter ones differs:"
        )
        lines += [f"  sequence {b}: max |difference| = {plain[b]:.2e}" for b in shorter]
    verdict = "matches" if finite and max(alone) <= TOLERANCE else "DOES NOT match"
    lines.append(f"packed run {verdict} each sequence run alone: max |difference| = {max(alone):.2e}")
    return PackedExplanation(lengths, computed, batch_sizes, order, finite, alone, plain, lines)
