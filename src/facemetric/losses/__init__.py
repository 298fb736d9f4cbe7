"""Metric-learning losses; importing this package registers them all."""

from facemetric.losses import arcface, triplet  # noqa: F401  (registers the losses)
from facemetric.losses.registry import available_losses, build_loss, loss_needs_classes, register_loss

__all__ = ["available_losses", "build_loss", "loss_needs_classes", "register_loss"]
