"""ArcFace additive angular margin (Deng et al., CVPR 2019): logits s * cos(theta_y + m).

When theta + m would pass pi, cos(theta + m) stops decreasing with theta, so the target
logit is replaced by the linear continuation cos(theta) - m * sin(m) (insightface's
``th``/``mm`` fallback), which keeps the loss monotonic in theta.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from facemetric.losses.registry import register_loss


@register_loss("arcface")
class ArcFaceLoss(nn.Module):
    """Classification head with one unit-norm weight vector per training identity."""

    needs_classes = True

    def __init__(self, num_classes: int, embedding_dim: int, scale: float = 32.0, margin: float = 0.5) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"ArcFace needs at least 2 classes, got {num_classes}")
        self.scale, self.margin = scale, margin
        self.weight = nn.Parameter(torch.empty(num_classes, embedding_dim))
        nn.init.normal_(self.weight, std=0.01)
        self.cos_m, self.sin_m = math.cos(margin), math.sin(margin)
        self.threshold = math.cos(math.pi - margin)
        self.fallback = math.sin(math.pi - margin) * margin

    def logits(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Scaled cosine logits with the angular margin applied to each row's target class."""
        dtype = torch.promote_types(embeddings.dtype, torch.float32)  # low precision in, float32 math
        cos = F.linear(F.normalize(embeddings.to(dtype), dim=1), F.normalize(self.weight.to(dtype), dim=1))
        cos = cos.clamp(-1.0, 1.0)
        target = cos.gather(1, labels[:, None])
        sin = torch.sqrt((1.0 - target * target).clamp_min(1e-6))
        with_margin = target * self.cos_m - sin * self.sin_m
        with_margin = torch.where(target > self.threshold, with_margin, target - self.fallback)
        return self.scale * cos.scatter(1, labels[:, None], with_margin)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(self.logits(embeddings, labels), labels)
