"""Triplet loss with batch-hard mining (Hermans, Beyer & Leibe, "In Defense of the Triplet Loss", 2017).

For every anchor: the farthest positive and the nearest negative in the batch, on the
B x B distance matrix. ``soft_margin`` replaces the hinge by softplus.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from facemetric.losses.registry import register_loss
from facemetric.mining.distances import pairwise_distance

MININGS = ("batch_hard",)


@register_loss("triplet")
class TripletLoss(nn.Module):
    """``loss(embeddings, labels)``: mean over anchors that have a positive and a negative."""

    def __init__(
        self, margin: float = 0.2, mining: str = "batch_hard", distance: str = "euclidean", soft_margin: bool = False
    ) -> None:
        super().__init__()
        if mining not in MININGS:
            raise ValueError(f"unknown mining {mining!r}; available: {MININGS}")
        self.margin, self.mining, self.distance, self.soft_margin = margin, mining, distance, soft_margin

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        dist = pairwise_distance(embeddings.to(torch.promote_types(embeddings.dtype, torch.float32)), self.distance)
        same = labels[:, None] == labels[None, :]
        eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
        pos_mask, neg_mask = same & ~eye, ~same
        valid = pos_mask.any(dim=1) & neg_mask.any(dim=1)
        if not valid.any():
            return embeddings.sum() * 0.0  # no triplet in this batch: zero loss, graph kept
        hardest_pos = dist.masked_fill(~pos_mask, float("-inf")).amax(dim=1)
        hardest_neg = dist.masked_fill(~neg_mask, float("inf")).amin(dim=1)
        gap = (hardest_pos - hardest_neg)[valid]
        per_anchor = F.softplus(gap) if self.soft_margin else F.relu(gap + self.margin)
        return per_anchor.mean()
