"""LayerNormLSTM's fused Triton path against its readable path: outputs, final states, every gradient.

The reference is the same module with ``use_fused = False`` (the walk of the cells' ``_step``, autograd's
gradients), run on CPU float64 copies; the fused path runs on DEVICE, each direction counted, on CPU
tensors under Triton's interpreter with ``RNNLAB_FUSED_BACKEND=triton`` (see ``triton_testing``). The
LayerNorm gains and shifts are drawn at random, not left at 1 and 0, so that every one of them matters.
The interpreter costs a fraction of a second per program and step: shapes are tiny.
"""

from __future__ import annotations

import copy

import pytest
import torch
from triton_testing import DEVICE, count_calls, load_layernorm, triton_env, weighted_loss  # noqa: F401

from rnnlab.nn.variants import LayerNormLSTM

pytestmark = [pytest.mark.triton, pytest.mark.usefixtures("triton_env")]

LN = load_layernorm()

T, B, I, H = 3, 2, 3, 5  # steps, batch, input, hidden (H = 5: the kernels' masked lanes are used)

CASES = {  # name: (layer keywords, input form, dtype)
    "bidirectional_2_layers_hx_f64": ({"num_layers": 2, "bidirectional": True}, "hx", torch.float64),
    "bidirectional_2_layers_hx_f32": ({"num_layers": 2, "bidirectional": True}, "hx", torch.float32),
    "batch_first_no_hx_f64": ({"batch_first": True}, "no_hx", torch.float64),
    "no_bias_hx_f32": ({"bias": False}, "hx", torch.float32),
    "unbatched_hx_f64": ({"bidirectional": True}, "unbatched_hx", torch.float64),
}


def make_layer(seed: int = 0, **kwargs) -> LayerNormLSTM:
    torch.manual_seed(seed)
    layer = LayerNormLSTM(I, H, **kwargs).double()
    with torch.no_grad():
        for cell in layer.cells:
            for ln in (cell.ln_ih, cell.ln_hh, cell.ln_c):
                ln.weight.uniform_(0.5, 1.5)
                ln.bias.uniform_(-0.5, 0.5)
    return layer


def run_and_grad(layer: LayerNormLSTM, form: str, dtype: torch.dtype, device: str):
    """Outputs, final states, the input's and state's gradients and every parameter's."""
    g = torch.Generator().manual_seed(1)
    D, L = layer.num_directions, layer.num_layers
    shape = (T, I) if form.startswith("unbatched") else ((B, T, I) if layer.batch_first else (T, B, I))
    x = torch.randn(shape, generator=g, dtype=torch.float64).to(device, dtype).requires_grad_()
    leaves, hx = [x], None
    if form.endswith("hx"):
        s_shape = (L * D, H) if form.startswith("unbatched") else (L * D, B, H)
        hx = tuple(torch.randn(s_shape, generator=g, dtype=torch.float64).to(device, dtype) for _ in "hc")
        hx = tuple(s.requires_grad_() for s in hx)
        leaves += list(hx)
    output, (h_n, c_n) = layer(x, hx)
    outs = [output, h_n, c_n]
    grads = torch.autograd.grad(weighted_loss(outs), leaves + list(layer.parameters()))
    return [o.detach() for o in outs] + list(grads)


@pytest.mark.parametrize("name", list(CASES))
def test_fused_matches_readable(monkeypatch, name):
    kwargs, form, dtype = CASES[name]
    ref = make_layer(**kwargs)
    ours = copy.deepcopy(ref).to(DEVICE, dtype)
    ref.use_fused = False
    calls = count_calls(monkeypatch, LN, "forward")
    got = run_and_grad(ours, form, dtype, DEVICE)
    assert len(calls) == ours.num_layers * ours.num_directions  # every direction took the fused path
    want = run_and_grad(ref, form, torch.float64, "cpu")
    tolerance = {"rtol": 1e-4, "atol": 1e-5} if dtype == torch.float32 else {"rtol": 1e-9, "atol": 1e-11}
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g.dtype == dtype and g.device.type == DEVICE
        torch.testing.assert_close(g.cpu().double(), w, **tolerance)


def test_carried_state_equals_one_pass():
    """Two calls, the second from the first's final state, equal one call over all steps (fused)."""
    layer = make_layer().to(DEVICE)
    x = torch.randn(2 * T, B, I, dtype=torch.float64, device=DEVICE)
    with torch.no_grad():
        full, (h_full, c_full) = layer(x)
        first, state = layer(x[:T])
        second, (h_n, c_n) = layer(x[T:], state)
    torch.testing.assert_close(torch.cat([first, second]), full, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(h_n, h_full, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(c_n, c_full, rtol=1e-12, atol=1e-12)


def test_gradcheck_float64():
    """torch.autograd.gradcheck of the Function on the inputs the recurrence carries (fast mode: the
    interpreter makes each evaluation cost a second)."""
    cell = make_layer().cells[0].to(DEVICE)
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 1, I, generator=g, dtype=torch.float64).to(DEVICE).requires_grad_()
    h0, c0 = (torch.randn(1, H, generator=g, dtype=torch.float64).to(DEVICE).requires_grad_() for _ in "hc")
    w_hh = cell.weight_hh.detach().clone().requires_grad_()
    a_hh = cell.ln_hh.weight.detach().clone().requires_grad_()
    a_c = cell.ln_c.weight.detach().clone().requires_grad_()
    b_c = cell.ln_c.bias.detach().clone().requires_grad_()
    eps = (cell.ln_ih.eps, cell.ln_hh.eps, cell.ln_c.eps)

    def fn(x, h0, c0, w_hh, a_hh, a_c, b_c):
        args = (cell.weight_ih, w_hh, cell.gate_bias, cell.ln_ih.weight, cell.ln_ih.bias, a_hh)
        return LN.LayerNormLSTMDirection.apply(x, h0, c0, *args, cell.ln_hh.bias, a_c, b_c, eps, True)

    assert torch.autograd.gradcheck(fn, (x, h0, c0, w_hh, a_hh, a_c, b_c), fast_mode=True)


def test_readable_path_where_fused_does_not_apply(monkeypatch):
    """use_fused=False, a LayerNorm without gain and shift, and CPU tensors without the switch take the
    readable path (no call)."""
    calls = count_calls(monkeypatch, LN, "forward")
    layer = make_layer().to(DEVICE, torch.float32)
    x = torch.randn(T, B, I, device=DEVICE)
    layer.use_fused = False
    out_readable, _ = layer(x)
    assert calls == []
    layer.use_fused = True
    out_fused, _ = layer(x)
    assert len(calls) == 1
    torch.testing.assert_close(out_fused, out_readable, rtol=1e-4, atol=1e-5)
    layer.cells[0].ln_c = torch.nn.LayerNorm(H, elementwise_affine=False, device=DEVICE)  # no gain
    layer(x)
    assert len(calls) == 1
    if DEVICE == "cpu":
        monkeypatch.delenv("RNNLAB_FUSED_BACKEND")
        make_layer().float()(x)
        assert len(calls) == 1


def test_double_backward_matches_readable():
    """A gradient penalty through the fused path (create_graph=True) equals the readable path's."""
    ref = make_layer(bidirectional=True)
    ours = copy.deepcopy(ref).to(DEVICE)
    ref.use_fused = False
    results = []
    for layer, device in ((ours, DEVICE), (ref, "cpu")):
        g = torch.Generator().manual_seed(3)
        x = torch.randn(T, B, I, generator=g, dtype=torch.float64).to(device).requires_grad_()
        output, (h_n, c_n) = layer(x)
        (gx,) = torch.autograd.grad(weighted_loss([output, h_n, c_n]), x, create_graph=True)
        results.append(torch.autograd.grad((gx * gx).sum(), [x, *layer.parameters()]))
    for got, want in zip(*results, strict=True):
        torch.testing.assert_close(got.cpu(), want, rtol=1e-9, atol=1e-11)


def test_dropout_between_layers_matches_readable(monkeypatch):
    """In training with dropout between layers, the fused layer draws the same masks as the readable one
    (the stack draws them; neither path's steps use the generator), so with one seed the two agree."""
    ref = make_layer(num_layers=2, dropout=0.5).to(DEVICE)
    ours = copy.deepcopy(ref)
    ref.use_fused = False
    calls = count_calls(monkeypatch, LN, "forward")
    x = torch.randn(T, B, I, dtype=torch.float64, device=DEVICE)
    results = []
    for layer in (ours, ref):
        torch.manual_seed(5)
        output, (h_n, c_n) = layer.train()(x)
        results.append((output, h_n, c_n))
    assert len(calls) == 2
    for got, want in zip(*results, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "f16"])
def test_half_precision_close_to_float64(monkeypatch, dtype):
    """bfloat16 / float16 layers: outputs and gradients near the float64 readable path's (the state and
    the gate math in float32), and c_n in the layer's dtype."""
    kwargs = {"bidirectional": True}
    ref = make_layer(**kwargs)
    ours = copy.deepcopy(ref).to(DEVICE, dtype)
    ref.use_fused = False
    calls = count_calls(monkeypatch, LN, "forward")
    got = run_and_grad(ours, "hx", dtype, DEVICE)
    assert len(calls) == 2
    want = run_and_grad(ref, "hx", torch.float64, "cpu")
    rel = 3e-2 if dtype == torch.bfloat16 else 4e-3
    for g, w in zip(got, want, strict=True):
        assert g.dtype == dtype
        scale = w.abs().max().clamp_min(1.0)
        assert (g.cpu().double() - w).abs().max() <= rel * scale
