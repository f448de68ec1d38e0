"""Whole rnnlab layers on the Triton back end against torch.nn: outputs, final states, every gradient.

Two layers, bidirectional, over padded input with an initial state, packed sorted input without one and
packed unsorted input with one (its rows in the caller's order); RNN tanh / relu, LSTM with and without a
projection, GRU. torch.nn runs on CPU float64 copies (cuDNN's float32 may use TF32); rnnlab runs on
DEVICE, every direction through the Triton back end (counted). On the CPU the kernels run under Triton's
interpreter with ``RNNLAB_FUSED_BACKEND=triton`` (see ``triton_testing``).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence
from triton_testing import DEVICE, count_calls, load_backend, triton_env, weighted_loss  # noqa: F401

import rnnlab.nn as rnn

pytestmark = [pytest.mark.triton, pytest.mark.usefixtures("triton_env")]

TB = load_backend()

T, B, I, H, P, L = 5, 3, 3, 4, 2, 2  # steps, batch, input, hidden, projection, layers
LENGTHS = [5, 2, 4]  # unsorted
LAYERS = {
    "rnn_tanh": ("RNN", {"nonlinearity": "tanh"}),
    "rnn_relu": ("RNN", {"nonlinearity": "relu"}),
    "gru": ("GRU", {}),
    "lstm": ("LSTM", {}),
    "lstmp": ("LSTM", {"proj_size": P}),
}
FORMS = ["padded_hx", "packed_sorted", "packed_unsorted_hx"]


def make_input(form: str, dtype: torch.dtype, device: str, g: torch.Generator):
    """The layer's input in ``form`` and its leaf (the tensor whose gradient is compared)."""
    leaf = torch.randn(T, B, I, generator=g, dtype=torch.float64).to(device, dtype).requires_grad_()
    if form == "padded_hx":
        return leaf, leaf
    is_sorted = form == "packed_sorted"
    lengths = torch.tensor(sorted(LENGTHS, reverse=True) if is_sorted else LENGTHS)
    return pack_padded_sequence(leaf, lengths, enforce_sorted=is_sorted), leaf


def run_and_grad(layer: nn.Module, form: str, dtype: torch.dtype, device: str):
    """Outputs, final states, the input's and state's gradients and every parameter's."""
    g = torch.Generator().manual_seed(1)
    inp, leaf = make_input(form, dtype, device, g)
    leaves = [leaf]
    hx = None
    if form.endswith("_hx"):
        h_size = layer.proj_size if getattr(layer, "proj_size", 0) else layer.hidden_size
        sizes = [h_size, layer.hidden_size] if layer.mode == "LSTM" else [h_size]
        states = [torch.randn(2 * L, B, s, generator=g, dtype=torch.float64) for s in sizes]
        states = [s.to(device, dtype).requires_grad_() for s in states]
        leaves += states
        hx = tuple(states) if layer.mode == "LSTM" else states[0]
    output, final = layer(inp, hx)
    out = output.data if isinstance(output, PackedSequence) else output
    outs = [out, *(final if isinstance(final, tuple) else (final,))]
    params = list(layer.parameters())
    grads = torch.autograd.grad(weighted_loss(outs), leaves + params)
    return [o.detach() for o in outs] + list(grads)


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("name", list(LAYERS))
def test_layer_matches_torch_nn(monkeypatch, name, form):
    cls, kwargs = LAYERS[name]
    kwargs = dict(input_size=I, hidden_size=H, num_layers=L, bidirectional=True, **kwargs)
    dtype = torch.float32 if form == "packed_unsorted_hx" else torch.float64
    torch.manual_seed(0)
    ref = getattr(nn, cls)(**kwargs).double()
    ours = getattr(rnn, cls)(**kwargs).to(DEVICE, dtype)
    ours.load_state_dict(ref.state_dict(), strict=True)
    calls = count_calls(monkeypatch, TB, "forward")
    got = run_and_grad(ours, form, dtype, DEVICE)
    assert len(calls) == 2 * L  # every layer and direction took the Triton path
    want = run_and_grad(ref, form, torch.float64, "cpu")
    tolerance = {"rtol": 1e-4, "atol": 1e-5} if dtype == torch.float32 else {"rtol": 1e-9, "atol": 1e-11}
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g.dtype == dtype and g.device.type == DEVICE
        torch.testing.assert_close(g.cpu().double(), w, **tolerance)
