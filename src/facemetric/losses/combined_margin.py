"""InsightFace's combined margin: target logit s * (cos(m1 * theta_y + m2) - m3)."""

from __future__ import annotations

import torch

from facemetric.losses.margin import SHARDABLE_HEAD, CombinedMarginTransform, CosineMarginLoss
from facemetric.losses.registry import register_loss


@register_loss("combined_margin", needs=SHARDABLE_HEAD)
class CombinedMarginLoss(CosineMarginLoss):
    """Combined margin of InsightFace (Deng et al., ArcFace, CVPR 2019, Sec. 3.3).

    (m1, m2, m3) = (1, m, 0) is ArcFace, (1, 0, m) CosFace, (m, 0, 0) a SphereFace-like
    multiplicative margin (without SphereFace's piecewise psi or feature-norm scale). Beyond
    m1 * theta + m2 = pi the target falls back to a monotonic ``cos(theta) - m3 - shift``
    (see :class:`~facemetric.losses.margin.CombinedMarginTransform`).

    Args:
        num_classes, embedding_dim: classes and embedding size.
        scale: s, default 64.
        m1, m2, m3: multiplicative angular, additive angular (radians) and additive cosine
            margins, defaults 1.0, 0.3, 0.2 (InsightFace).
        subcenters: weight vectors per class, max-pooled (default 1).
    """

    def __init__(
        self,
        num_classes: int,
        embedding_dim: int,
        scale: float = 64.0,
        m1: float = 1.0,
        m2: float = 0.3,
        m3: float = 0.2,
        subcenters: int = 1,
    ) -> None:
        super().__init__(num_classes, embedding_dim, scale, subcenters)
        CombinedMarginTransform(m1, m2, m3)  # refuses m1 <= 0 now rather than at the first step
        self.m1, self.m2, self.m3 = m1, m2, m3  # read at every step, so a loss schedule may change them

    def target_transform(self, cos: torch.Tensor) -> torch.Tensor:
        return CombinedMarginTransform(self.m1, self.m2, self.m3)(cos)
