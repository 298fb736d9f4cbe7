"""Optimizer and scheduler registries: ``optim: {name, lr, weight_decay, options}`` and
``scheduler: {name, options}`` in a config name builders registered here.

An optimizer builder is called as ``builder(params, lr=..., weight_decay=..., **options)`` and
returns a ``torch.optim.Optimizer``; a scheduler builder as ``builder(optimizer,
total_steps=..., steps_per_epoch=..., **options)`` and returns a
``torch.optim.lr_scheduler.LRScheduler`` stepped once per training step.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from facemetric.core.config import OptimConfig, SchedulerConfig
from facemetric.core.registry import Registry

OPTIMIZERS: Registry[Any] = Registry("optimizer", injected=("params", "lr", "weight_decay"))
SCHEDULERS: Registry[Any] = Registry("scheduler", injected=("optimizer", "total_steps", "steps_per_epoch"))
register_optimizer = OPTIMIZERS.register
register_scheduler = SCHEDULERS.register


def build_optimizer(cfg: OptimConfig, params: Iterable[Any]) -> torch.optim.Optimizer:
    """The optimizer ``cfg`` names, over ``params`` (parameters, or torch's parameter-group dicts)."""
    OPTIMIZERS.check_options(cfg.name, cfg.options, "optim.options")
    return OPTIMIZERS.build(
        cfg.name, list(params), where="optim", lr=cfg.lr, weight_decay=cfg.weight_decay, **cfg.options
    )


def build_scheduler(
    cfg: SchedulerConfig, optimizer: torch.optim.Optimizer, total_steps: int, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """The per-step learning-rate scheduler ``cfg`` names."""
    SCHEDULERS.check_options(cfg.name, cfg.options, "scheduler.options")
    return SCHEDULERS.build(
        cfg.name, optimizer, where="scheduler", total_steps=total_steps, steps_per_epoch=steps_per_epoch, **cfg.options
    )
