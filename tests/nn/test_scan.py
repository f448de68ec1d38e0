"""Tests for rnnlab.nn.scan: minGRU / minLSTM and the chunked scan.

The ladder: the scan against its loop, for every way T splits into chunks; each model's parallel form
against its sequential form (float64, T up to 512, with the input's gradient); hand-computed values;
stepping with carried state against one full pass; gradcheck in float64; errors that name the argument;
the sequential form reads its input a fixed number of times, so its backward is linear in T.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn.utils.rnn import pack_sequence
from torch.testing import assert_close

from rnnlab.nn.scan import MinGRU, MinGRUCell, MinLSTM, MinLSTMCell, g, log_g, parallel_scan_log

CELLS = [MinGRUCell, MinLSTMCell]
MODELS = [MinGRU, MinLSTM]


def test_g_is_positive_continuous_and_log_g_is_its_log():
    x = torch.linspace(-30, 30, 6001, dtype=torch.float64)
    assert (g(x) > 0).all()
    assert g(torch.tensor(0.0)) == 0.5
    assert_close(
        g(torch.tensor([-1e-9, 1e-9], dtype=torch.float64)), torch.full((2,), 0.5, dtype=torch.float64)
    )
    assert_close(g(torch.tensor([2.0, -2.0])), torch.tensor([2.5, torch.sigmoid(torch.tensor(-2.0)).item()]))
    assert_close(log_g(x), torch.log(g(x)))


def test_g_gives_exactly_the_numbers_of_its_two_branches():
    for dtype in (torch.float32, torch.float64):
        x = torch.cat(
            [torch.linspace(-30, 30, 6001, dtype=dtype), torch.tensor([0.0, -1e-30, 1e-30], dtype=dtype)]
        )
        assert torch.equal(g(x), torch.where(x >= 0, x + 0.5, torch.sigmoid(x)))


def test_log_g_has_finite_gradients_everywhere():
    x = torch.tensor([-50.0, -1.0, 0.0, 1.0, 50.0], requires_grad=True)
    log_g(x).sum().backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("T", [1, 7, 256])
@pytest.mark.parametrize("with_h0", [False, True])
def test_parallel_scan_log_equals_the_loop(T, with_h0):
    torch.manual_seed(0)
    B, H = 3, 4
    log_a = -torch.rand(B, T, H, dtype=torch.float64) * 0.5  # a in (0.6, 1]
    log_b = torch.randn(B, T, H, dtype=torch.float64)
    h0 = torch.randn(B, H, dtype=torch.float64) if with_h0 else None  # any sign: h0 stays out of the logs
    h = torch.zeros(B, H, dtype=torch.float64) if h0 is None else h0
    expected = []
    for t in range(T):
        h = log_a[:, t].exp() * h + log_b[:, t].exp()
        expected.append(h)
    assert_close(parallel_scan_log(log_a, log_b, h0), torch.stack(expected, dim=1), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 4, 5, 9, 10, 11, 64])
def test_parallel_scan_log_equals_the_loop_for_every_chunk_size(chunk_size):
    # T = 10: chunks with a tail (3, 4), without (2, 5, 10), one step each (1), none at all (11, 64)
    torch.manual_seed(0)
    B, T, H = 2, 10, 3
    log_a = -torch.rand(B, T, H, dtype=torch.float64)
    log_b = torch.randn(B, T, H, dtype=torch.float64)
    h0 = torch.randn(B, H, dtype=torch.float64)
    h, expected = h0, []
    for t in range(T):
        h = log_a[:, t].exp() * h + log_b[:, t].exp()
        expected.append(h)
    got = parallel_scan_log(log_a, log_b, h0, chunk_size=chunk_size)
    assert_close(got, torch.stack(expected, dim=1), rtol=1e-12, atol=1e-12)


def test_parallel_scan_log_is_finite_at_extreme_gates_in_float32():
    # a = 1/2, b = 1: h_t -> 2. A plain cumsum of b_t / (a_1 ... a_t), with 2^t in it, would overflow after
    # 128 steps; the chunked scan only forms products of up to C gates.
    h = parallel_scan_log(torch.full((1, 4096, 2), math.log(0.5)), torch.zeros(1, 4096, 2))
    assert_close(h[:, -1], torch.full((1, 2), 2.0))
    # a = e^-200 = 0 in float32: every product of gates underflows to 0 and h_t = b_t = 1, whatever h0.
    h = parallel_scan_log(torch.full((1, 300, 2), -200.0), torch.zeros(1, 300, 2), torch.full((1, 2), 1e30))
    assert torch.equal(h, torch.ones(1, 300, 2))


def test_parallel_scan_log_of_an_empty_sequence_is_empty():
    assert parallel_scan_log(torch.zeros(2, 0, 3), torch.zeros(2, 0, 3)).shape == (2, 0, 3)


def test_parallel_scan_log_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="log_a and log_b"):
        parallel_scan_log(torch.zeros(2, 3, 4), torch.zeros(2, 3, 5))
    with pytest.raises(ValueError, match=r"h0 must have shape \(2, 4\)"):
        parallel_scan_log(torch.zeros(2, 3, 4), torch.zeros(2, 3, 4), torch.zeros(4))
    with pytest.raises(ValueError, match="chunk_size"):
        parallel_scan_log(torch.zeros(2, 3, 4), torch.zeros(2, 3, 4), chunk_size=0)


@pytest.mark.parametrize("cell_cls", CELLS)
@pytest.mark.parametrize("T", [1, 5, 256])
@pytest.mark.parametrize("with_h0", [False, True])
def test_cell_parallel_equals_sequential_float64(cell_cls, T, with_h0):
    torch.manual_seed(1)
    cell = cell_cls(5, 6).double()
    x = torch.randn(2, T, 5, dtype=torch.float64) * 3  # large enough to use both branches of g
    h0 = torch.randn(2, 6, dtype=torch.float64) if with_h0 else None
    assert_close(cell.parallel(x, h0), cell.sequential(x, h0), rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("cell_cls", CELLS)
@pytest.mark.parametrize("chunk_size", [1, 3, 4, 11, 12])
def test_cell_parallel_equals_sequential_for_every_chunk_size(cell_cls, chunk_size):
    torch.manual_seed(1)
    cell = cell_cls(5, 6).double()
    x = torch.randn(3, 11, 5, dtype=torch.float64) * 3
    h0 = torch.randn(3, 6, dtype=torch.float64)
    assert_close(cell.parallel(x, h0, chunk_size=chunk_size), cell.sequential(x, h0), rtol=1e-9, atol=1e-10)
    with pytest.raises(ValueError, match="chunk_size"):
        cell.parallel(x, chunk_size=0)


def _uses_of(leaf, output):
    """How many autograd nodes read ``leaf`` directly, in the graph that computed ``output``."""
    seen, todo, uses = set(), [output.grad_fn], 0
    while todo:
        node = todo.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        for next_node, _ in node.next_functions:
            uses += getattr(next_node, "variable", None) is leaf
            todo.append(next_node)
    return uses


@pytest.mark.parametrize("cell_cls", CELLS)
def test_sequential_reads_its_input_a_fixed_number_of_times(cell_cls):
    # Slicing x[:, t] in the loop read x once per step, and each read's backward wrote a full (B, T, H_in)
    # gradient: O(T^2). One projection per gate before the loop reads x once per gate, whatever T.
    cell = cell_cls(3, 4)
    uses = []
    for T in (4, 32):
        x = torch.randn(2, T, 3, requires_grad=True)
        uses.append(_uses_of(x, cell.sequential(x)))
    assert uses[0] == uses[1] == len(cell._project(torch.zeros(1, 3)))


@pytest.mark.parametrize("cell_cls", CELLS)
def test_sequential_and_parallel_gradients_agree_with_an_input_that_requires_grad(cell_cls):
    torch.manual_seed(9)
    cell = cell_cls(3, 4).double()
    x = torch.randn(2, 512, 3, dtype=torch.float64)
    h0 = torch.randn(2, 4, dtype=torch.float64)
    weights = torch.randn(2, 512, 4, dtype=torch.float64)  # a loss that weighs every step differently
    grads = []
    for run in (cell.sequential, cell.parallel):
        x_, h0_ = x.clone().requires_grad_(), h0.clone().requires_grad_()
        loss = (run(x_, h0_) * weights).sum()
        grads.append(torch.autograd.grad(loss, (x_, h0_, *cell.parameters())))
    for seq, par in zip(*grads, strict=True):
        assert_close(par, seq, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("cell_cls", CELLS)
def test_cell_parallel_is_stable_in_float32_over_long_sequences(cell_cls):
    torch.manual_seed(2)
    cell = cell_cls(4, 8)
    x = torch.randn(2, 1024, 4)
    with torch.no_grad():
        assert_close(cell.parallel(x), cell.sequential(x), rtol=1e-4, atol=1e-4)


def _set_linear(linear, weight, bias):
    with torch.no_grad():
        linear.weight.fill_(weight)
        linear.bias.fill_(bias)


@pytest.mark.parametrize("mode", ["parallel", "sequential"])
def test_min_gru_hand_computed(mode):
    # z = sigmoid(0) = 1/2; h~ = g(x): g(1) = 1.5, g(0) = 0.5.
    # h1 = 0.5 * 0 + 0.5 * 1.5 = 0.75; h2 = 0.5 * 0.75 + 0.5 * 0.5 = 0.625.
    model = MinGRU(1, 1, mode=mode).double()
    _set_linear(model.cells[0].linear_z, 0.0, 0.0)
    _set_linear(model.cells[0].linear_h, 1.0, 0.0)
    output, h_n = model(torch.tensor([[[1.0], [0.0]]], dtype=torch.float64))
    assert_close(output.flatten(), torch.tensor([0.75, 0.625], dtype=torch.float64))
    assert_close(h_n.flatten(), torch.tensor([0.625], dtype=torch.float64))


@pytest.mark.parametrize("mode", ["parallel", "sequential"])
def test_min_lstm_hand_computed(mode):
    # f = sigmoid(log 3) = 3/4, i = sigmoid(0) = 1/2 -> f' = 0.75 / 1.25 = 0.6, i' = 0.4.
    # h1 = 0.4 * g(1) = 0.6; h2 = 0.6 * 0.6 + 0.4 * g(0) = 0.56.
    model = MinLSTM(1, 1, mode=mode).double()
    _set_linear(model.cells[0].linear_f, 0.0, math.log(3.0))
    _set_linear(model.cells[0].linear_i, 0.0, 0.0)
    _set_linear(model.cells[0].linear_h, 1.0, 0.0)
    output, _ = model(torch.tensor([[[1.0], [0.0]]], dtype=torch.float64))
    assert_close(output.flatten(), torch.tensor([0.6, 0.56], dtype=torch.float64))


@pytest.mark.parametrize("mode", ["parallel", "sequential"])
def test_min_lstm_normalised_gates_stay_finite_when_both_gates_underflow(mode):
    # f = i = sigmoid(-200) = 0 in float32, so f / (f + i) would be 0/0; in log space f' = i' = 1/2.
    # h1 = 0.5 * g(1) = 0.75; h2 = 0.5 * 0.75 + 0.5 * g(0) = 0.625.
    model = MinLSTM(1, 1, mode=mode)
    _set_linear(model.cells[0].linear_f, 0.0, -200.0)
    _set_linear(model.cells[0].linear_i, 0.0, -200.0)
    _set_linear(model.cells[0].linear_h, 1.0, 0.0)
    output, _ = model(torch.tensor([[[1.0], [0.0]]]))
    assert_close(output.flatten(), torch.tensor([0.75, 0.625]))


@pytest.mark.parametrize("model_cls", MODELS)
@pytest.mark.parametrize("batch_first", [True, False])
def test_model_parallel_equals_sequential(model_cls, batch_first):
    torch.manual_seed(3)
    model = model_cls(3, 5, num_layers=2, batch_first=batch_first).double()
    x = torch.randn(4, 2, 3, dtype=torch.float64)  # (B, T, ..) or (T, B, ..): both fine for the check
    h0 = torch.randn(2, 4 if batch_first else 2, 5, dtype=torch.float64)  # (L, B, H)
    out_p, h_p = model(x, h0)
    model.mode = "sequential"
    out_s, h_s = model(x, h0)
    assert_close(out_p, out_s, rtol=1e-10, atol=1e-10)
    assert_close(h_p, h_s, rtol=1e-10, atol=1e-10)
    last = out_p[:, -1] if batch_first else out_p[-1]
    assert_close(h_p[-1], last)


@pytest.mark.parametrize("model_cls", MODELS)
@pytest.mark.parametrize("mode", ["parallel", "sequential"])
def test_stepping_with_carried_state_equals_one_full_pass(model_cls, mode):
    torch.manual_seed(4)
    model = model_cls(3, 5, num_layers=2, mode=mode).double()
    x = torch.randn(2, 9, 3, dtype=torch.float64)
    full, h_full = model(x)
    # one step at a time through .step()
    h, outputs = None, []
    for t in range(9):
        h = model.step(x[:, t], h)
        outputs.append(h[-1])
    assert_close(torch.stack(outputs, dim=1), full)
    assert_close(h, h_full)
    # uneven chunks through forward(), carrying h_n
    h, chunks = None, []
    for a, b in [(0, 1), (1, 5), (5, 9)]:
        out, h = model(x[:, a:b], h)
        chunks.append(out)
    assert_close(torch.cat(chunks, dim=1), full)
    assert_close(h, h_full)


class _Parallel(torch.nn.Module):
    """A cell whose forward is its parallel form, so functional_call can swap its parameters."""

    def __init__(self, cell):
        super().__init__()
        self.cell = cell

    def forward(self, x):
        return self.cell.parallel(x)


@pytest.mark.parametrize("cell_cls", CELLS)
def test_gradcheck_cell_step_and_parallel(cell_cls):
    torch.manual_seed(5)
    cell = cell_cls(3, 2).double()
    x_t = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    h = torch.randn(2, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(cell, (x_t, h))
    x = torch.randn(2, 4, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(cell.parallel, (x, h))
    # and the parameters' gradients, through the parallel form
    wrapper = _Parallel(cell)
    names = [n for n, _ in wrapper.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_() for p in wrapper.parameters())

    def parallel_of_params(*p):
        return torch.func.functional_call(
            wrapper, dict(zip(names, p, strict=True)), (x.detach(),), strict=True
        )

    assert torch.autograd.gradcheck(parallel_of_params, params)


def test_gradcheck_parallel_scan_log():
    torch.manual_seed(6)
    log_a = (-torch.rand(2, 5, 3, dtype=torch.float64)).requires_grad_()
    log_b = torch.randn(2, 5, 3, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(parallel_scan_log, (log_a, log_b, h0))
    assert torch.autograd.gradcheck(lambda a, b: parallel_scan_log(a, b), (log_a, log_b))
    # two chunks of 2 and a tail of 1: every stage of the scan
    assert torch.autograd.gradcheck(
        lambda a, b, h: parallel_scan_log(a, b, h, chunk_size=2), (log_a, log_b, h0)
    )


@pytest.mark.parametrize("model_cls", MODELS)
def test_gradcheck_model(model_cls):
    torch.manual_seed(7)
    model = model_cls(2, 2, num_layers=2).double()
    x = torch.randn(2, 3, 2, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(2, 2, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(model, (x, h0))


@pytest.mark.parametrize("model_cls", MODELS)
def test_dropout_between_layers_only_in_training(model_cls):
    torch.manual_seed(8)
    model = model_cls(3, 16, num_layers=2, dropout=0.5)
    x = torch.randn(2, 4, 3)
    model.eval()
    assert torch.equal(model(x)[0], model(x)[0])
    model.train()
    assert not torch.equal(model(x)[0], model(x)[0])
    with pytest.warns(UserWarning, match="non-zero dropout expects num_layers greater than 1"):  # as torch.nn
        single = model_cls(3, 16, num_layers=1, dropout=0.5).train()  # no layer after the last: no dropout
    assert torch.equal(single(x)[0], single(x)[0])


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"input_size": 0}, ValueError, "input_size"),
        ({"hidden_size": 2.5}, TypeError, "hidden_size should be of type int, got: float"),
        ({"num_layers": 0}, ValueError, "num_layers"),
        ({"dropout": 1.5}, ValueError, "dropout"),
        ({"mode": "fast"}, ValueError, "mode"),
    ],
)
@pytest.mark.parametrize("model_cls", MODELS)
def test_constructor_errors_name_the_argument(model_cls, kwargs, error, match):
    args = {"input_size": 3, "hidden_size": 4, **kwargs}
    with pytest.raises(error, match=match):
        model_cls(**args)


@pytest.mark.parametrize("model_cls", MODELS)
def test_input_errors_name_the_argument(model_cls):
    model = model_cls(3, 4, num_layers=2)
    with pytest.raises(ValueError, match="input must be"):
        model(torch.zeros(2, 5, 7))
    with pytest.raises(ValueError, match="input must be"):
        model(torch.zeros(5, 3))
    with pytest.raises(ValueError, match=r"h0 must have shape \(2, 2, 4\)"):
        model(torch.zeros(2, 5, 3), torch.zeros(1, 2, 4))
    with pytest.raises(ValueError, match="x_t must be"):
        model.step(torch.zeros(2, 5, 3))
    with pytest.raises(TypeError, match="PackedSequence"):
        model(pack_sequence([torch.zeros(3, 3), torch.zeros(2, 3)]))
    with pytest.raises(ValueError, match="hx must have shape"):
        model.cells[0](torch.zeros(2, 3), torch.zeros(3, 4))
