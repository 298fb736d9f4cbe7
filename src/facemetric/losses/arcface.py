"""ArcFace additive angular margin (Deng et al., CVPR 2019): target logit s * cos(theta_y + m)."""

from __future__ import annotations

import torch

from facemetric.losses.margin import SHARDABLE_HEAD, CombinedMarginTransform, CosineMarginLoss
from facemetric.losses.registry import register_loss


@register_loss("arcface", needs=SHARDABLE_HEAD)
class ArcFaceLoss(CosineMarginLoss):
    """ArcFace (Deng et al., CVPR 2019), optionally Sub-center ArcFace (Deng et al., ECCV 2020).

    When theta + m passes pi, cos(theta + m) would rise again with theta, so the target becomes
    ``cos(theta) - m * sin(m)`` (insightface's fallback, also PML's), keeping it monotonic.
    PML's ``ArcFaceLoss`` takes the margin in degrees; here it is in radians.

    Args:
        num_classes, embedding_dim: classes and embedding size.
        scale: s, default 32 (the paper uses 64).
        margin: additive angular margin m in radians, default 0.5.
        subcenters: sub-centres per class, max-pooled; the ECCV 2020 paper recommends 3.
    """

    def __init__(
        self, num_classes: int, embedding_dim: int, scale: float = 32.0, margin: float = 0.5, subcenters: int = 1
    ) -> None:
        super().__init__(num_classes, embedding_dim, scale, subcenters)
        self.margin = margin  # read at every step, so a loss schedule may change it

    def target_transform(self, cos: torch.Tensor) -> torch.Tensor:
        return CombinedMarginTransform(1.0, self.margin, 0.0)(cos)
