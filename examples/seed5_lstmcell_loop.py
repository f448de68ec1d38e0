"""Seed 004, "LSMT層" (sic: LSTM layers): the ``LSTMCell`` part, a cell looped over time into ``output``.

The seed steps ``nn.LSTMCell(10, 20)`` over a (2, 3, 10) input from a random (hx, cx), appends each ``hx``
and stacks them: "相当于LSTM中的out", the same as an LSTM's ``out``. Here that claim is checked three ways,
all with the cell's weights:

1. the loop with ``rnnlab.nn.LSTMCell`` vs the same loop with ``torch.nn.LSTMCell``;
2. the loop vs ``rnnlab.nn.LSTM(10, 20)`` run on the whole sequence at once, loaded from the cell's
   ``state_dict`` with its keys renamed ``weight_ih -> weight_ih_l0`` (and so on): a one-layer LSTM is the
   cell plus a loop over time;
3. the same renamed weights in ``torch.nn.LSTM``.

Dimension legend: T=2 time steps, B=3 batch, 10 input features, H=20 hidden.

Run: ``python examples/seed5_lstmcell_loop.py`` (exits non-zero on any mismatch).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

import rnnlab.nn as rnn


def report(label: str, ours: Tensor, ref: Tensor, rows: list, names: str = "rnnlab vs torch.nn") -> None:
    """Print the largest difference, record it, then assert the tensors are equal within float tolerance."""
    diff = (ours - ref).abs().max().item()
    print(f"  {label:<18} {names}: max |diff| = {diff:.1e}")
    rows.append((label, diff))
    torch.testing.assert_close(ours, ref)


def cell_loop(cell: nn.Module, input: Tensor, hx: Tensor, cx: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The seed's loop: input (T, B, 10), hx/cx (B, 20) -> output (T, B, 20), final hx, cx."""
    output = []
    # 從輸入的第一個維度也就是seq_len上遍歷,每循環一次,輸入一個單詞 (one word per step along seq_len)
    for i in range(input.size()[0]):
        hx, cx = cell(input[i], (hx, cx))  # input[i]: (B, 10)
        output.append(hx)  # 相當于LSTM中的out
    output = torch.stack(output, dim=0)  # T x (B, 20) -> (T, B, 20)
    return output, hx, cx


def main() -> list[tuple[str, float]]:
    rows: list[tuple[str, float]] = []
    torch.manual_seed(0)

    # The seed names its cell `rnn`; that would shadow `import rnnlab.nn as rnn`, so here it is `lstm_cell`.
    lstm_cell = rnn.LSTMCell(10, 20)  # (input_size, hidden_size)
    cell_ref = nn.LSTMCell(10, 20)
    cell_ref.load_state_dict(lstm_cell.state_dict(), strict=True)
    input = torch.randn(2, 3, 10)  # (time_steps, batch, input_size)
    hx = torch.randn(3, 20)  # (batch, hidden_size)
    cx = torch.randn(3, 20)

    output, hx_n, cx_n = cell_loop(lstm_cell, input, hx, cx)
    output_ref, hx_ref, cx_ref = cell_loop(cell_ref, input, hx, cx)
    print(f"  output {tuple(output.shape)}, hx {tuple(hx_n.shape)}, cx {tuple(cx_n.shape)}")
    assert output.shape == (2, 3, 20) and hx_n.shape == cx_n.shape == (3, 20)
    report("cell loop output", output, output_ref, rows)
    report("cell loop hx", hx_n, hx_ref, rows)
    report("cell loop cx", cx_n, cx_ref, rows)

    # The cell's parameters are a one-layer LSTM's layer-0 parameters under other names.
    renamed = {
        f"{key}_l0": value for key, value in lstm_cell.state_dict().items()
    }  # weight_ih -> weight_ih_l0
    lstm = rnn.LSTM(10, 20)
    lstm.load_state_dict(renamed, strict=True)
    lstm_ref = nn.LSTM(10, 20)
    lstm_ref.load_state_dict(renamed, strict=True)
    state = (hx.unsqueeze(0), cx.unsqueeze(0))  # (B, H) -> (L=1, B, H)
    out, (h_n, c_n) = lstm(input, state)
    out_ref, (h_n_ref, c_n_ref) = lstm_ref(input, state)

    layer = "cell loop vs rnnlab.nn.LSTM"
    report("output", output, out, rows, layer)
    report("hx vs h_n[0]", hx_n, h_n[0], rows, layer)
    report("cx vs c_n[0]", cx_n, c_n[0], rows, layer)
    report("LSTM output", out, out_ref, rows)
    report("LSTM h_n", h_n, h_n_ref, rows)
    report("LSTM c_n", c_n, c_n_ref, rows)
    return rows


if __name__ == "__main__":
    main()
