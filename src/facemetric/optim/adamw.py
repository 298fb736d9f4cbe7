"""AdamW (Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019): the CPU default."""

from __future__ import annotations

from typing import Any

import torch

from facemetric.optim.registry import register_optimizer


@register_optimizer("adamw")
def adamw(
    params: Any, lr: float, weight_decay: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8
) -> torch.optim.AdamW:
    """Adam with decoupled weight decay (lr 1e-3..3e-3 and weight decay about 0.05 suit the small backbones)."""
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, betas=betas, eps=eps)
