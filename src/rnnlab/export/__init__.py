"""rnnlab.export: recurrent layers and task models to ONNX.

* :func:`to_onnx` (:mod:`rnnlab.export.exporter`): a layer of :mod:`rnnlab.nn`, the sentiment classifier,
  the seq2seq model, the forecaster or the char LM to ONNX; each recurrent layer becomes ONNX's own
  ``RNN`` / ``GRU`` / ``LSTM`` operator (an LSTM with projection: a ``Scan``), with a free batch size and
  length (a forecaster's window is its own);
* :func:`export_run` (:mod:`rnnlab.export.run`, :mod:`rnnlab.export.sidecars`): a trained run folder of any
  of those four tasks to ONNX plus a JSON sidecar;
* :func:`add_subcommand` (:mod:`rnnlab.export.command`): ``rnnlab export RUN -o FILE.onnx``.

Importing this package imports neither torch nor onnx; the functions load them when called.
"""

from rnnlab.export.command import add_subcommand

__all__ = ["to_onnx", "export_run", "ExportError", "add_subcommand"]


def __getattr__(name: str):
    # Lazy, so the command line can register `export` without importing torch (PEP 562).
    if name in ("to_onnx", "ExportError"):
        from rnnlab.export import exporter

        return getattr(exporter, name)
    if name == "export_run":
        from rnnlab.export.run import export_run

        return export_run
    raise AttributeError(f"module 'rnnlab.export' has no attribute {name!r}")
