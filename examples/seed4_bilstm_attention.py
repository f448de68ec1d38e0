"""Seed 003, "使用注意力机制可以让你的模型更加灵活,但是需要额外的计算资源。rnn lstm bilstm attension"
(attention makes a model more flexible but costs extra compute: RNN, LSTM, BiLSTM, attention).

The seed runs a 2-layer bidirectional LSTM over a (10, 32, 50) batch and pools its outputs with a small
attention module. Here:

* rnnlab's bidirectional LSTM is checked against torch.nn's, both built under the same seed: output
  (10, 32, 200), h_n and c_n (4, 32, 100);
* the seed's ``Attention`` class is kept (as ``SeedAttention``) with only its two typos fixed, to show what
  it really computes: weights normalized over the *batch*, then a ``bmm`` that fails (see the notes below);
* the intended computation, attention pooling over time, is done with ``rnn.AttentionPooling`` and checked
  against a hand-written version of it (``intended_attention``) with the same weights, with and without a
  padding mask.

What is wrong in the seed's attention, and what it meant:

1. ``math.sqrt`` is used but ``math`` is never imported (NameError in ``__init__``).
2. ``forward`` returns ``F.softmax(attn_ennrgies, ...)``, a typo for ``attn_energies`` (NameError).
3. ``score`` is commented for batch-first ``encoder_outputs`` (batch, seq_len, 2H), but the LSTM is
   sequence-first, (seq_len, batch, 2H). So ``energy.transpose(1, 2)`` is (seq_len, H, batch) and
   ``self.v.repeat(encoder_outputs.size(0), 1)`` repeats ``v`` seq_len times, not batch times. The ``bmm``
   happens to accept these shapes and gives scores (seq_len, batch), and ``softmax(dim=1)`` then normalizes
   each time step's scores *across the 32 sentences of the batch* instead of across the 10 time steps of
   each sentence. Returned weights: (seq_len, 1, batch) instead of (batch, 1, seq_len).
4. ``torch.bmm(attn_weights, output.permute(1, 2, 0))`` multiplies (10, 1, 32) by (32, 200, 10) and raises.
   The comment's intent, (batch, 1, seq_len) @ (batch, seq_len, 2H), needs ``output.permute(1, 0, 2)``.
5. ``hidden`` is passed but never used, so no query enters the scores (the template this comes from
   concatenated the decoder state with each encoder output; here ``nn.Linear(hidden_size * 2, ...)`` is
   fed the BiLSTM's 2H-wide outputs alone). And ``hidden[-1]`` is not (batch, 2 * hidden_size) as the
   comment says: it is (batch, hidden_size), the top layer's *backward* direction only.

With no query, the intended computation is attention pooling (Yang et al. 2016), with ``v`` as the learned
query: for each sentence, over its time steps t,

    e_t = v^T tanh(W h_t + b),    alpha = softmax_t(e),    context = sum_t alpha_t h_t    # (B, 2H)

which is exactly ``rnn.AttentionPooling(2H, H)``; its ``W`` and ``v`` have the seed module's shapes and
init distributions. (For attention that does use a query, see ``rnn.AdditiveAttention``.)

Run: ``python examples/seed4_bilstm_attention.py`` (exits non-zero on any mismatch).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import rnnlab.nn as rnn


def report(label: str, ours: Tensor, ref: Tensor, rows: list, names: str = "rnnlab vs torch.nn") -> None:
    """Print the largest difference, record it, then assert the tensors are equal within float tolerance."""
    diff = (ours - ref).abs().max().item()
    print(f"  {label:<26} {names}: max |diff| = {diff:.1e}")
    rows.append((label, diff))
    torch.testing.assert_close(ours, ref)


class SeedAttention(nn.Module):
    """The seed's ``Attention`` with only bugs 1 and 2 fixed (``import math`` above, ``attn_energies``); its
    comments are replaced by the true shapes and ``super().__init__()`` is modernized."""

    def __init__(self, hidden_size):
        super().__init__()
        self.hidden_size = hidden_size
        self.attn = nn.Linear(hidden_size * 2, hidden_size)
        self.v = nn.Parameter(torch.rand(hidden_size))
        stdv = 1.0 / math.sqrt(self.v.size(0))
        self.v.data.uniform_(-stdv, stdv)

    def forward(self, hidden, encoder_outputs):
        attn_energies = self.score(hidden, encoder_outputs)
        return F.softmax(attn_energies, dim=1).unsqueeze(1)

    def score(self, hidden, encoder_outputs):
        energy = torch.tanh(self.attn(encoder_outputs))  # (T, B, H): encoder_outputs is sequence-first
        energy = energy.transpose(1, 2)  # (T, H, B), not the (B, H, T) the seed expected
        v = self.v.repeat(encoder_outputs.size(0), 1).unsqueeze(1)  # (T, 1, H), not (B, 1, H)
        attn_energies = torch.bmm(v, energy)  # (T, 1, H) @ (T, H, B) -> (T, 1, B)
        return attn_energies.squeeze(1)  # (T, B)


def intended_attention(encoder_outputs, W, b, v, mask=None):
    """The seed's attention as meant, by hand: pool (T, B, 2H) outputs over time -> context (B, 2H), weights
    (B, T). ``W`` (H, 2H), ``b`` (H,), ``v`` (H,); ``mask`` (B, T) bool, True = a real (not padded) step."""
    outputs = encoder_outputs.transpose(0, 1)  # (T, B, 2H) -> (B, T, 2H)
    energy = torch.tanh(outputs @ W.T + b)  # (B, T, H)
    scores = energy @ v  # (B, T, H) @ (H,) -> (B, T)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))  # padded steps get exp(-inf) = 0
    weights = torch.softmax(scores, dim=1)  # over time, within each sentence
    context = torch.bmm(weights.unsqueeze(1), outputs).squeeze(1)  # (B, 1, T) @ (B, T, 2H) -> (B, 2H)
    return context, weights


def main() -> list[tuple[str, float]]:
    rows: list[tuple[str, float]] = []
    seq_len, batch_size, input_size, hidden_size, num_layers = 10, 32, 50, 100, 2

    torch.manual_seed(0)
    X = torch.randn(seq_len, batch_size, input_size)  # (T, B, 50)
    torch.manual_seed(1)
    lstm = rnn.LSTM(input_size, hidden_size, num_layers, bidirectional=True)
    torch.manual_seed(1)
    lstm_ref = nn.LSTM(input_size, hidden_size, num_layers, bidirectional=True)
    for p, p_ref in zip(lstm.parameters(), lstm_ref.parameters(), strict=True):
        assert torch.equal(p, p_ref), "BiLSTM init under the same seed differs"

    output, (hidden, cell) = lstm(X)
    output_ref, (hidden_ref, cell_ref) = lstm_ref(X)
    print(f"  BiLSTM output {tuple(output.shape)}, h_n {tuple(hidden.shape)}, c_n {tuple(cell.shape)}")
    assert output.shape == (10, 32, 200) and hidden.shape == cell.shape == (4, 32, 100)
    report("BiLSTM output", output, output_ref, rows)
    report("BiLSTM h_n", hidden, hidden_ref, rows)
    report("BiLSTM c_n", cell, cell_ref, rows)
    # Rows of h_n are layer * 2 + direction: hidden[-2] is the top layer's forward state, which ends at the
    # last step; hidden[-1] its backward state, which ends at step 0 (bug 5: (B, H), not (B, 2H)).
    torch.testing.assert_close(hidden[-2], output[-1, :, :hidden_size])
    torch.testing.assert_close(hidden[-1], output[0, :, hidden_size:])

    # What the seed's module really computes (bugs 3 and 4).
    torch.manual_seed(2)
    seed_attention = SeedAttention(hidden_size)
    hidden_state = hidden[-1]  # (B, H), unused by the module anyway
    seed_weights = seed_attention(hidden_state, output)
    assert seed_weights.shape == (seq_len, 1, batch_size)  # (T, 1, B): one distribution per time step...
    torch.testing.assert_close(seed_weights.sum(dim=2), torch.ones(seq_len, 1))  # ...over the batch
    try:
        torch.bmm(seed_weights, output.permute(1, 2, 0))
    except RuntimeError:
        print("  the seed's attention: weights (10, 1, 32) sum to 1 over the batch; its final bmm raises")
    else:
        raise AssertionError("the seed's bmm((10, 1, 32), (32, 200, 10)) was expected to raise")

    # The intended computation, with the seed module's weights loaded into AttentionPooling.
    pool = rnn.AttentionPooling(2 * hidden_size, hidden_size)
    state = {
        "W.weight": seed_attention.attn.weight,
        "W.bias": seed_attention.attn.bias,
        "v": seed_attention.v,
    }
    pool.load_state_dict(state, strict=True)
    W, b, v = seed_attention.attn.weight, seed_attention.attn.bias, seed_attention.v

    final_output, weights = pool(output.transpose(0, 1))  # (T, B, 2H) -> (B, T, 2H) -> (B, 2H), (B, T)
    final_ref, weights_ref = intended_attention(output_ref, W, b, v)
    print(f"  AttentionPooling: context {tuple(final_output.shape)}, weights {tuple(weights.shape)}")
    assert final_output.shape == (32, 200) and weights.shape == (32, 10)
    by_hand = "rnnlab vs torch.nn + hand-written"
    report("pooled context", final_output, final_ref, rows, by_hand)
    report("pooling weights", weights, weights_ref, rows, by_hand)
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(batch_size))  # over time, this time

    # Padded sentences: lengths 1..10; padded steps must get exactly zero weight.
    lengths = torch.randint(1, seq_len + 1, (batch_size,))
    mask = torch.arange(seq_len) < lengths[:, None]  # (B, T), True = real step
    final_output, weights = pool(output.transpose(0, 1), lengths=lengths)
    final_ref, weights_ref = intended_attention(output_ref, W, b, v, mask)
    report("pooled context, masked", final_output, final_ref, rows, by_hand)
    report("pooling weights, masked", weights, weights_ref, rows, by_hand)
    assert torch.all(weights[~mask] == 0), "padded steps must get exactly zero weight"
    return rows


if __name__ == "__main__":
    main()
