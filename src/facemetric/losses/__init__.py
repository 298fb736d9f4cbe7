"""Metric-learning losses. Every module of this package registers its losses on import, so a
new loss is one new file with ``@register_loss("name")``."""

import importlib
import pkgutil

from facemetric.losses.registry import (
    LOSSES,
    available_losses,
    build_loss,
    loss_needs_classes,
    loss_takes_miner,
    register_loss,
)

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_") and _module.name != "registry":
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["LOSSES", "available_losses", "build_loss", "loss_needs_classes", "loss_takes_miner", "register_loss"]
