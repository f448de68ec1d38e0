"""Recurrent forecaster: a window of past values (+ calendar features) -> all H future quantiles at once.

Dimensions: B batch, W window (past steps read), F calendar features, H horizon (steps forecast at once),
Q quantile levels, K ensemble members, Hd hidden size.

Each member maps a window ``x`` (B, W) of scaled values to quantiles (B, H, Q)::

    a = mean(x[:, -m:])                         # level: the mean of the last season (m = period), per row
    z = x - a                                   # the window relative to its level (instance normalisation)
    h = RNN([z, calendar])[:, -1]               # the encoder's last output (B, Hd)
    r = head(h)                                 # (B, H, Q) raw outputs
    median = a + highway(z) + r[..., median]    # highway: a linear map of the window (LSTNet's
                                                # autoregressive part, Lai et al. 2018): a linear start
    q_above = median + cumsum(softplus(r[..., above]))   # quantiles monotone by construction
    q_below = median - cumsum(softplus(r[..., below]))

The direct multi-step head forecasts every step from the same state (no recursive error build-up; Taieb et
al. 2012). The ensemble (K members with their own initial weights, trained side by side on the same batches)
averages the members' quantiles, which keeps them monotone.

Calibration: the buffer ``spread`` = (s_below, s_above), both 1 until the task calibrates it, scales each
quantile's distance from the median on its side (in the scaled space)::

    q_calibrated = median + s_side * (q - median)

so the quantiles stay monotone for any s > 0. :meth:`RecurrentForecaster.forward` and ``predict`` return
calibrated quantiles; training fits :meth:`RecurrentForecaster.uncalibrated` (the pinball loss must not see
the scale, or the weights would learn to undo it).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from inspect import signature

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnlab.models.classifier import ENCODERS

__all__ = ["ForecasterConfig", "RecurrentForecaster", "parse_quantiles", "pinball_loss"]


def parse_quantiles(text: str) -> tuple[float, ...]:
    """``"0.1,0.5,0.9"`` -> (0.1, 0.5, 0.9); the levels must be increasing in (0, 1) and include 0.5."""
    try:
        levels = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise ValueError(
            f"model.quantiles: expected comma-separated numbers such as 0.1,0.5,0.9, received {text!r}"
        ) from None
    if any(not 0 < q < 1 for q in levels) or list(levels) != sorted(set(levels)) or 0.5 not in levels:
        raise ValueError(
            f"model.quantiles: expected increasing levels in (0, 1) including 0.5, received {text!r}"
        )
    return levels


@dataclass
class ForecasterConfig:
    """Everything needed to rebuild the model; stored in every checkpoint."""

    cell: str = "lstm"  # "rnn" | "lstm" | "gru" | a variant of rnnlab.nn ("layernorm_lstm", "min_gru", ...)
    hidden_size: int = 32  # Hd
    num_layers: int = 1  # stacked recurrent layers
    dropout: float = 0.1  # on the encoder's last output, before the head
    window: int | None = None  # W, past steps read; None: chosen from the period by train()
    quantiles: str = "0.1,0.5,0.9"  # levels trained with the pinball loss; the median is the point forecast
    ensemble: int = 5  # K members averaged
    highway: bool = True  # add a linear map of the window to the median
    horizon: int = 0  # H, set by train() from data.horizon
    num_features: int = 0  # F, calendar features, set by train() from the frequency
    period: int = 1  # m, the seasonal period, set by train() from the frequency

    def validate(self) -> ForecasterConfig:
        if self.cell not in ENCODERS:
            raise ValueError(f"model.cell: expected one of {', '.join(ENCODERS)}, received {self.cell!r}")
        for name in ("hidden_size", "num_layers", "ensemble", "period"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"model.{name}: expected an integer >= 1, received {value!r}")
        if self.window is not None and self.window < 2:
            raise ValueError(f"model.window: expected an integer >= 2 or none, received {self.window!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"model.dropout: expected a probability in [0, 1), received {self.dropout!r}")
        parse_quantiles(self.quantiles)
        return self

    @property
    def levels(self) -> tuple[float, ...]:
        return parse_quantiles(self.quantiles)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ForecasterConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"model config: unknown keys {unknown}; expected some of {sorted(known)}")
        return cls(**data).validate()


def _monotone(raw: Tensor, median_index: int) -> Tensor:
    """(…, Q) raw outputs -> increasing quantiles: the median as given, the others stepping away from it by
    softplus increments."""
    median = raw[..., median_index : median_index + 1]  # (…, 1)
    above = median + torch.cumsum(F.softplus(raw[..., median_index + 1 :]), dim=-1)  # (…, Q_above)
    below = median - torch.cumsum(F.softplus(raw[..., :median_index].flip(-1)), dim=-1).flip(
        -1
    )  # (…, Q_below)
    return torch.cat([below, median, above], dim=-1)  # (…, Q)


class _Member(nn.Module):
    """One forecaster of the ensemble: encoder, head and highway."""

    def __init__(self, c: ForecasterConfig) -> None:
        super().__init__()
        layer = ENCODERS[c.cell]
        between = (
            {"dropout": c.dropout} if c.num_layers > 1 and "dropout" in signature(layer).parameters else {}
        )
        self.encoder = layer(
            1 + c.num_features, c.hidden_size, num_layers=c.num_layers, batch_first=True, **between
        )
        self.num_quantiles = len(c.levels)
        self.dropout = nn.Dropout(c.dropout)
        self.head = nn.Linear(c.hidden_size, c.horizon * len(c.levels))
        self.highway = nn.Linear(c.window, c.horizon) if c.highway else None
        nn.init.zeros_(self.head.weight)  # start from the highway's linear forecast (and equal spreads)
        nn.init.zeros_(self.head.bias)

    def forward(self, z: Tensor, calendar: Tensor, median_index: int) -> Tensor:
        B = z.shape[0]
        inputs = torch.cat([z.unsqueeze(-1), calendar], dim=-1)  # (B, W, 1 + F)
        output, _ = self.encoder(inputs)  # (B, W, Hd)
        raw = self.head(self.dropout(output[:, -1])).view(B, -1, self.num_quantiles)  # (B, H, Q)
        if self.highway is not None:
            shift = self.highway(z).unsqueeze(-1)  # (B, H, 1)
            i = median_index
            raw = torch.cat([raw[..., :i], raw[..., i : i + 1] + shift, raw[..., i + 1 :]], dim=-1)
        return _monotone(raw, median_index)  # (B, H, Q)


class RecurrentForecaster(nn.Module):
    """An ensemble of recurrent forecasters (see the module docstring).

    ``forward(x, calendar)``: ``x`` (B, W) scaled past values, ``calendar`` (B, W, F) -> calibrated
    quantiles of every member (B, K, H, Q), in the scaled space. :meth:`predict` averages the members:
    (B, H, Q).
    """

    def __init__(self, config: ForecasterConfig) -> None:
        super().__init__()
        self.config = config.validate()
        if config.horizon < 1 or config.window is None:
            raise ValueError(
                f"model.horizon and model.window: expected to be set from the data by train(), received "
                f"horizon={config.horizon}, window={config.window}"
            )
        self.median_index = config.levels.index(0.5)
        self.members = nn.ModuleList(_Member(config) for _ in range(config.ensemble))
        self.register_buffer("spread", torch.ones(2))  # (s_below, s_above); set by set_spread

    def set_spread(self, below: float, above: float) -> None:
        """Scale the quantiles' distances from the median below / above it (see the module docstring)."""
        if not (below > 0 and above > 0):
            raise ValueError(f"spread: expected two numbers > 0, received ({below!r}, {above!r})")
        self.spread.copy_(torch.tensor([below, above], dtype=self.spread.dtype))

    def forward(self, x: Tensor, calendar: Tensor) -> Tensor:
        """Calibrated quantiles of every member (B, K, H, Q) in the scaled space."""
        q = self.uncalibrated(x, calendar)  # (B, K, H, Q)
        Q, i = q.shape[-1], self.median_index
        median = q[..., i : i + 1]  # (B, K, H, 1)
        s_below, s_above, one = self.spread[:1], self.spread[1:], torch.ones_like(self.spread[:1])
        scale = torch.cat([s_below.expand(i), one, s_above.expand(Q - i - 1)]).to(q.dtype)  # (Q,)
        return median + scale * (q - median)

    def uncalibrated(self, x: Tensor, calendar: Tensor) -> Tensor:
        """The members' quantiles before calibration (B, K, H, Q): what training fits."""
        c = self.config
        if x.dim() != 2 or x.shape[1] != c.window:
            raise ValueError(f"x: expected (B, window={c.window}), received {tuple(x.shape)}")
        if calendar.shape != (*x.shape, c.num_features):
            raise ValueError(
                f"calendar: expected {(*x.shape, c.num_features)} (B, W, F), received {tuple(calendar.shape)}"
            )
        level = x[:, -min(c.period, c.window) :].mean(dim=1, keepdim=True)  # (B, 1)
        z = x - level  # (B, W)
        out = torch.stack([m(z, calendar, self.median_index) for m in self.members], dim=1)  # (B, K, H, Q)
        return out + level[:, :, None, None]

    def predict(self, x: Tensor, calendar: Tensor) -> Tensor:
        """The ensemble's quantiles (B, H, Q): the members' averaged (each member's are monotone, so the
        average is)."""
        return self.forward(x, calendar).mean(dim=1)


def pinball_loss(quantiles: Tensor, target: Tensor, levels: tuple[float, ...], mask: Tensor | None = None):
    """Mean pinball loss ``max(q (y - ŷ_q), (q - 1)(y - ŷ_q))`` over the unmasked targets.

    Shapes: ``quantiles`` (B, K, H, Q) or (B, H, Q), ``target`` (B, H), ``mask`` (B, H) True where the
    target is known (None: all).
    """
    y = target[:, None, :, None] if quantiles.dim() == 4 else target[..., None]
    diff = y - quantiles  # (B, K, H, Q) or (B, H, Q)
    q = torch.tensor(levels, dtype=quantiles.dtype, device=quantiles.device)
    loss = torch.maximum(q * diff, (q - 1) * diff)
    if mask is None:
        return loss.mean()
    m = (mask[:, None, :, None] if quantiles.dim() == 4 else mask[..., None]).to(loss.dtype).expand_as(loss)
    return (loss * m).sum() / m.sum().clamp(min=1)
