"""Cosine-softmax losses without an angular margin: NormFace and CosFace (AM-Softmax)."""

from __future__ import annotations

import torch

from facemetric.losses.margin import SHARDABLE_HEAD, CosineMarginLoss
from facemetric.losses.registry import register_loss


@register_loss("normface", needs=SHARDABLE_HEAD)
class NormFaceLoss(CosineMarginLoss):
    """NormFace (Wang et al., ACM MM 2017): logits ``s * cos(theta_j)``, no margin.

    Equals PML's ``NormalizedSoftmaxLoss`` with ``temperature = 1 / scale``.

    Args:
        num_classes, embedding_dim: classes and embedding size.
        scale: s, default 32 (the paper needs s well above 1; 16-64 typical).
        subcenters: weight vectors per class, max-pooled (default 1).
    """

    has_margin = False

    def __init__(self, num_classes: int, embedding_dim: int, scale: float = 32.0, subcenters: int = 1) -> None:
        super().__init__(num_classes, embedding_dim, scale, subcenters)


@register_loss("cosface", needs=SHARDABLE_HEAD)
class CosFaceLoss(CosineMarginLoss):
    """CosFace / AM-Softmax / LMCL (Wang et al., CVPR 2018): target logit ``s * (cos(theta_y) - m)``.

    Same convention as PML's ``CosFaceLoss``.

    Args:
        num_classes, embedding_dim: classes and embedding size.
        scale: s, default 64.
        margin: additive cosine margin m, default 0.35.
        subcenters: weight vectors per class, max-pooled (default 1).
    """

    def __init__(
        self, num_classes: int, embedding_dim: int, scale: float = 64.0, margin: float = 0.35, subcenters: int = 1
    ) -> None:
        super().__init__(num_classes, embedding_dim, scale, subcenters)
        self.margin = margin

    def target_transform(self, cos: torch.Tensor) -> torch.Tensor:
        return cos - self.margin
