"""The collapse monitor fires on a deliberately collapsing run and stays silent on a healthy one."""

from __future__ import annotations

import logging

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from facemetric.core.config import MonitorConfig
from facemetric.losses import build_loss
from facemetric.train.callbacks.collapse import CollapseError, CollapseMonitor, spread_statistics


def _run(
    lr: float, margin: float, noise: float, monitor: CollapseMonitor, adam: bool = True, steps: int = 150
) -> float:
    """Train a small MLP embedding of 10 noisy clusters with batch-hard triplet; returns the last loss."""
    g = torch.Generator().manual_seed(0)
    centers = torch.randn(10, 32, generator=g)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 16))
    opt = torch.optim.Adam(net.parameters(), lr=lr) if adam else torch.optim.SGD(net.parameters(), lr=lr)
    loss_fn = build_loss("triplet", margin=margin)
    y = torch.arange(10).repeat_interleave(4)
    for step in range(steps):
        e = F.normalize(net(centers[y] + noise * torch.randn(40, 32, generator=g)), dim=1)
        monitor.update(e, y, step)
        loss = loss_fn(e, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return loss.item()


def test_fires_on_collapse_and_explains(caplog: pytest.LogCaptureFixture) -> None:
    monitor = CollapseMonitor(MonitorConfig(window=20))
    with caplog.at_level(logging.WARNING, logger="facemetric"):
        last = _run(lr=0.1, margin=2.0, noise=3.0, monitor=monitor)  # too-large margin and learning rate
    assert monitor.fired
    assert last == pytest.approx(2.0, abs=0.05)  # the loss is stuck at the margin
    assert monitor.summary()["mean_distance"] < 0.05 and monitor.summary()["at_margin"] > 0.9
    warnings = [r for r in caplog.records if "embedding collapse" in r.getMessage()]
    assert len(warnings) == 1 and "learning rate" in warnings[0].getMessage()  # once, with advice


def test_silent_on_healthy_run(caplog: pytest.LogCaptureFixture) -> None:
    monitor = CollapseMonitor(MonitorConfig(window=20))
    with caplog.at_level(logging.WARNING, logger="facemetric"):
        _run(lr=0.05, margin=0.2, noise=1.0, monitor=monitor, adam=False)
    assert not monitor.fired and not caplog.records
    assert monitor.summary()["mean_distance"] > 0.5


def test_stop_raises() -> None:
    monitor = CollapseMonitor(MonitorConfig(window=20, stop=True))
    with pytest.raises(CollapseError, match="embedding collapse"):
        _run(lr=0.1, margin=2.0, noise=3.0, monitor=monitor)


def test_statistics_by_hand() -> None:
    # two identities, unit vectors: a0=(1,0), a1=(0,1), b0=(-1,0), b1=(0,-1)
    e = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    s = spread_statistics(e, torch.tensor([0, 0, 1, 1]))
    # distances: 4 pairs at sqrt(2), 2 pairs at 2 -> mean (4*sqrt(2) + 2*2) / 6
    assert s["mean_distance"] == pytest.approx((4 * 2**0.5 + 4) / 6, abs=1e-6)
    # every anchor: hardest positive sqrt(2), hardest negative sqrt(2) -> all at the margin
    assert s["at_margin"] == 1.0
    assert s["dim_std"] == pytest.approx(torch.tensor([1.0, 0, -1, 0]).std().item(), abs=1e-6)
