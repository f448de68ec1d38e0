"""Seed 002, "【NLP】LSTM理解(Pytorch实现)" (understanding the LSTM, in PyTorch), part "手动实现" (by hand).

The seed writes a one-layer, one-direction LSTM by hand (``custom_lstm_function``, with ``torch.bmm`` and the
four gates sliced out of torch.nn's stacked weights) and checks it against ``nn.LSTM(batch_first=True)``
with ``torch.isclose``. Here four computations of the same LSTM must agree, all with the same weights:

1. ``rnnlab.nn.LSTM(batch_first=True)``;
2. ``torch.nn.LSTM(batch_first=True)`` loaded from its ``state_dict``;
3. the seed's ``custom_lstm_function``, kept as written except for the two fixes marked ``FIX``;
4. ``rnnlab.nn.functional.lstm`` (one time step, the equations rnnlab's layers run) stepped by hand.

Also, the gradients of rnnlab's LSTM must equal torch.nn's; in float64 the fixed seed function must match
rnnlab to double precision; and, with FIX 2, it must run with hidden_size == 1. The seed's gate names map
onto the equations of ``rnnlab.nn.functional.lstm``: its ``i_t, f_t, g_t, o_t`` are ``i, f, g, o`` there
(torch.nn's gate order).

Run: ``python examples/seed3_manual_lstm.py`` (exits non-zero on any mismatch).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

import rnnlab.nn as rnn


def report(label: str, ours: Tensor, ref: Tensor, rows: list, names: str = "rnnlab vs torch.nn") -> None:
    """Print the largest difference, record it, then assert the tensors are equal within float tolerance."""
    diff = (ours - ref).abs().max().item()
    print(f"  {label:<22} {names}: max |diff| = {diff:.1e}")
    rows.append((label, diff))
    torch.testing.assert_close(ours, ref)


# The seed's single-layer, single-direction LSTM. Its printed output (the parameter shapes), which the
# page pastes between two code cells, is not code and is left out.
def custom_lstm_function(input, init_state, w_ih, w_hh, b_ih, b_hh):
    """
    :param input: (batch_size, seq_len, input_size), batch first
    :param init_state: (h0, c0), each (batch_size, hidden_size)
    :param w_ih: W_ii,W_if,W_ig,W_io四个拼接起来的 (4*hidden_size,input_size)
    :param w_hh: W_hi,W_hf,W_hg,W_ho四个拼接起来的 (4*hidden_size,hidden_size)
    :param b_ih: 四个拼接起来的
    :param b_hh: 四个拼接起来的
    :return: output (batch_size, seq_len, hidden_size), (h_n, c_n) each (1, batch_size, hidden_size)
    """
    h0, c0 = init_state
    h_prev = h0
    c_prev = c0

    batch_size, seq_len, input_size = input.shape
    hidden_size = w_ih.shape[0] // 4
    # FIX 1: the seed's torch.zeros((batch_size, seq_len, hidden_size)) is always float32 on the CPU, so a
    # float64 input was silently rounded to float32 by the write below; new_zeros follows the input.
    output = input.new_zeros((batch_size, seq_len, hidden_size))

    # (4*hidden_size, input_size) -> (batch_size, 4*hidden_size, input_size)
    batch_w_ih = w_ih.unsqueeze(0).tile([batch_size, 1, 1])
    # (4*hidden_size, hidden_size) -> (batch_size, 4*hidden_size, hidden_size)
    batch_w_hh = w_hh.unsqueeze(0).tile([batch_size, 1, 1])

    for t in range(seq_len):
        x = input[:, t, :].unsqueeze(-1)  # (batch_size, input_size, 1)

        # (batch_size, 4*hidden_size, input_size) @ (batch_size, input_size, 1)
        #     -> (batch_size, 4*hidden_size, 1) -> (batch_size, 4*hidden_size)
        w_ih_times_x = torch.bmm(batch_w_ih, x).squeeze(-1)

        # (batch_size, 4*hidden_size, hidden_size) @ (batch_size, hidden_size, 1)
        #     -> (batch_size, 4*hidden_size, 1) -> (batch_size, 4*hidden_size)
        w_hh_times_prev_h = torch.bmm(batch_w_hh, h_prev.unsqueeze(-1)).squeeze(-1)

        # 输入门i_t, 遗忘门f_t, cell门g_t, 输出门o_t: each (batch_size, hidden_size)
        i_t = torch.sigmoid(
            w_ih_times_x[:, :hidden_size]
            + b_ih[:hidden_size]
            + w_hh_times_prev_h[:, :hidden_size]
            + b_hh[:hidden_size]
        )
        f_t = torch.sigmoid(
            w_ih_times_x[:, hidden_size : 2 * hidden_size]
            + b_ih[hidden_size : 2 * hidden_size]
            + w_hh_times_prev_h[:, hidden_size : 2 * hidden_size]
            + b_hh[hidden_size : 2 * hidden_size]
        )
        g_t = torch.tanh(
            w_ih_times_x[:, 2 * hidden_size : 3 * hidden_size]
            + b_ih[2 * hidden_size : 3 * hidden_size]
            + w_hh_times_prev_h[:, 2 * hidden_size : 3 * hidden_size]
            + b_hh[2 * hidden_size : 3 * hidden_size]
        )
        o_t = torch.sigmoid(
            w_ih_times_x[:, 3 * hidden_size :]
            + b_ih[3 * hidden_size :]
            + w_hh_times_prev_h[:, 3 * hidden_size :]
            + b_hh[3 * hidden_size :]
        )

        # FIX 2: the seed wrote c_prev.squeeze(-1), believing c_prev to be (batch_size, hidden_size, 1).
        # It is (batch_size, hidden_size) all along, so the squeeze did nothing, except when hidden_size == 1:
        # then it gave (batch_size,), f_t * c_prev broadcast (batch_size, 1) * (batch_size,) into a
        # (batch_size, batch_size) cell state, and the write into output failed (for batch_size > 1).
        c_prev = f_t * c_prev + i_t * g_t  # c_t
        h_prev = o_t * torch.tanh(c_prev)  # h_t

        output[:, t, :] = h_prev

    return output, (h_prev.unsqueeze(0), c_prev.unsqueeze(0))


def main() -> list[tuple[str, float]]:
    rows: list[tuple[str, float]] = []
    torch.manual_seed(0)

    batch_size, seq_len, input_size, hidden_size, num_layers = 2, 3, 4, 5, 1
    input_one = torch.randn(batch_size, seq_len, input_size)  # (B, T, H_in)
    # The seed keeps h0/c0 2-D, (B, H), for its function; the layers want (L, B, H): unsqueeze(0).
    h0 = torch.zeros(batch_size, hidden_size)  # (B, H)
    c0 = torch.zeros(batch_size, hidden_size)  # (B, H)

    lstm_layer = rnn.LSTM(
        input_size=input_size, hidden_size=hidden_size, num_layers=num_layers, batch_first=True
    )
    lstm_ref = nn.LSTM(
        input_size=input_size, hidden_size=hidden_size, num_layers=num_layers, batch_first=True
    )
    lstm_ref.load_state_dict(lstm_layer.state_dict(), strict=True)
    for k, v in lstm_layer.named_parameters():
        print(f"  {k} {tuple(v.shape)}")  # weight_ih_l0 (20, 4), weight_hh_l0 (20, 5), biases (20,)

    output_api, (h_n_api, c_n_api) = lstm_layer(input_one, (h0.unsqueeze(0), c0.unsqueeze(0)))
    output_ref, (h_n_ref, c_n_ref) = lstm_ref(input_one, (h0.unsqueeze(0), c0.unsqueeze(0)))
    print(f"  output {tuple(output_api.shape)}, h_n {tuple(h_n_api.shape)}, c_n {tuple(c_n_api.shape)}")
    assert output_api.shape == (2, 3, 5) and h_n_api.shape == c_n_api.shape == (1, 2, 5)
    report("output", output_api, output_ref, rows)
    report("h_n", h_n_api, h_n_ref, rows)
    report("c_n", c_n_api, c_n_ref, rows)

    weights = (lstm_layer.weight_ih_l0, lstm_layer.weight_hh_l0, lstm_layer.bias_ih_l0, lstm_layer.bias_hh_l0)
    custom_output, (custom_hn, custom_cn) = custom_lstm_function(input_one, (h0, c0), *weights)
    manual = "rnnlab vs the seed's custom_lstm_function"
    report("output", output_api, custom_output, rows, manual)
    report("h_n", h_n_api, custom_hn, rows, manual)
    report("c_n", c_n_api, custom_cn, rows, manual)

    # rnnlab.nn.functional.lstm is one time step: x_t (B, H_in), (h, c) each (B, H) -> (h, c).
    h, c = h0, c0
    outputs = []
    for x_t in input_one.unbind(dim=1):  # T x (B, H_in)
        h, c = rnn.functional.lstm(x_t, (h, c), *weights)
        outputs.append(h)
    stepped = torch.stack(outputs, dim=1)  # T x (B, H) -> (B, T, H)
    by_hand = "rnnlab.nn.LSTM vs functional.lstm stepped by hand"
    report("output", output_api, stepped, rows, by_hand)
    report("h_n", h_n_api[0], h, rows, by_hand)
    report("c_n", c_n_api[0], c, rows, by_hand)

    # Gradients: the same loss through both layers gives the same gradient for every weight.
    (output_api.sum() + c_n_api.sum()).backward()
    (output_ref.sum() + c_n_ref.sum()).backward()
    for (k, p), p_ref in zip(lstm_layer.named_parameters(), lstm_ref.parameters(), strict=True):
        report(f"grad {k}", p.grad, p_ref.grad, rows)

    # FIX 1 at work: in float64 the seed's function now stays in float64 and matches to double precision.
    lstm64 = rnn.LSTM(input_size, hidden_size, batch_first=True, dtype=torch.float64)
    lstm64.load_state_dict(lstm_layer.state_dict())
    x64 = input_one.double()
    h64 = (h0.double(), c0.double())
    out64, _ = lstm64(x64, (h64[0].unsqueeze(0), h64[1].unsqueeze(0)))
    custom64, _ = custom_lstm_function(x64, h64, *lstm64.parameters())
    assert custom64.dtype == torch.float64
    report("output, float64", out64, custom64, rows, manual)

    # FIX 2 at work: hidden_size == 1, where the seed's squeeze(-1) broke the cell state.
    lstm1 = rnn.LSTM(input_size, 1, batch_first=True)
    out1, _ = lstm1(input_one)  # zero initial state
    zeros = torch.zeros(batch_size, 1)  # (B, 1)
    custom1, _ = custom_lstm_function(input_one, (zeros, zeros), *lstm1.parameters())
    report("output, hidden_size=1", out1, custom1, rows, manual)
    return rows


if __name__ == "__main__":
    main()
