"""Using a trained forecasting run: ``Forecaster.from_checkpoint("runs/air").predict(history)``.

The checkpoint alone rebuilds everything: the model config, the scaler fitted before the holdout, the
frequency (for the calendar features and the dates of the forecast) and the end of the training data's
series with its last ``window`` values, so that ``predict()`` with no history forecasts the next H steps
after the series the run was trained on.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from rnnlab.data.series import FREQS, Scaler, Series, calendar_features, future_times
from rnnlab.data.sources import DataError
from rnnlab.inference.predictor import resolve_checkpoint
from rnnlab.models.forecaster import ForecasterConfig, RecurrentForecaster
from rnnlab.training.checkpoint import CheckpointError, load_checkpoint

__all__ = ["Forecaster", "window_times"]


def window_times(end: np.datetime64, freq: str, n: int) -> np.ndarray:
    """The ``n`` timestamps ending at ``end`` (inclusive), one ``freq`` step apart: (n,)."""
    unit, step = FREQS[freq]
    return np.datetime64(end, unit) - np.arange(n - 1, -1, -1) * np.timedelta64(step, unit)


class Forecaster:
    """A trained forecaster with its scaler and frequency, in eval mode.

    Args:
        model: the ensemble.
        scaler: the scaling fitted before the holdout.
        freq: the series' frequency (one of :data:`rnnlab.data.series.FREQS`).
        tail: the last ``window`` values of the series the run was trained on, and ``end`` its last time.
    """

    def __init__(
        self, model: RecurrentForecaster, scaler: Scaler, freq: str, tail: np.ndarray, end, device="cpu"
    ):
        self.model = model.to(device).eval()
        self.scaler = scaler
        self.freq = freq
        self.tail = np.asarray(tail, dtype=np.float64)
        self.end = np.datetime64(end)
        self.device = torch.device(device)

    @property
    def config(self) -> ForecasterConfig:
        return self.model.config

    @property
    def levels(self) -> tuple[float, ...]:
        return self.model.config.levels

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device = "cpu") -> Forecaster:
        """Load a run folder (its ``best/``) or a checkpoint folder; CheckpointError names any problem."""
        ckpt = load_checkpoint(resolve_checkpoint(path), device=device)
        meta = ckpt.meta
        if "collection" in meta:  # a model across many series: rnnlab.tasks.forecast_global
            raise CheckpointError(
                f"checkpoint {str(ckpt.path)!r} is a collection run ({meta['collection'].get('name')}): "
                "ONNX export and this class take one-series forecast runs only; forecast with "
                "rnnlab predict RUN --data FILE or rnnlab serve RUN"
            )
        missing = [k for k in ("config", "scaler", "freq", "tail", "end") if k not in meta]
        if missing:
            raise CheckpointError(
                f"checkpoint {str(ckpt.path)!r}: meta.json lacks {missing}; not a forecaster"
            )
        try:
            model = RecurrentForecaster(ForecasterConfig.from_dict(meta["config"]["model"]))
            model.load_state_dict(ckpt.state_dict, strict=True)
            scaler = Scaler(**meta["scaler"])
        except (KeyError, TypeError, ValueError, RuntimeError) as err:
            raise CheckpointError(
                f"checkpoint {str(ckpt.path)!r} does not describe a valid forecaster: {err}"
            ) from None
        return cls(model, scaler, meta["freq"], meta["tail"], meta["end"], device)

    def forecast_windows(self, windows: np.ndarray, ends: Sequence[np.datetime64]) -> np.ndarray:
        """Quantiles (N, H, Q) in the series' units after each of N windows (N, W) ending at ``ends``."""
        c = self.config
        x = self.scaler.transform(windows)  # (N, W)
        cal = np.stack([calendar_features(window_times(e, self.freq, c.window), self.freq) for e in ends])
        with torch.no_grad():
            q = self.model.predict(
                torch.as_tensor(x, dtype=torch.float32, device=self.device),  # (N, W)
                torch.as_tensor(cal, dtype=torch.float32, device=self.device),  # (N, W, F)
            )  # (N, H, Q)
        out = self.scaler.inverse(q.double().cpu().numpy())
        return np.sort(out, axis=-1)  # exp keeps the order; sort only guards float32 ties

    def predict(self, history: Series | Sequence[float] | np.ndarray | None = None, last_time=None) -> dict:
        """The next H values after ``history``, with quantiles.

        Args:
            history: a :class:`~rnnlab.data.series.Series`, or at least ``window`` numbers (the last ones
                are read); None: the series the run was trained on (its last ``window`` values).
            last_time: the time of the last value of a plain list of numbers (default: the end of the
                training run's series); it dates the forecast and sets the calendar features.

        Returns:
            ``times`` (H ISO strings), ``forecast`` (the median, H floats), ``quantiles``
            (``{"0.1": [H floats], ...}``) and ``horizon``.
        """
        c = self.config
        if history is None:
            values, end = self.tail, self.end
        elif isinstance(history, Series):
            if history.freq != self.freq:
                raise DataError(f"history: a {history.freq}ly series; the model forecasts {self.freq}ly data")
            values, end = history.values, history.times[-1]
        else:
            try:
                values = np.asarray(history, dtype=np.float64)
            except (TypeError, ValueError):
                raise DataError("history: expected a sequence of numbers") from None
            end = self.end if last_time is None else np.datetime64(last_time)
        if values.ndim != 1 or len(values) < c.window:
            raise DataError(
                f"history: expected at least window={c.window} values (1-D), received shape {values.shape}"
            )
        if not np.isfinite(values).all():
            raise DataError("history: expected finite numbers, received NaN or infinity")
        q = self.forecast_windows(values[None, -c.window :], [end])[0]  # (H, Q)
        median = self.levels.index(0.5)
        times = future_times(end, self.freq, c.horizon)
        return {
            "times": [str(t) for t in times],
            "forecast": q[:, median].tolist(),
            "quantiles": {f"{level:g}": q[:, i].tolist() for i, level in enumerate(self.levels)},
            "horizon": c.horizon,
        }
