"""SGD with Nesterov momentum: the optimizer of the ArcFace / insightface recipes."""

from __future__ import annotations

from typing import Any

import torch

from facemetric.optim.registry import register_optimizer


@register_optimizer("sgd")
def sgd(params: Any, lr: float, weight_decay: float, momentum: float = 0.9, nesterov: bool = True) -> torch.optim.SGD:
    """SGD (lr about 0.1, weight decay about 5e-4 for face recognition), Nesterov momentum by default."""
    if nesterov and momentum <= 0:
        raise ValueError("Nesterov momentum needs momentum > 0; set nesterov: false for plain SGD")
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)
