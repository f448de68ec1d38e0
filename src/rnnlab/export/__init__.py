"""rnnlab.export: recurrent layers and task models to ONNX (see :func:`to_onnx`)."""

from rnnlab.export.exporter import ExportError, to_onnx

__all__ = ["to_onnx", "ExportError"]
