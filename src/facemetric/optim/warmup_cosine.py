"""Linear warm-up, then cosine decay to a floor: the default learning-rate schedule, stepped per step."""

from __future__ import annotations

import math

import torch
from torch.optim.lr_scheduler import LRScheduler

from facemetric.optim.registry import register_scheduler


def warmup_cosine_lr(base: float, step: int, total_steps: int, warmup_steps: int, min_lr_ratio: float) -> float:
    """The learning rate of 0-based ``step``: ``base * (step + 1) / warmup_steps`` during the warm-up, then a
    cosine from ``base`` down to ``base * min_lr_ratio`` at ``total_steps``."""
    if step < warmup_steps:
        return base * (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    floor = base * min_lr_ratio
    return floor + (base - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


@register_scheduler("warmup_cosine")
class WarmupCosine(LRScheduler):
    """Linear warm-up over ``warmup_epochs`` (fractions allowed), then cosine decay to
    ``lr * min_lr_ratio`` at the last step.

    Args:
        warmup_epochs: length of the warm-up, in epochs (1.0).
        min_lr_ratio: the final learning rate as a fraction of ``optim.lr`` (0.01).
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        total_steps: int,
        steps_per_epoch: int,
        warmup_epochs: float = 1.0,
        min_lr_ratio: float = 0.01,
    ) -> None:
        if warmup_epochs < 0 or not 0.0 <= min_lr_ratio <= 1.0:
            raise ValueError(
                f"warmup_epochs must be >= 0 and min_lr_ratio in [0, 1], got {warmup_epochs} and {min_lr_ratio}"
            )
        self.total_steps, self.min_lr_ratio = total_steps, min_lr_ratio
        self.warmup_steps = int(warmup_epochs * steps_per_epoch)
        super().__init__(optimizer)

    def get_lr(self) -> list[float]:  # type: ignore[override]
        return [
            warmup_cosine_lr(float(base), self.last_epoch, self.total_steps, self.warmup_steps, self.min_lr_ratio)
            for base in self.base_lrs
        ]
