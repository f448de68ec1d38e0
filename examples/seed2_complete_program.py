"""Seed 001, "pytorch- RNN循环神经网络" (PyTorch: recurrent neural networks), section 4, "完整代码" (the
complete program).

The seed's complete program, run on rnnlab: ``nn.RNN`` with 1 and 4 layers, ``nn.RNNCell`` looped over
time with 1 and 2 layers, ``nn.LSTM`` with 4 layers, ``nn.LSTMCell`` looped with 1 and 2 layers. It prints
the same module reprs and shapes as the seed, and checks each result against torch.nn given the same
weights: every torch.nn twin is loaded from the rnnlab module's ``state_dict`` with ``strict=True``, and the
two reprs must be equal too.

Dimension legend: T=10 time steps, B=3 batch, 100 input features, hidden sizes 20 and 30.

Run: ``python examples/seed2_complete_program.py`` (exits non-zero on any mismatch).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

import rnnlab.nn as rnn


def report(label: str, ours: Tensor, ref: Tensor, rows: list) -> None:
    """Print the largest difference, record it, then assert the tensors are equal within float tolerance."""
    diff = (ours - ref).abs().max().item()
    print(f"  {label:<30} rnnlab vs torch.nn: max |diff| = {diff:.1e}")
    rows.append((label, diff))
    torch.testing.assert_close(ours, ref)


def twins(name: str, **kwargs) -> tuple[nn.Module, nn.Module]:
    """``rnnlab.nn.<name>(**kwargs)`` and ``torch.nn.<name>(**kwargs)`` carrying the same weights."""
    ours = getattr(rnn, name)(**kwargs)
    ref = getattr(nn, name)(**kwargs)
    ref.load_state_dict(ours.state_dict(), strict=True)
    assert repr(ours) == repr(ref), f"repr differs: {ours!r} vs {ref!r}"
    return ours, ref


def main() -> list[tuple[str, float]]:
    rows: list[tuple[str, float]] = []
    torch.manual_seed(0)

    rnn1, rnn1_ref = twins("RNN", input_size=100, hidden_size=20, num_layers=1)
    print(rnn1)
    x = torch.randn(10, 3, 100)  # (T, B, 100)
    out, h = rnn1(x, torch.zeros(1, 3, 20))
    out_ref, h_ref = rnn1_ref(x, torch.zeros(1, 3, 20))
    print(" ", out.shape, h.shape)
    assert out.shape == (10, 3, 20) and h.shape == (1, 3, 20)
    report("RNN 1 layer: out", out, out_ref, rows)
    report("RNN 1 layer: h", h, h_ref, rows)

    rnn4, rnn4_ref = twins("RNN", input_size=100, hidden_size=20, num_layers=4)
    print(rnn4)
    x = torch.randn(10, 3, 100)  # (T, B, 100)
    out, h = rnn4(x, torch.zeros(4, 3, 20))
    out_ref, h_ref = rnn4_ref(x, torch.zeros(4, 3, 20))
    print(" ", out.shape, h.shape)
    assert out.shape == (10, 3, 20) and h.shape == (4, 3, 20)
    report("RNN 4 layers: out", out, out_ref, rows)
    report("RNN 4 layers: h", h, h_ref, rows)

    print("rnn by cell")
    cell1, cell1_ref = twins("RNNCell", input_size=100, hidden_size=20)
    h1 = h1_ref = torch.zeros(3, 20)  # (B, 20)
    for xt in x:  # xt: (B, 100), one time step
        h1 = cell1(xt, h1)
        h1_ref = cell1_ref(xt, h1_ref)
    print(" ", h1.shape)
    report("RNNCell loop: h1", h1, h1_ref, rows)

    # Two stacked cells: layer 1's hidden state (30 features) is layer 2's input.
    cell1, cell1_ref = twins("RNNCell", input_size=100, hidden_size=30)
    cell2, cell2_ref = twins("RNNCell", input_size=30, hidden_size=20)
    h1 = h1_ref = torch.zeros(3, 30)  # (B, 30)
    h2 = h2_ref = torch.zeros(3, 20)  # (B, 20)
    for xt in x:
        h1 = cell1(xt, h1)
        h2 = cell2(h1, h2)
        h1_ref = cell1_ref(xt, h1_ref)
        h2_ref = cell2_ref(h1_ref, h2_ref)
    print(" ", h2.shape)
    report("2 RNNCells loop: h2", h2, h2_ref, rows)

    print("Lstm")
    lstm, lstm_ref = twins("LSTM", input_size=100, hidden_size=20, num_layers=4)
    print(lstm)
    x = torch.randn(10, 3, 100)  # (T, B, 100)
    out, (h, c) = lstm(x)  # no state given: zeros, as in torch.nn
    out_ref, (h_ref, c_ref) = lstm_ref(x)
    print(" ", out.shape, h.shape, c.shape)
    assert out.shape == (10, 3, 20) and h.shape == c.shape == (4, 3, 20)
    report("LSTM 4 layers: out", out, out_ref, rows)
    report("LSTM 4 layers: h", h, h_ref, rows)
    report("LSTM 4 layers: c", c, c_ref, rows)

    # The seed passes the state as a list [h, c]; torch.nn accepts it, and so does rnnlab.
    print("one layer lstm")
    cell, cell_ref = twins("LSTMCell", input_size=100, hidden_size=20)
    h = h_ref = torch.zeros(3, 20)
    c = c_ref = torch.zeros(3, 20)
    for xt in x:
        h, c = cell(xt, [h, c])
        h_ref, c_ref = cell_ref(xt, [h_ref, c_ref])
    print(" ", h.shape, c.shape)
    report("LSTMCell loop: h", h, h_ref, rows)
    report("LSTMCell loop: c", c, c_ref, rows)

    print("two layer lstm")
    cell1, cell1_ref = twins("LSTMCell", input_size=100, hidden_size=30)
    cell2, cell2_ref = twins("LSTMCell", input_size=30, hidden_size=20)
    h1 = h1_ref = torch.zeros(3, 30)
    c1 = c1_ref = torch.zeros(3, 30)
    h2 = h2_ref = torch.zeros(3, 20)
    c2 = c2_ref = torch.zeros(3, 20)
    for xt in x:
        h1, c1 = cell1(xt, [h1, c1])
        h2, c2 = cell2(h1, [h2, c2])
        h1_ref, c1_ref = cell1_ref(xt, [h1_ref, c1_ref])
        h2_ref, c2_ref = cell2_ref(h1_ref, [h2_ref, c2_ref])
    print(" ", h2.shape, c2.shape)
    report("2 LSTMCells loop: h2", h2, h2_ref, rows)
    report("2 LSTMCells loop: c2", c2, c2_ref, rows)
    return rows


if __name__ == "__main__":
    main()
