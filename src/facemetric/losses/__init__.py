"""Metric-learning losses. Every module of this package registers its losses on import, so a
new loss is one new file with ``@register_loss("name")``."""

from facemetric.core.registry import discover
from facemetric.losses.registry import (
    LOSSES,
    available_losses,
    build_loss,
    loss_needs_classes,
    loss_takes_miner,
    register_loss,
)

discover(__name__, __path__)

__all__ = ["LOSSES", "available_losses", "build_loss", "loss_needs_classes", "loss_takes_miner", "register_loss"]
