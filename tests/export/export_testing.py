"""Shared helpers of the export tests: run an ONNX file in onnxruntime and compare with rnnlab."""

from __future__ import annotations

import numpy as np
import torch

# Float32 tolerance, scaled to the reference's magnitude (the "1e-5 scaled to the output").
ATOL = 1e-5
# Every difference measured by assert_close, as (what, difference): read by whoever wants the largest.
MEASURED: list[tuple[str, float]] = []


def session(path):
    """An onnxruntime session on the CPU with one thread (the test machine's cores are shared)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run(sess, **feeds) -> dict[str, np.ndarray]:
    """Run ``sess`` on named tensors; returns the outputs by name."""
    arrays = {
        name: value.numpy() if isinstance(value, torch.Tensor) else value for name, value in feeds.items()
    }
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, arrays), strict=True))


def assert_close(actual: np.ndarray, expected: torch.Tensor, what: str) -> float:
    """``max |actual - expected| <= ATOL * max(1, max |expected|)``; returns the difference."""
    expected = expected.detach().numpy()
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape}, expected {expected.shape}"
    diff = float(np.abs(actual - expected).max()) if expected.size else 0.0
    scale = max(1.0, float(np.abs(expected).max())) if expected.size else 1.0
    MEASURED.append((what, diff))
    assert diff <= ATOL * scale, f"{what}: max abs difference {diff:.3g} > {ATOL * scale:.3g}"
    return diff


def op_types(path) -> set[str]:
    """Every operator type in the model's main graph."""
    import onnx

    return {node.op_type for node in onnx.load(str(path)).graph.node}


def padded_lengths(lengths: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """lengths as a tensor and the (B, T) validity mask they imply."""
    L = torch.tensor(lengths)
    return L, torch.arange(int(L.max())).unsqueeze(0) < L.unsqueeze(1)
