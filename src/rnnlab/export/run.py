"""``export_run``: a trained run folder becomes an ONNX file plus a JSON sidecar that a program in any
language can use (vocabulary, labels, preprocessing, the graph's inputs and outputs).

Sentiment runs give one file, ``FILE.onnx`` (``ids``, ``lengths`` -> ``logits`` [, ``attention``]); translate
runs give the encoder and one decoder step, ``FILE.encoder.onnx`` and ``FILE.decoder.onnx``; forecast runs
``FILE.onnx`` (``x``, ``calendar`` -> ``quantiles``) with the scaler, the calendar recipe and the end of the
series; charlm runs ``FILE.onnx`` (``ids``, ``h0`` [, ``c0``] -> ``logits``, ``h_n`` [, ``c_n``]) with the
vocabulary and the sampling loop (see :func:`rnnlab.export.to_onnx`). The sidecar is ``FILE.json`` in every
case; :mod:`rnnlab.export.sidecars` writes the forecast and charlm ones.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from rnnlab.export.exporter import ExportError, to_onnx

__all__ = ["BUNDLED", "SIDECAR_FORMAT", "export_hook", "export_run", "export_sentiment", "export_translate"]

SIDECAR_FORMAT = "rnnlab-onnx"
# The decoder step's output that becomes each state input of the next step.
_NEXT_STATE = {"h0": "h_n", "c0": "c_n", "feed": "feed_n"}


def _tokenizer_spec(tokenizer) -> dict:
    """The tokenizer, described so that another language can reproduce it."""
    from rnnlab.data import text

    spec = dict(tokenizer.to_dict())
    if spec["name"] == "char":
        spec["rule"] = "lowercase if 'lower', then every character that is not whitespace is one token"
    else:
        spec["rule"] = "lowercase if 'lower', then every match of 'pattern' (Python re, Unicode) is one token"
        spec["pattern"] = text._WORD.pattern  # the one definition, so the sidecar cannot drift from it
    return spec


def _example_ids(vocab_size: int, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A padded example batch (2, 3) with lengths (3, 2): the export traces its shapes, not its values."""
    ids = torch.tensor([[2, 3, 4], [4, 2, pad_id]]) % vocab_size
    return ids, torch.tensor([3, 2])


def _write_sidecar(path: Path, sidecar: dict) -> Path:
    from rnnlab.training import atomic_write_text

    atomic_write_text(path, json.dumps(sidecar, indent=2, ensure_ascii=False) + "\n")
    return path


def export_sentiment(run_dir: Path, output: Path, dynamic: bool) -> dict:
    """Export a sentiment run to ``output``; returns its sidecar (without ``format`` / ``version``)."""
    from rnnlab.inference.predictor import Predictor

    predictor = Predictor.from_checkpoint(run_dir)
    model, vocab = predictor.model, predictor.vocab
    to_onnx(model, _example_ids(len(vocab), vocab.pad_id), output, dynamic=dynamic)
    attention = model.config.pooling == "attention"
    outputs = {"logits": "float32 (B, C): class scores; probabilities = softmax over the last axis"}
    if attention:
        outputs["attention"] = (
            "float32 (B, T): each token's attention weight, zero at padding, rows sum to one"
        )
    return {
        "task": "sentiment",
        "model": output.name,
        "inputs": {
            "ids": "int64 (B, T): token ids, padded with pad_id after each text's end",
            "lengths": "int64 (B,): tokens per text, each in [1, T]",
        },
        "outputs": outputs,
        "labels": predictor.label_names,
        "preprocessing": {
            "tokenizer": _tokenizer_spec(predictor.tokenizer),
            "max_len": predictor.max_len,
            "truncate": "keep the first max_len tokens",
            "unknown": "a token not in vocab.tokens maps to unk_id",
            "empty": "a text without tokens becomes [unk_id] (length 1)",
            "pad_id": vocab.pad_id,
            "unk_id": vocab.unk_id,
        },
        "postprocessing": "label = labels[argmax(logits)]; probabilities = softmax(logits)",
        "vocab": {"tokens": list(vocab.tokens), "note": "a token's id is its index"},
        "model_config": model.config.to_dict(),
    }


def export_translate(run_dir: Path, output: Path, dynamic: bool) -> dict:
    """Export a translate run to ``FILE.encoder.onnx`` and ``FILE.decoder.onnx``; returns its sidecar."""
    from rnnlab.tasks.translate import load_translator

    t = load_translator(run_dir)
    c = t.model.config
    encoder, decoder = to_onnx(t.model, _example_ids(c.src_vocab_size, c.pad_id), output, dynamic=dynamic)
    state = ["h0"] + (["c0"] if c.cell == "lstm" else []) + (["feed"] if c.uses_feeding else [])
    return {
        "task": "translate",
        "encoder": encoder.name,
        "decoder": decoder.name,
        "encoder_io": {"inputs": ["src", "src_lengths"], "outputs": ["memory", *state]},
        "decoder_io": {
            "inputs": ["y_prev", *state, "memory", "src_lengths"],
            "outputs": ["logits", *(_NEXT_STATE[s] for s in state)]
            + ([] if c.attention == "none" else ["attention"]),
            "loop": "start with y_prev = bos_id and the encoder's state; feed h_n / c_n / feed_n back as "
            "h0 / c0 / feed; greedy: y = argmax(logits) until eos_id or max_len tokens",
        },
        "preprocessing": {
            "src_tokenizer": _tokenizer_spec(t.src_tokenizer),
            "tgt_tokenizer": _tokenizer_spec(t.tgt_tokenizer),
            "pad_id": c.pad_id,
            "unk_id": t.src_vocab.unk_id,
            "bos_id": c.bos_id,
            "eos_id": c.eos_id,
            "max_len": t.max_len,
            "detokenize": "join target tokens with '' (char) or ' ' (word)",
        },
        "src_vocab": {"tokens": list(t.src_vocab.tokens)},
        "tgt_vocab": {"tokens": list(t.tgt_vocab.tokens)},
        "model_config": t.model.config_dict(),
    }


def export_run(run_dir: str | Path, output_path: str | Path, *, dynamic: bool = True) -> Path:
    """Export the best checkpoint of a run folder to ONNX, with a JSON sidecar beside it; returns the sidecar.

    Args:
        run_dir: a sentiment, translate, forecast or charlm run folder (its ``best/`` checkpoint is used).
        output_path: ``FILE.onnx``. A sentiment run writes it; a translate run writes ``FILE.encoder.onnx``
            and ``FILE.decoder.onnx`` instead. The sidecar is ``FILE.json``.
        dynamic: free batch size and length (the default; a forecast model's window is always fixed).

    Raises:
        ExportError: an output path not ending in ``.onnx``, a run of another task, or a model with no
            ONNX export (a variant cell); CheckpointError / DataError: the run cannot be read.
    """
    from rnnlab.inference.predictor import resolve_checkpoint
    from rnnlab.training.checkpoint import load_checkpoint

    run_dir, output = Path(run_dir), Path(output_path)
    if output.suffix != ".onnx":
        raise ExportError(f"output_path: expected a file name ending in .onnx, received {str(output)!r}")
    from rnnlab.tasks import task_of_run

    # The task as the run folder records it; a folder that records none is read as a checkpoint (whose
    # error names what is missing).
    task = task_of_run(run_dir) or load_checkpoint(resolve_checkpoint(run_dir)).meta.get("task")
    # Every file this export may write; those it creates are removed again if it fails half-way, so that
    # a failed export leaves no model without its sidecar (nor an encoder without its decoder).
    outputs = [output, output.with_suffix(".json"), *(output.with_suffix(f".{p}.onnx") for p in _PARTS)]
    new = [p for p in outputs if not p.exists()]
    exporter = export_hook(task, run_dir)
    try:
        sidecar = {"format": SIDECAR_FORMAT, "version": 1, **exporter(run_dir, output, dynamic)}
        return _write_sidecar(output.with_suffix(".json"), sidecar)
    except BaseException as err:
        for path in new:
            path.unlink(missing_ok=True)
        if isinstance(err, OSError):
            reason = err.strerror or type(err).__name__
            raise ExportError(
                f"output_path {str(output)!r}: cannot write {err.filename or output} ({reason})"
            ) from None
        raise


_PARTS = ("encoder", "decoder")  # a translate run's two files

# The bundled tasks' exports (a task module's own EXPORT wins over its line here). Each is
# ``export(run_dir, output, dynamic) -> dict``: it writes the ONNX file(s) and returns the sidecar's dict
# without ``format`` / ``version``, which export_run adds before writing FILE.json.
BUNDLED = {
    "sentiment": "rnnlab.export.run:export_sentiment",
    "translate": "rnnlab.export.run:export_translate",
    "forecast": "rnnlab.export.sidecars:export_forecast",
    "charlm": "rnnlab.export.sidecars:export_charlm",
}


def export_hook(task: str, run_dir: Path):
    """The export of ``task``: its module's ``EXPORT = "package.module:function"`` (an import string, so
    the task module imports nothing of ``export/``), else its line in :data:`BUNDLED`."""
    import importlib

    from rnnlab.tasks import TASKS, get_task

    spec = getattr(get_task(task), "EXPORT", None) if task in TASKS else None
    spec = spec or BUNDLED.get(task)
    if spec is None:
        raise ExportError(
            f"run_dir: expected a run of a task with an ONNX export ({', '.join(sorted(BUNDLED))}, or one "
            f"whose module names EXPORT), received task {task!r} in {run_dir}"
        )
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)
