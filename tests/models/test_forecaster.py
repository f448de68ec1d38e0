"""The recurrent forecaster: monotone quantiles whatever the weights, the pinball loss by hand, masking,
every encoder of rnnlab.nn, shapes checked at the door."""

from __future__ import annotations

import pytest
import torch

from rnnlab.models.classifier import ENCODERS
from rnnlab.models.forecaster import ForecasterConfig, RecurrentForecaster, parse_quantiles, pinball_loss

pytestmark = pytest.mark.usefixtures("one_thread")


def config(**changes) -> ForecasterConfig:
    base = dict(cell="gru", hidden_size=4, window=6, horizon=3, num_features=2, period=3, ensemble=2)
    return ForecasterConfig(**{**base, **changes})


def inputs(B=5, W=6, F=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, W, generator=g), torch.randn(B, W, F, generator=g)


def test_quantiles_are_monotone_even_with_large_random_weights():
    torch.manual_seed(0)
    model = RecurrentForecaster(config(quantiles="0.05,0.1,0.5,0.8,0.95"))
    for p in model.parameters():
        torch.nn.init.normal_(p, std=3.0)  # the head starts at zero; make every raw output matter
    q = model(*inputs())  # (B, K, H, Q)
    assert q.shape == (5, 2, 3, 5)
    assert (q.diff(dim=-1) > 0).all()
    assert (model.predict(*inputs()).diff(dim=-1) > 0).all()  # the members' average too


def test_the_head_starts_at_the_highway_forecast_around_the_level():
    torch.manual_seed(0)
    model = RecurrentForecaster(config(highway=False))
    x, cal = inputs()
    q = model.predict(x, cal)  # (B, H, Q); head zero: median = level, spreads softplus(0) = log 2
    level = x[:, -3:].mean(dim=1)  # the mean of the last period
    torch.testing.assert_close(q[..., 1], level[:, None].expand(-1, 3))
    torch.testing.assert_close(q[..., 2] - q[..., 1], torch.full((5, 3), torch.log(torch.tensor(2.0)).item()))


def test_pinball_loss_by_hand_and_masked_targets():
    levels = (0.1, 0.5, 0.9)
    q = torch.tensor([[[0.0, 1.0, 2.0], [0.0, 1.0, 2.0]]])  # (B=1, H=2, Q=3)
    y = torch.tensor([[3.0, 1.5]])  # (B, H)
    # step 1 (y=3): 0.1*3, 0.5*2, 0.9*1; step 2 (y=1.5): 0.1*1.5, 0.5*0.5, (0.9-1)*(-0.5)
    by_hand = [0.3, 1.0, 0.9, 0.15, 0.25, 0.05]
    torch.testing.assert_close(pinball_loss(q, y, levels), torch.tensor(sum(by_hand) / 6))
    mask = torch.tensor([[False, True]])
    torch.testing.assert_close(pinball_loss(q, y, levels, mask), torch.tensor(sum(by_hand[3:]) / 3))
    y_changed = torch.tensor([[100.0, 1.5]])  # a masked target does not count at all
    torch.testing.assert_close(pinball_loss(q, y_changed, levels, mask), pinball_loss(q, y, levels, mask))


def test_median_quantile_of_a_constant_target_learns_it():
    torch.manual_seed(0)
    model = RecurrentForecaster(config(ensemble=1, highway=True))
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    x, cal = inputs(B=16)
    y = x[:, -3:].mean(dim=1, keepdim=True).expand(-1, 3) + 1.0  # one above the level
    for _ in range(150):
        opt.zero_grad()
        loss = pinball_loss(model(x, cal), y, model.config.levels)
        loss.backward()
        opt.step()
    torch.testing.assert_close(model.predict(x, cal)[..., 1], y, atol=0.05, rtol=0)


@pytest.mark.parametrize("cell", sorted(ENCODERS))
def test_every_encoder_builds_and_backpropagates(cell):
    torch.manual_seed(0)
    model = RecurrentForecaster(config(cell=cell, ensemble=1, num_layers=2))
    x, cal = inputs(B=3)
    loss = pinball_loss(model(x, cal), torch.zeros(3, 3), model.config.levels)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_shapes_and_config_are_checked_at_the_door():
    model = RecurrentForecaster(config())
    x, cal = inputs()
    with pytest.raises(ValueError, match=r"x: expected \(B, window=6\), received \(5, 5\)"):
        model(x[:, 1:], cal[:, 1:])
    with pytest.raises(ValueError, match=r"calendar: expected \(5, 6, 2\)"):
        model(x, cal[..., :1])
    with pytest.raises(ValueError, match="model.horizon and model.window"):
        RecurrentForecaster(ForecasterConfig())
    with pytest.raises(ValueError, match="model.cell: expected one of"):
        config(cell="transformer").validate()
    for bad in ("0.1,0.9", "0.5,0.1", "0.5,1.0", "a,b"):
        with pytest.raises(ValueError, match="model.quantiles: expected"):
            parse_quantiles(bad)
    assert parse_quantiles("0.1,0.5,0.9") == (0.1, 0.5, 0.9)


def test_config_round_trip():
    c = config()
    assert ForecasterConfig.from_dict(c.to_dict()) == c
    with pytest.raises(ValueError, match="unknown keys"):
        ForecasterConfig.from_dict({**c.to_dict(), "vocab_size": 3})


def test_spread_scales_each_side_about_the_median_and_training_sees_none_of_it():
    torch.manual_seed(0)
    model = RecurrentForecaster(config(quantiles="0.1,0.25,0.5,0.9"))
    x, cal = inputs()
    raw = model.uncalibrated(x, cal)  # (B, K, H, Q)
    torch.testing.assert_close(model(x, cal), raw)  # spread (1, 1): the identity
    model.set_spread(0.5, 3.0)
    q = model(x, cal)
    median = raw[..., 2:3]
    torch.testing.assert_close(q[..., :2], median + 0.5 * (raw[..., :2] - median))
    torch.testing.assert_close(q[..., 2:3], median)
    torch.testing.assert_close(q[..., 3:], median + 3.0 * (raw[..., 3:] - median))
    torch.testing.assert_close(model.uncalibrated(x, cal), raw)
    assert (q.diff(dim=-1) > 0).all()
    assert "spread" in model.state_dict() and not any(n == "spread" for n, _ in model.named_parameters())
    with pytest.raises(ValueError, match=r"spread: expected two numbers > 0, received \(0.0, 1.0\)"):
        model.set_spread(0.0, 1.0)
