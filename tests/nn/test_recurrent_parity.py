"""Parity with torch.nn over the full option grid: outputs, final states and every gradient.

Each case builds torch.nn's layer and rnnlab's under the same seed (so identical weights, which is itself
checked), runs both on the same input form with the same dropout seed, and compares everything, on both
of rnnlab's paths (the readable loop and the fused fast path).
"""

from __future__ import annotations

import itertools

import pytest
import torch
from rnn_testing import H, I, P, make_hx, make_input, make_pair, run_and_grad, tol

FORMS = ["batched", "unbatched", "packed_sorted", "packed_unsorted"]
DTYPES = [torch.float32, torch.float64]


def _grid():
    for cls_name, extra in [
        ("RNN", {"nonlinearity": "tanh"}),
        ("RNN", {"nonlinearity": "relu"}),
        ("GRU", {}),
        ("LSTM", {"proj_size": 0}),
        ("LSTM", {"proj_size": P}),
    ]:
        for num_layers, bidirectional, batch_first, bias in itertools.product(
            [1, 2, 3], [False, True], [False, True], [True, False]
        ):
            yield (
                cls_name,
                {
                    **extra,
                    "num_layers": num_layers,
                    "bidirectional": bidirectional,
                    "batch_first": batch_first,
                    "bias": bias,
                },
            )


GRID = list(_grid())


def _id(case):
    cls_name, kw = case
    parts = [cls_name, f"L{kw['num_layers']}", "bi" if kw["bidirectional"] else "uni"]
    parts += ["bf" if kw["batch_first"] else "tf", "bias" if kw["bias"] else "nobias"]
    if "nonlinearity" in kw:
        parts.append(kw["nonlinearity"])
    if kw.get("proj_size"):
        parts.append("proj")
    return "-".join(parts)


@pytest.mark.parametrize("use_fused", [False, True], ids=["readable", "fused"])
@pytest.mark.parametrize("training", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize("case", GRID, ids=[_id(c) for c in GRID])
def test_parity_with_torch(case, training, use_fused):
    cls_name, kw = case
    # Inter-layer dropout in training mode: rnnlab draws its masks exactly as torch does, so the same seed
    # must give the same numbers.
    dropout = 0.4 if (training and kw["num_layers"] > 1) else 0.0
    for dtype, form in itertools.product(DTYPES, FORMS):
        ref, ours = make_pair(cls_name, dtype, input_size=I, hidden_size=H, dropout=dropout, **kw)
        ours.use_fused = use_fused
        ref.train(training)
        ours.train(training)
        for (name_r, p_r), (name_o, p_o) in zip(ref.named_parameters(), ours.named_parameters(), strict=True):
            assert name_r == name_o and torch.equal(p_r, p_o), f"init differs at {name_r}"

        hx, hx_leaves = make_hx(ref, form, dtype)
        inp, leaf = make_input(form, kw["batch_first"], dtype)
        outs_r, grads_r = run_and_grad(ref, inp, hx, [leaf, *hx_leaves])
        inp, leaf = make_input(form, kw["batch_first"], dtype)  # a fresh graph (packing is differentiable)
        outs_o, grads_o = run_and_grad(ours, inp, hx, [leaf, *hx_leaves])
        where = f"{dtype} {form}"
        for k, (a, b) in enumerate(zip(outs_o + grads_o, outs_r + grads_r, strict=True)):
            what = f"{where} {'output' if k < len(outs_o) else 'gradient'} {k}"
            torch.testing.assert_close(a, b, **tol(dtype), msg=lambda m, w=what: f"{w}: {m}")


@pytest.mark.parametrize("cls_name", ["RNN", "GRU", "LSTM"])
def test_default_state_is_zeros(cls_name):
    """``hx=None`` equals passing zeros, for every input form."""
    ref, ours = make_pair(cls_name, torch.float64, input_size=I, hidden_size=H, num_layers=2)
    for form in FORMS:
        inp, _ = make_input(form, False, torch.float64)
        out_r, state_r = ref(inp)
        out_o, state_o = ours(inp)
        out_r = getattr(out_r, "data", out_r)
        out_o = getattr(out_o, "data", out_o)
        torch.testing.assert_close(out_o, out_r)
        for a, b in zip(
            state_o if isinstance(state_o, tuple) else (state_o,),
            state_r if isinstance(state_r, tuple) else (state_r,),
            strict=True,
        ):
            torch.testing.assert_close(a, b)
