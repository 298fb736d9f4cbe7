"""Optimizers and learning-rate schedulers, by name. Every module here registers its builders on
import, so a new optimizer or scheduler is one new file with ``@register_optimizer("name")`` or
``@register_scheduler("name")``."""

import importlib
import pkgutil

from facemetric.optim.registry import (
    OPTIMIZERS,
    SCHEDULERS,
    build_optimizer,
    build_scheduler,
    register_optimizer,
    register_scheduler,
)

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_") and _module.name != "registry":
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["OPTIMIZERS", "SCHEDULERS", "build_optimizer", "build_scheduler", "register_optimizer", "register_scheduler"]
