"""One recurrent forecaster for a whole collection of series: groups of :class:`RecurrentForecaster` ensembles
that read different look-backs, combined by the median.

Dimensions: B batch (one window of one series per row), W_max the longest look-back, W_g group g's look-back,
H horizon, Q quantile levels, K members over all groups.

Every row is one series' window in the scaled space (log values, or values over the series' mean absolute
value: see :mod:`rnnlab.tasks.forecast_global`), left-padded with its first value where the series is shorter
than the look-back, with an ``observed`` flag (B, W_max, 1) that says which steps are real. Each group's
members normalise their window by its own level (the mean of its last season, see
:mod:`rnnlab.models.forecaster`), so the network forecasts a deviation from that level: a model learned on a
thousand series does not carry one series' scale or growth into another (the per-window normalisation of
N-BEATS, Oreshkin et al. 2020, and of DeepAR, Salinas et al. 2020)::

    q_k = member_k(x[:, -W_g:], observed[:, -W_g:])      # (B, H, Q), monotone in Q
    q   = median_k(q_k)                                  # (B, H, Q): the median over every member of every
                                                         # group (order statistics keep q monotone)
    q   = q_0.5 + spread_side * (q - q_0.5)              # calibrated (split conformal, see forecast_fit)

Members differ by look-back (diversity across look-backs, as N-BEATS' ensemble) and by initial weights.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import Tensor, nn

from rnnlab.models.forecaster import ForecasterConfig, RecurrentForecaster

__all__ = ["GlobalForecaster"]


class GlobalForecaster(nn.Module):
    """Groups of recurrent ensembles over look-backs ``windows``; ``config`` is each group's template (its
    ``window`` is replaced by the group's; ``num_features`` is 1: the observed flag).

    ``uncalibrated(x, observed)`` -> every member's quantiles (B, K, H, Q); ``forward`` -> the calibrated
    median over members (B, H, Q), in the scaled space, or with ``members=True`` the uncalibrated members'
    (what training fits; through ``forward`` so that DistributedDataParallel sees the call).
    """

    def __init__(self, config: ForecasterConfig, windows: list[int]) -> None:
        super().__init__()
        if not windows or any(not isinstance(w, int) or w < 2 for w in windows):
            raise ValueError(f"windows: expected look-backs >= 2, received {windows!r}")
        self.windows = sorted(set(windows))
        self.config = replace(config, window=max(self.windows), num_features=1).validate()
        self.groups = nn.ModuleList(RecurrentForecaster(replace(self.config, window=w)) for w in self.windows)
        self.median_index = self.groups[0].median_index
        self.register_buffer("spread", torch.ones(2))  # (s_below, s_above)

    @property
    def levels(self) -> tuple[float, ...]:
        return self.config.levels

    def set_spread(self, below: float, above: float) -> None:
        """Scale the quantiles' distances from the median below / above it."""
        if not (below > 0 and above > 0):
            raise ValueError(f"spread: expected two numbers > 0, received ({below!r}, {above!r})")
        self.spread.copy_(torch.tensor([below, above], dtype=self.spread.dtype))

    def _check(self, x: Tensor, observed: Tensor) -> None:
        W = self.config.window
        if x.dim() != 2 or x.shape[1] != W:
            raise ValueError(f"x: expected (B, window={W}), received {tuple(x.shape)}")
        if observed.shape != (*x.shape, 1):
            raise ValueError(
                f"observed: expected {(*x.shape, 1)} (B, W, 1), received {tuple(observed.shape)}"
            )

    def uncalibrated(self, x: Tensor, observed: Tensor) -> Tensor:
        """Every member's quantiles (B, K, H, Q) from windows ``x`` (B, W_max) and flags ``observed``
        (B, W_max, 1)."""
        self._check(x, observed)
        out = [
            g.uncalibrated(x[:, -w:], observed[:, -w:])
            for g, w in zip(self.groups, self.windows, strict=True)
        ]
        return torch.cat(out, dim=1)  # (B, K, H, Q)

    def forward(self, x: Tensor, observed: Tensor, members: bool = False) -> Tensor:
        """The calibrated median over members (B, H, Q); ``members``: every member's, uncalibrated
        (B, K, H, Q)."""
        if members:
            return self.uncalibrated(x, observed)
        q = self.uncalibrated(x, observed).median(dim=1).values  # (B, H, Q)
        Q, i = q.shape[-1], self.median_index
        median = q[..., i : i + 1]  # (B, H, 1)
        one = torch.ones_like(self.spread[:1])
        scale = torch.cat([self.spread[:1].expand(i), one, self.spread[1:].expand(Q - i - 1)]).to(q.dtype)
        return median + scale * (q - median)

    def predict(self, x: Tensor, observed: Tensor) -> Tensor:
        return self.forward(x, observed)
