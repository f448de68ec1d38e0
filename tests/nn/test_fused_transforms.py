"""The fast path under vmap and the other torch.func transforms.

A vmap over the backward (``torch.autograd.grad(..., is_grads_batched=True)``, or ``torch.func.vmap`` of a
function calling ``torch.autograd.grad``) reaches the fused Function's backward with batched gradients: it
must give, for each of them, what one backward gives (a Python loop of single grads) and what torch.nn
gives. ``torch.func.vjp`` / ``jacrev`` over a layer run the readable path (``fused.supports`` says no under
a transform) and must agree with torch.nn too.
"""

from __future__ import annotations

import pytest
import torch
from test_fused import VARIANT_IDS, VARIANTS, leaves_of, make_case, tol
from torch.nn.utils.rnn import pack_padded_sequence

import rnnlab.nn as rnn
from rnnlab.nn import fused
from rnnlab.nn._loop import run_direction_readable

pytestmark = pytest.mark.usefixtures("one_thread")

K = 3  # gradients in a batch
SIZES, LENGTHS = (4, 3, 2, 3, 2), [4, 3, 1]  # (T, B, H_in, H, P); packed: B = 3 sequences, N = 8 rows
# torch's own notice, from its functorch fallback for the backward of pack_padded_sequence (not ours)
TORCH_PACK_NOTICE = "ignore:There is a performance drop:UserWarning"


@pytest.fixture(params=["cpp", "torch"])
def backend(request) -> str:
    if request.param == "cpp" and not fused.extension_available():
        pytest.skip("RNNLAB_NO_EXT is set: the C++ back end is off")
    return request.param


def cotangents(outs: list[torch.Tensor], seed: int = 11) -> list[torch.Tensor]:
    """K gradients for each output, stacked on a new first dimension."""
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(K, *o.shape, generator=g, dtype=o.dtype) for o in outs]


@pytest.mark.parametrize("packed", [False, True], ids=["padded", "packed"])
@pytest.mark.parametrize(("mode", "proj"), VARIANTS, ids=VARIANT_IDS)
def test_batched_grads_equal_a_loop_of_single_grads(backend, mode, proj, packed):
    """is_grads_batched over the fused Function: each slice is one backward's result (the hand-written
    BPTT for single grads), and all equal the readable path's batched grads."""
    x, batch_sizes, state, weights = make_case(
        mode, proj, True, packed, torch.float64, sizes=SIZES, lengths=LENGTHS
    )
    leaves = leaves_of(x, state, weights)
    out, final = fused._run_direction(mode, x, batch_sizes, state, weights, True, backend=backend)
    assert type(final[0].grad_fn).__name__ == "FusedDirectionBackward"  # the fast path ran
    outs = [out, *final]
    vs = cotangents(outs)
    batched = torch.autograd.grad(outs, leaves, vs, is_grads_batched=True, retain_graph=True)
    singles = [torch.autograd.grad(outs, leaves, [v[k] for v in vs], retain_graph=True) for k in range(K)]
    r_out, r_final = run_direction_readable(mode, x, batch_sizes, state, weights, True)
    readable = torch.autograd.grad([r_out, *r_final], leaves, vs, is_grads_batched=True)
    for j, (got, want) in enumerate(zip(batched, readable, strict=True)):
        assert got.shape == (K, *leaves[j].shape)
        torch.testing.assert_close(got, want, **tol(torch.float64))
        torch.testing.assert_close(got, torch.stack([s[j] for s in singles]), **tol(torch.float64))


LAYERS = [
    ("LSTM", {"proj_size": 2}),
    ("LSTM", {}),
    ("GRU", {}),
    ("RNN", {}),
    ("RNN", {"nonlinearity": "relu"}),
]
LAYER_IDS = ["lstmp", "lstm", "gru", "rnn_tanh", "rnn_relu"]


def twin_layers(cls: str, kwargs: dict) -> tuple[torch.nn.Module, torch.nn.Module]:
    """torch.nn's 2-layer bidirectional layer and rnnlab's, with the same weights (float64)."""
    kwargs = dict(input_size=3, hidden_size=4, num_layers=2, bidirectional=True, batch_first=True, **kwargs)
    torch.manual_seed(0)
    ref = getattr(torch.nn, cls)(**kwargs).double()
    ours = getattr(rnn, cls)(**kwargs).double()
    ours.load_state_dict(ref.state_dict())
    return ref, ours


@pytest.mark.filterwarnings(TORCH_PACK_NOTICE)
@pytest.mark.parametrize("packed", [False, True], ids=["padded", "packed"])
@pytest.mark.parametrize(("cls", "kwargs"), LAYERS, ids=LAYER_IDS)
def test_layer_batched_grads_match_torch_nn(cls, kwargs, packed):
    """A layer on the default (fused) path: is_grads_batched over the output, the final state and every
    parameter equals torch.nn's, and so does torch.func.vmap of a function calling autograd.grad."""
    ref, ours = twin_layers(cls, kwargs)
    x = torch.randn(3, 5, 3, dtype=torch.float64, requires_grad=True)  # (B, T, H_in)
    results = []
    for layer in (ref, ours):
        inp = x
        if packed:
            inp = pack_padded_sequence(x, torch.tensor([5, 2, 4]), batch_first=True, enforce_sorted=False)
        out, state = layer(inp)
        outs = [out.data if packed else out, *(state if isinstance(state, tuple) else (state,))]
        vs = cotangents(outs)
        leaves = [x, *layer.parameters()]
        grads = torch.autograd.grad(outs, leaves, vs, is_grads_batched=True, retain_graph=True)

        def grad_of_x(*v, outs=outs):
            return torch.autograd.grad(outs, x, v, retain_graph=True)[0]

        by_vmap = torch.func.vmap(grad_of_x)(*vs)
        results.append([*outs, *grads, by_vmap])
    for got, want in zip(results[1], results[0], strict=True):
        torch.testing.assert_close(got, want, **tol(torch.float64))


@pytest.mark.parametrize(("cls", "kwargs"), LAYERS[:3], ids=LAYER_IDS[:3])
def test_vjp_and_jacrev_over_a_layer_match_torch_nn(cls, kwargs):
    """torch.func.vjp and jacrev (input and parameters, via functional_call) run rnnlab's readable path
    under the transform, with torch.nn's results."""
    ref, ours = twin_layers(cls, kwargs)
    x = torch.randn(2, 4, 3, dtype=torch.float64)
    v = torch.randn(2, 4, 8 if "proj_size" not in kwargs else 4, dtype=torch.float64)
    results = []
    for layer in (ref, ours):
        params = {k: p.detach() for k, p in layer.named_parameters()}

        def f(x_, params_, layer=layer):
            return torch.func.functional_call(layer, params_, (x_,))[0]  # the output (B, T, D * P)

        out, vjp_fn = torch.func.vjp(f, x, params)
        dx, dparams = vjp_fn(v)
        jac_x, jac_p = torch.func.jacrev(f, argnums=(0, 1))(x, params)
        results.append([out, dx, *dparams.values(), jac_x, *jac_p.values()])
    for got, want in zip(results[1], results[0], strict=True):
        torch.testing.assert_close(got, want, **tol(torch.float64))
