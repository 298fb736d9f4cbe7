"""What a model costs: parameters, counted FLOPs, and the ``model.max_params`` budget check.

Courses and deployments cap the parameter count (the course cap is 21 M); an over-budget
model is refused when it is built, before any data is decoded or any step is taken.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

from facemetric.core.errors import FacemetricError


class ParameterBudgetError(FacemetricError, ValueError):
    """A model has more parameters than ``model.max_params`` allows."""


def count_parameters(model: nn.Module) -> int:
    """Trainable and frozen parameters (every tensor an optimizer or a checkpoint carries)."""
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def count_flops(model: nn.Module, input_shape: tuple[int, int, int]) -> int:
    """Floating-point operations of one forward pass on one (C, H, W) image, counted by
    :class:`torch.utils.flop_counter.FlopCounterMode` (convolutions and matrix products; a
    multiply-add counts as 2; normalisation and activations are not counted)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        with FlopCounterMode(display=False) as counter:
            model(torch.zeros(1, *input_shape, device=device))
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


def check_budget(model: nn.Module, max_params: int | None, name: str) -> int:
    """The model's parameter count; raises :class:`ParameterBudgetError` above ``max_params``."""
    n = count_parameters(model)
    if max_params is not None and n > max_params:
        raise ParameterBudgetError(
            f"model {name!r} has {n:,} parameters ({n / 1e6:.2f} M), over model.max_params = {max_params:,} "
            f"({max_params / 1e6:.2f} M). Pick a smaller backbone or width (`facemetric models "
            f"--max-params {max_params}` lists those that fit), or raise model.max_params."
        )
    return n
