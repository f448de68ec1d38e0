"""The one layer stack (rnnlab.nn._stack): its contract checked directly, with runners that record.

Which runner runs when and on what; where inter-layer dropout falls (between layers, in training only,
drawn after the previous layer ran); the order of the final states; torch.nn's parameter names; zeros.
The layers built on it are checked against torch.nn in the parity, property and variant tests.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as TF
from torch.testing import assert_close

from rnnlab.nn._stack import param_suffix, run_stack, zero_state


def _recording_runner(calls, draw=False):
    """A runner whose output is x's first feature plus 10 * layer + direction (one feature), and whose
    final state is the given state plus 1; with ``draw`` it also consumes the RNG (as zoneout does)."""

    def run(layer, direction, x, state):
        calls.append((layer, direction, x.clone(), tuple(s.clone() for s in state)))
        out = x[..., :1] + 10 * layer + direction  # (T, B, 1)
        if draw:
            out = out + torch.rand_like(out)
        return out, tuple(s + 1 for s in state)

    return run


def test_layers_and_directions_run_in_torch_order_on_the_right_inputs():
    calls = []
    x = torch.randn(4, 2, 3)  # (T, B, H_in)
    hx = (torch.randn(6, 2, 5), torch.randn(6, 2, 7))  # (L*D, B, ·) for L = 3, D = 2
    output, final = run_stack(_recording_runner(calls), x, hx, 3, 2, dropout=0.0, training=True)
    assert [(layer, direction) for layer, direction, _, _ in calls] == [
        (l, d) for l in range(3) for d in range(2)
    ]
    for k, (layer, _, x_in, state) in enumerate(calls):
        for component, s in zip(hx, state, strict=True):
            assert torch.equal(s, component[k])  # state of row layer * D + direction
        if layer == 0:
            assert torch.equal(x_in, x)  # both directions read the layer's input
    layer0 = torch.cat([x[..., :1], x[..., :1] + 1], dim=-1)  # (T, B, D): forward first
    assert torch.equal(calls[2][2], layer0) and torch.equal(calls[3][2], layer0)
    assert output.shape == (4, 2, 2)
    # layer 1 reads layer0: (x + 10, x + 11); layer 2 reads that: (x + 10 + 20, x + 10 + 21)
    assert_close(output, torch.cat([x[..., :1] + 10 + 20, x[..., :1] + 10 + 21], dim=-1), rtol=0, atol=0)
    for component, stacked in zip(hx, final, strict=True):
        assert torch.equal(stacked, component + 1)  # stacked back in layer * D + direction order


def test_one_direction_is_not_concatenated_and_empty_states_stack_to_nothing():
    calls = []
    x = torch.randn(3, 2, 1)
    output, final = run_stack(_recording_runner(calls), x, (), 2, 1, dropout=0.0, training=False)
    assert final == ()
    assert torch.equal(output, x + 10)  # layer 0 adds 0, layer 1 adds 10


@pytest.mark.parametrize("training", [True, False])
def test_dropout_falls_between_layers_only_and_only_in_training(training):
    calls = []
    x = torch.rand(5, 3, 4) + 1  # positive, so a dropped element is exactly 0
    output, _ = run_stack(_recording_runner(calls), x, (), 3, 1, dropout=1.0, training=training)
    inputs = [x_in for _, _, x_in, _ in calls]
    assert torch.equal(inputs[0], x)  # never before the first layer
    if training:  # p = 1 drops everything between layers ...
        assert torch.equal(inputs[1], torch.zeros_like(inputs[1]))
        assert torch.equal(inputs[2], torch.zeros_like(inputs[2]))
        assert torch.equal(output, torch.full_like(output, 20.0))  # ... and nothing after the last
    else:
        assert torch.equal(inputs[2], x[..., :1] + 10)


def test_dropout_masks_and_the_runners_draws_come_in_one_fixed_order():
    """Layer 0 (both directions), then layer 0's dropout mask, then layer 1: the order the layers had
    before they shared this stack, so seeded runs give the same numbers."""
    x = torch.randn(4, 2, 3)
    torch.manual_seed(7)
    output, _ = run_stack(_recording_runner([], draw=True), x, (), 2, 2, dropout=0.5, training=True)
    torch.manual_seed(7)
    f0 = x[..., :1] + torch.rand(4, 2, 1)
    b0 = x[..., :1] + 1 + torch.rand(4, 2, 1)
    layer1_in = TF.dropout(torch.cat([f0, b0], dim=-1), 0.5, training=True)
    f1 = layer1_in[..., :1] + 10 + torch.rand(4, 2, 1)
    b1 = layer1_in[..., :1] + 11 + torch.rand(4, 2, 1)
    assert_close(output, torch.cat([f1, b1], dim=-1), rtol=0, atol=0)


def test_param_suffix_gives_torch_nn_parameter_names():
    lstm = nn.LSTM(3, 4, num_layers=3, bidirectional=True, proj_size=2)
    names = [
        base + param_suffix(layer, direction)
        for layer in range(3)
        for direction in range(2)
        for base in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")
    ]
    assert names == [name for name, _ in lstm.named_parameters()]
    assert (param_suffix(0, 0), param_suffix(2, 1)) == ("_l0", "_l2_reverse")


def test_zero_state_takes_the_dtype_and_device_of_its_reference():
    like = torch.ones(2, dtype=torch.float64)
    h, c = zero_state(4, 3, [2, 5], like)
    assert h.shape == (4, 3, 2) and c.shape == (4, 3, 5)
    assert h.dtype == c.dtype == torch.float64 and h.device == like.device
    assert not h.any() and not c.any()
