"""Helpers for test_torch_suite.py: PyTorch's own RNN test inputs, ported, and a torch-vs-rnnlab runner.

The sample lists are our port of the ModuleInfo entries for torch.nn's recurrent modules in
``torch/testing/_internal/common_modules.py`` (``module_inputs_torch_nn_RNN_GRU_Cell``,
``module_inputs_torch_nn_LSTMCell``, ``module_inputs_torch_nn_RNN_GRU``, ``module_inputs_torch_nn_LSTM`` and
the ``module_error_inputs_*`` of the same modules). Importing ``module_db`` itself is not possible in the
suite: it needs the ``expecttest`` package and its import changes process-wide state (it freezes the
``torch.backends`` flags, parses ``sys.argv``, wraps TorchScript calls). ``module_db_description`` runs it
in a child process instead, and a test checks that this port describes the same samples.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

import rnnlab.nn as rnn

LIBS = {"torch": nn, "rnnlab": rnn}
LAYERS = ["RNN", "GRU", "LSTM"]
CELLS = ["RNNCell", "GRUCell", "LSTMCell"]

# Builds one forward input from (shape, dtype, requires_grad); a nested tuple of shapes is an LSTM state.
Shapes = tuple


@dataclass
class Sample:
    """One ModuleInfo sample: constructor arguments and the shapes of the forward arguments."""

    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    forward: tuple = ()  # shapes, e.g. ((3, 2), (4, 3)) or ((3, 2), ((2, 2), (2, 3))) for an LSTM state

    def inputs(self, dtype: torch.dtype, requires_grad: bool, seed: int = 0) -> tuple:
        g = torch.Generator().manual_seed(seed)

        def make(shape):
            if shape and isinstance(shape[0], tuple):
                return tuple(make(s) for s in shape)
            return torch.randn(shape, dtype=dtype, generator=g).requires_grad_(requires_grad)

        return tuple(make(s) for s in self.forward)


@dataclass
class ErrorSample:
    """One ModuleErrorInput: where the error is raised, its type and the regex torch's test searches for."""

    sample: Sample
    on_forward: bool
    error: type
    regex: str
    input_dtype: torch.dtype | None = None  # forward inputs' dtype when it differs from the test's dtype
    module_dtype: bool = False  # whether the module is built with the test's dtype (else float32)


def samples(name: str) -> list[Sample]:
    """Our port of the ModuleInfo forward samples of torch.nn.<name> (all unbatched inputs)."""
    if name in ("RNNCell", "GRUCell"):
        out = [Sample((5, 10), {}, ((5,), (10,))), Sample((5, 10), {"bias": True}, ((5,), (10,)))]
        if name == "RNNCell":
            out.append(Sample((5, 10), {"bias": True, "nonlinearity": "relu"}, ((5,), (10,))))
        return out
    if name == "LSTMCell":
        state = ((10,), (10,))
        return [Sample((5, 10), {}, ((5,), state)), Sample((5, 10), {"bias": True}, ((5,), state))]
    out = []
    if name == "LSTM":
        for bias, batch_first, bidirectional, proj_size in itertools.product(*[(False, True)] * 3, (0, 2)):
            kw = {"input_size": 2, "hidden_size": 3, "num_layers": 2, "proj_size": proj_size,
                  "batch_first": batch_first, "bias": bias, "bidirectional": bidirectional}  # fmt: skip
            rows = 4 if bidirectional else 2  # D*L
            state = ((rows, proj_size or 3), (rows, 3))
            out += [Sample((), kw, ((2, 2),)), Sample((), dict(kw), ((3, 2), state))]
        return out
    nonlinearities = ("relu", "tanh") if name == "RNN" else (None,)
    for nl, bias, batch_first, bidirectional in itertools.product(nonlinearities, *[(False, True)] * 3):
        kw = {"input_size": 2, "hidden_size": 2, "num_layers": 2, "batch_first": batch_first, "bias": bias,
              "bidirectional": bidirectional}  # fmt: skip
        if nl is not None:
            kw["nonlinearity"] = nl
        out.append(Sample((), kw, ((3, 2),)))
        out.append(Sample((), {**kw, "hidden_size": 3}, ((3, 2), (4 if bidirectional else 2, 3))))
    return out


def error_samples(name: str, dtype: torch.dtype) -> list[ErrorSample]:
    """Our port of the ModuleErrorInput lists of torch.nn.<name>."""
    if name in CELLS:
        lstm = name == "LSTMCell"

        def state(*shape):
            return (shape, shape) if lstm else shape

        hidden = "hx\\[0\\]" if lstm else "hidden"
        out = [
            ErrorSample(Sample((10, 20), {}, ((3, 11), state(3, 20))), True, RuntimeError,
                        "input has inconsistent input_size: got 11 expected 10"),
            ErrorSample(Sample((10, 20), {}, ((3, 10), state(3, 21))), True, RuntimeError,
                        "hidden0 has inconsistent hidden_size: got 21, expected 20"),
            ErrorSample(Sample((10, 20), {}, ((3, 10), state(5, 20))), True, RuntimeError,
                        "Input batch size 3 doesn't match hidden0 batch size 5"),
            ErrorSample(Sample((10, 20), {}, ((3, 10), state(3, 1, 1, 20))), True, ValueError,
                        f"Expected {hidden} to be 1D or 2D, got 4D instead"),
        ]  # fmt: skip
        if not lstm:
            wrong = "hidden0 has inconsistent hidden_size: got 21, expected 20"
            for nl in ("relu", "tanh"):  # the third positional argument is bias, as in torch's list
                out.append(
                    ErrorSample(Sample((10, 20, nl), {}, ((3, 10), (3, 21))), True, RuntimeError, wrong)
                )
        return out
    other = torch.float64 if dtype == torch.float32 else torch.float32

    def ctor(error, regex, *args, **kwargs):
        return ErrorSample(Sample(args, kwargs), False, error, regex)

    return [
        ctor(ValueError, "hidden_size must be greater than zero", 10, 0, 1),
        ctor(ValueError, "num_layers must be greater than zero", 10, 10, 0),
        ErrorSample(Sample((3, 5), {}, ((2, 4, 3),)), True, ValueError,
                    r"RNN input dtype .* does not match weight dtype .* "
                    r"Convert input: input\.to\(.*\), or convert model: model\.to\(.*\)",
                    input_dtype=other, module_dtype=True),
        ctor(TypeError, "bias should be of type bool, got: int", 3, 5, bias=0),
        ctor(TypeError, "bias should be of type bool, got: int", 3, 5, bias=1),
        ctor(TypeError, "bias should be of type bool, got: str", 3, 5, bias="True"),
        ctor(TypeError, "batch_first should be of type bool, got: int", 3, 5, batch_first=0),
        ctor(TypeError, "batch_first should be of type bool, got: int", 3, 5, batch_first=1),
        ctor(TypeError, "batch_first should be of type bool, got: str", 3, 5, batch_first="False"),
        ctor(TypeError, "input_size should be of type int, got: float", 3.0, 5),
        ctor(TypeError, "input_size should be of type int, got: str", "10", 5),
        ctor(ValueError, "input_size must be greater than zero", 0, 5),
        ctor(ValueError, "input_size must be greater than zero", -1, 5),
        ctor(TypeError, "hidden_size should be of type int, got: float", 3, 5.0),
    ]  # fmt: skip


def describe(items: list) -> list:
    """A JSON-able description of Sample / ErrorSample lists, or of module_db's own ModuleInput lists."""

    def shapes(obj):
        if isinstance(obj, torch.Tensor):
            return list(obj.shape)
        return [shapes(o) for o in obj]

    def one(args, kwargs, forward):
        kwargs = {k: v for k, v in kwargs.items() if k not in ("device", "dtype")}
        return {"args": [repr(a) for a in args], "kwargs": {k: repr(v) for k, v in sorted(kwargs.items())},
                "forward": forward}  # fmt: skip

    out = []
    for item in items:
        if isinstance(item, Sample):
            nested = [
                [list(t) for t in s] if s and isinstance(s[0], tuple) else list(s) for s in item.forward
            ]
            out.append(one(item.args, item.kwargs, nested))
        elif isinstance(item, ErrorSample):
            desc = one(item.sample.args, item.sample.kwargs, describe([item.sample])[0]["forward"])
            desc.update(on_forward=item.on_forward, error=item.error.__name__, regex=item.regex)
            out.append(desc)
        else:  # a module_db ModuleInput or ErrorModuleInput (child process only)
            err = getattr(item, "module_error_input", None)
            mi = err if err is not None else item
            fwd = [] if mi.forward_input is None else shapes(mi.forward_input.args)
            desc = one(mi.constructor_input.args, mi.constructor_input.kwargs, fwd)
            if err is not None:
                desc.update(on_forward=item.error_on.name == "FORWARD_ERROR", error=item.error_type.__name__,
                            regex=item.error_regex)  # fmt: skip
            out.append(desc)
    return out


_CHILD = """
import json, sys, types, unittest
stub = types.ModuleType("expecttest"); stub.TestCase = unittest.TestCase  # the only name common_utils needs
sys.modules.setdefault("expecttest", stub)
sys.argv = sys.argv[:1]
import torch
from torch.testing._internal.common_modules import module_db
sys.path.insert(0, {here!r})
from torch_suite_helpers import describe
out = {{}}
for info in module_db:
    name = info.module_cls.__name__
    if info.module_cls is getattr(torch.nn, name, None) and name in {names!r}:
        kw = dict(device="cpu", dtype=torch.float64, requires_grad=False, training=True)
        out[name] = {{"samples": describe(info.module_inputs_func(info, **kw)),
                     "errors": describe(info.module_error_inputs_func(info, **kw)),
                     "train_and_eval_differ": info.train_and_eval_differ}}
print(json.dumps(out))
"""


def module_db_description(here: str) -> dict[str, Any] | str:
    """module_db's samples for the six modules, described in a child process; a string says why not."""
    code = _CHILD.format(here=here, names=LAYERS + CELLS)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        return proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "no output"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def outcome(fn: Callable[[Any], Any], lib: Any) -> tuple[str, Any]:
    """``("ok", value)`` or ``(exception type name, first line of its message)``."""
    try:
        return "ok", fn(lib)
    except Exception as e:  # noqa: BLE001 - the type is what is compared
        return type(e).__name__, str(e).splitlines()[0] if str(e) else ""


def assert_same_outcome(fn: Callable[[Any], Any], *, raises: bool, message: bool = True, **tol) -> Any:
    """Run ``fn(torch.nn)`` and ``fn(rnnlab.nn)``: the same exception type (and message), or close values.

    ``raises`` states what torch.nn does, so that a harness error common to both runs cannot pass.
    """
    ref, ours = outcome(fn, nn), outcome(fn, rnn)
    assert (ref[0] != "ok") == raises, f"torch.nn itself: {ref}"
    if ref[0] != "ok" or ours[0] != "ok":
        assert ours[0] == ref[0], f"rnnlab: {ours}, torch: {ref}"
        if message:
            assert ours[1] == ref[1], f"rnnlab: {ours[1]!r}\ntorch:  {ref[1]!r}"
        return None
    assert_equal_values(ours[1], ref[1], **tol)
    return ours[1]


def assert_equal_values(ours: Any, ref: Any, **tol) -> None:
    """Tensors close (``tol``), containers element by element, anything else equal."""
    if isinstance(ref, torch.Tensor):
        torch.testing.assert_close(ours, ref, **tol)
    elif isinstance(ref, (tuple, list)) and not isinstance(ref, torch.Size):
        assert type(ours) is type(ref) and len(ours) == len(ref), f"rnnlab: {ours!r}, torch: {ref!r}"
        for a, b in zip(ours, ref, strict=True):
            assert_equal_values(a, b, **tol)
    else:
        assert ours == ref, f"rnnlab: {ours!r}, torch: {ref!r}"


def build(lib: Any, name: str, *args, seed: int = 0, use_fused: bool | None = None, **kwargs) -> nn.Module:
    """``lib.<name>(*args, **kwargs)`` under ``seed`` (so torch's and rnnlab's weights are equal)."""
    torch.manual_seed(seed)
    module = getattr(lib, name)(*args, **kwargs)
    if use_fused is not None and hasattr(module, "use_fused"):
        module.use_fused = use_fused
    return module


def flat(out) -> tuple[torch.Tensor, ...]:
    """``(output, h_n)``, ``(output, (h_n, c_n))``, ``h`` or ``(h, c)`` as a flat tuple of tensors."""
    if isinstance(out, torch.Tensor):
        return (out,)
    return tuple(t for o in out for t in flat(o))
