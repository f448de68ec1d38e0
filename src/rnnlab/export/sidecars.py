"""The sidecars of forecast and charlm runs: what a program without Python needs beside the ONNX file.

* forecast: window, horizon, quantile levels, the scaler and its inverse, the calendar feature recipe, the
  frequency, the last timestamp and the last ``window`` values of the training series (so that the sidecar
  alone reproduces ``rnnlab predict RUN``, which forecasts the horizon after that series);
* charlm: the vocabulary with ``pad_id`` / ``unk_id``, the state shapes and the sampling loop (so that the
  sidecar alone reproduces ``rnnlab sample RUN --temperature 0``).

Each function exports the run's best checkpoint to ``output`` and returns the sidecar's dict (without its
``format`` / ``version`` keys, which :func:`rnnlab.export.run.export_run` adds).
"""

from __future__ import annotations

from pathlib import Path

import torch

from rnnlab.export.exporter import to_onnx

__all__ = ["CALENDAR_RECIPE", "CALENDAR_VALUES", "export_forecast", "export_charlm"]

# The calendar features of each frequency, in column order: each (value, cycle) gives the two columns
# sin(2 pi value / cycle), cos(2 pi value / cycle). The same table as rnnlab.data.series.calendar_features
# (a test checks every frequency against it, so the two cannot drift apart unnoticed).
CALENDAR_RECIPE: dict[str, list[tuple[str, float]]] = {
    "hour": [("hour", 24), ("weekday", 7)],
    "day": [("weekday", 7), ("month", 12)],
    "week": [("day_of_year", 365.25)],
    "month": [("month", 12)],
    "quarter": [("month", 12)],
    "year": [],
}
CALENDAR_VALUES = {
    "month": "month of the year, 0 (January) .. 11",
    "day_of_year": "days since 1 January of the same year, 0 .. 365",
    "weekday": "day of the week, 0 (Monday) .. 6",
    "hour": "hour of the day, 0 .. 23",
}


def export_forecast(run_dir: Path, output: Path, dynamic: bool) -> dict:
    """Export a forecast run; returns its sidecar (see the module docstring)."""
    from rnnlab.data.series import FREQS, future_times
    from rnnlab.inference.forecaster import Forecaster

    f = Forecaster.from_checkpoint(run_dir)
    c = f.config
    example = (torch.zeros(2, c.window), torch.zeros(2, c.window, c.num_features))  # shapes, not values
    to_onnx(f.model, example, output, dynamic=dynamic)
    unit, step = FREQS[f.freq]
    s = f.scaler
    return {
        "task": "forecast",
        "model": output.name,
        "inputs": {
            "x": f"float32 (B, {c.window}): the last window values, each scaled as 'scaling.transform' says",
            "calendar": f"float32 (B, {c.window}, {c.num_features}): the calendar features of those "
            "window times, as 'calendar' says",
        },
        "outputs": {
            "quantiles": f"float32 (B, {c.horizon}, {len(c.levels)}): the quantiles of the next horizon "
            "values, in the scaled space (the ensemble's mean); invert as 'scaling.inverse' says"
        },
        "window": c.window,
        "horizon": c.horizon,
        "quantiles": list(c.levels),
        "median_index": c.levels.index(0.5),
        "ensemble": c.ensemble,
        "scaling": {
            "log": s.log,
            "mean": s.mean,
            "std": s.std,
            "transform": "z = ((log(y) if log else y) - mean) / std, in float64, then float32",
            "inverse": "y = exp(z * std + mean) if log else z * std + mean (in float64), then sort each "
            "step's quantiles ascending (a guard against float32 ties; rnnlab does the same)",
        },
        "freq": f.freq,
        "step": {"unit": unit, "count": step, "note": "numpy datetime64 unit: h, D, M or Y"},
        "calendar": {
            "features": [[value, cycle] for value, cycle in CALENDAR_RECIPE[f.freq]],
            "columns": "for each [value, cycle] in order: sin(2 pi value / cycle), cos(2 pi value / cycle)",
            "values": {k: v for k, v in CALENDAR_VALUES.items() if k in dict(CALENDAR_RECIPE[f.freq])},
            "times": "the window's times: the last value's time and the window - 1 before it, one step "
            "apart (count units of unit each)",
        },
        "last_time": str(f.end),
        "tail": f.tail.tolist(),
        "forecast_times": {
            "rule": "the horizon times after the last value's, one step apart",
            "after_tail": [str(t) for t in future_times(f.end, f.freq, c.horizon)],
        },
        "model_config": c.to_dict(),
    }


def export_charlm(run_dir: Path, output: Path, dynamic: bool) -> dict:
    """Export a charlm run; returns its sidecar (see the module docstring)."""
    from rnnlab.inference.sampler import Sampler

    sampler = Sampler.from_checkpoint(run_dir)
    model, vocab = sampler.model, sampler.vocab
    c = model.config
    to_onnx(model, (torch.tensor([[2, 3, 2], [3, 2, 3]]) % c.vocab_size,), output, dynamic=dynamic)
    lstm = model.has_cell_state
    state = {"h0": ["L", "B", "H"]} | ({"c0": ["L", "B", "H"]} if lstm else {})
    inputs = {
        "ids": "int64 (B, T): character ids (a chunk; T = 1 to step)",
        "h0": "float32 (L, B, H): the state before the chunk, zeros to start",
    }
    outputs = {
        "logits": "float32 (B, T, V): the scores of the next character after each position",
        "h_n": "float32 (L, B, H): the state after the chunk; feed it back as h0",
    }
    if lstm:
        inputs["c0"] = "float32 (L, B, H): the cell state before the chunk, zeros to start"
        outputs["c_n"] = "float32 (L, B, H): the cell state after the chunk; feed it back as c0"
    newline = vocab.index.get("\n", 2)
    return {
        "task": "charlm",
        "model": output.name,
        "inputs": inputs,
        "outputs": outputs,
        "state": {
            "names": list(state),
            "shape": {"L": c.num_layers, "H": c.hidden_size},
            "next": {"h0": "h_n"} | ({"c0": "c_n"} if lstm else {}),
        },
        "vocab": {
            "tokens": list(vocab.tokens),
            "pad_id": vocab.pad_id,
            "unk_id": vocab.unk_id,
            "note": "a character's id is its index; one token per character, whitespace included",
        },
        "sampling": {
            "prime": "each character of the prime is one id (unseen ones: unk_id); an empty prime is "
            f"[{newline}]; a prime of only unseen characters is an error",
            "loop": "run the prime as one chunk from zero state; take the last position's logits; set "
            "pad_id and unk_id to -inf; pick the next id (temperature 0: argmax; else softmax(logits / "
            "temperature) after top-k / top-p); run it as a chunk of one with the state carried; repeat",
            "empty_prime_id": newline,
        },
        "model_config": c.to_dict(),
    }
