"""Seed 000, "RNN LSTM GRU ATT等模型 学习笔记" (study notes on RNN, LSTM, GRU, attention), section 7's code.

The note calls ``nn.RNN``, ``nn.LSTM`` and ``nn.GRU`` on tiny inputs, shows ``torch.bmm`` and defines an
``Attn`` module (the attention of PyTorch's classic seq2seq tutorial). Here the same calls run on rnnlab,
and every number is checked against torch.nn with the same weights:

* the recurrent layers are built twice under the same ``torch.manual_seed``, once from ``rnnlab.nn`` and
  once from ``torch.nn``: the weights must come out identical (same init, same parameter order), and so
  must outputs and final states;
* ``rnn.Attn`` is compared with a literal copy of the seed's class (``SeedAttn`` below, the seed's own
  code) after loading rnnlab's weights into it with ``load_state_dict(strict=True)``.

Run: ``python examples/seed1_rnn_lstm_gru_attn.py`` (exits non-zero on any mismatch).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import rnnlab.nn as rnn


def report(label: str, ours: Tensor, ref: Tensor, rows: list, against: str = "torch.nn") -> None:
    """Print the largest difference, record it, then assert the tensors are equal within float tolerance."""
    diff = (ours - ref).abs().max().item()
    print(f"  {label:<26} rnnlab vs {against}: max |diff| = {diff:.1e}")
    rows.append((label, diff))
    torch.testing.assert_close(ours, ref)


def twins(name: str, *args, seed: int) -> tuple[nn.Module, nn.Module]:
    """Build ``rnnlab.nn.<name>(*args)`` and ``torch.nn.<name>(*args)`` under the same seed."""
    torch.manual_seed(seed)
    ours = getattr(rnn, name)(*args)
    torch.manual_seed(seed)
    ref = getattr(nn, name)(*args)
    for (k, p), (k_ref, p_ref) in zip(ours.named_parameters(), ref.named_parameters(), strict=True):
        assert k == k_ref, f"parameter order differs: {k} vs {k_ref}"
        assert torch.equal(p, p_ref), f"{name}.{k}: init under the same seed differs"
    n = len(list(ours.parameters()))
    print(f"  torch.manual_seed({seed}): the same {n} parameters (names, order, values) as torch.nn")
    return ours, ref


class SeedAttn(nn.Module):
    """The seed's ``Attn`` as written, the reference (comments trimmed, ``super().__init__()`` modernized)."""

    def __init__(self, query_size, key_size, value_size1, value_size2, output_size):
        super().__init__()
        self.query_size = query_size
        self.key_size = key_size
        self.value_size1 = value_size1
        self.value_size2 = value_size2
        self.output_size = output_size
        self.attn = nn.Linear(self.query_size + self.key_size, self.value_size1)
        self.attn_combine = nn.Linear(self.query_size + self.value_size2, self.output_size)

    def forward(self, Q, K, V):
        attn_weights = F.softmax(self.attn(torch.cat((Q[0], K[0]), 1)), dim=1)
        attn_applied = torch.bmm(attn_weights.unsqueeze(0), V)
        output = torch.cat((Q[0], attn_applied[0]), 1)
        output = self.attn_combine(output).unsqueeze(0)
        return output, attn_weights


def main() -> list[tuple[str, float]]:
    rows: list[tuple[str, float]] = []
    torch.manual_seed(0)

    # The seed's comments call input1's dims "batch 1, sequence_length 3"; with batch_first=False (the
    # default, as here) (1, 3, 5) is really T=1 step for a batch of B=3, and h0 (1, 3, 6) is (L, B, H).
    print("nn.RNN(5, 6, 1)")
    ours, ref = twins("RNN", 5, 6, 1, seed=1)
    input1 = torch.randn(1, 3, 5)  # (T, B, H_in)
    h0 = torch.randn(1, 3, 6)  # (L, B, H)
    output, hn = ours(input1, h0)
    output_ref, hn_ref = ref(input1, h0)
    report("RNN output (1, 3, 6)", output, output_ref, rows)
    report("RNN h_n (1, 3, 6)", hn, hn_ref, rows)

    print("nn.LSTM(5, 6, 2)")
    ours, ref = twins("LSTM", 5, 6, 2, seed=2)
    input1 = torch.randn(1, 3, 5)  # (T, B, H_in)
    h0 = torch.randn(2, 3, 6)  # (L, B, H)
    c0 = torch.randn(2, 3, 6)  # (L, B, H)
    output, (hn, cn) = ours(input1, (h0, c0))
    output_ref, (hn_ref, cn_ref) = ref(input1, (h0, c0))
    assert output.shape == (1, 3, 6) and hn.shape == cn.shape == (2, 3, 6)
    report("LSTM output (1, 3, 6)", output, output_ref, rows)
    report("LSTM h_n (2, 3, 6)", hn, hn_ref, rows)
    report("LSTM c_n (2, 3, 6)", cn, cn_ref, rows)

    print("nn.GRU(5, 6, 2)")
    ours, ref = twins("GRU", 5, 6, 2, seed=3)
    input1 = torch.randn(1, 3, 5)  # (T, B, H_in)
    h0 = torch.randn(2, 3, 6)  # (L, B, H)
    output, hn = ours(input1, h0)
    output_ref, hn_ref = ref(input1, h0)
    assert output.shape == (1, 3, 6) and hn.shape == (2, 3, 6)
    report("GRU output (1, 3, 6)", output, output_ref, rows)
    report("GRU h_n (2, 3, 6)", hn, hn_ref, rows)

    # torch.bmm, as the seed shows it: a batch of 10 matrix products.
    res = torch.bmm(torch.randn(10, 3, 4), torch.randn(10, 4, 5))  # (10, 3, 4) @ (10, 4, 5) -> (10, 3, 5)
    assert res.shape == (10, 3, 5)

    # Attn with the seed's sizes. Its weights are a linear map of [Q; K] onto value_size1 = 32 FIXED slots
    # (they never look at V): position-based attention, as in the seq2seq tutorial it comes from.
    print("Attn(32, 32, 32, 64, 64)")
    attn = rnn.Attn(32, 32, 32, 64, 64)
    attn_ref = SeedAttn(32, 32, 32, 64, 64)
    attn_ref.load_state_dict(attn.state_dict(), strict=True)  # same names: attn.*, attn_combine.*
    Q = torch.randn(1, 1, 32)  # (1, N, query_size)
    K = torch.randn(1, 1, 32)  # (1, N, key_size)
    V = torch.randn(1, 32, 64)  # (1, value_size1, value_size2)
    output, weights = attn(Q, K, V)
    output_ref, weights_ref = attn_ref(Q, K, V)
    print(f"  output {tuple(output.shape)}, weights {tuple(weights.shape)}  (the seed prints these two)")
    assert output.shape == (1, 1, 64) and weights.shape == (1, 32)
    report("Attn output (1, 1, 64)", output, output_ref, rows, against="the seed's Attn")
    report("Attn weights (1, 32)", weights, weights_ref, rows, against="the seed's Attn")
    return rows


if __name__ == "__main__":
    main()
