"""A constant learning rate (``optim.lr`` throughout): for short runs and hyper-parameter searches."""

from __future__ import annotations

import torch
from torch.optim.lr_scheduler import LambdaLR

from facemetric.optim.registry import register_scheduler


@register_scheduler("constant")
def constant(optimizer: torch.optim.Optimizer, total_steps: int, steps_per_epoch: int) -> LambdaLR:
    """No schedule: every step uses ``optim.lr``."""
    return LambdaLR(optimizer, lambda step: 1.0)
