"""Metric-learning losses. Every module of this package registers its losses on import, so a
new loss is one new file with ``@register_loss("name", needs=LossNeeds(...))``."""

from facemetric.core.registry import discover
from facemetric.losses.registry import (
    LOSSES,
    available_losses,
    build_loss,
    loss_needs,
    loss_needs_classes,
    register_loss,
)

discover(__name__, __path__)

__all__ = ["LOSSES", "available_losses", "build_loss", "loss_needs", "loss_needs_classes", "register_loss"]
