"""Optimizers and learning-rate schedulers, by name. Every module here registers its builders on
import, so a new optimizer or scheduler is one new file with ``@register_optimizer("name")`` or
``@register_scheduler("name")``."""

from facemetric.core.registry import discover
from facemetric.optim.registry import (
    OPTIMIZERS,
    SCHEDULERS,
    build_optimizer,
    build_scheduler,
    register_optimizer,
    register_scheduler,
)

discover(__name__, __path__)

__all__ = ["OPTIMIZERS", "SCHEDULERS", "build_optimizer", "build_scheduler", "register_optimizer", "register_scheduler"]
