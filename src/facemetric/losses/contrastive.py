"""Contrastive loss (Hadsell, Chopra & LeCun, CVPR 2006), in pytorch-metric-learning's two-margin hinge form."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from facemetric.core.mining import PairMiner
from facemetric.core.needs import LossNeeds
from facemetric.losses.registry import register_loss
from facemetric.ops.distances import pairwise_distance
from facemetric.ops.masks import REDUCTIONS, check_choice, mine_pairs, term_count


@register_loss("contrastive", needs=LossNeeds(miner="pairs"))
class ContrastiveLoss(nn.Module):
    """``relu(d - pos_margin)`` over positive pairs + ``relu(neg_margin - d)`` over negative pairs.

    Paper: Hadsell, Chopra & LeCun, "Dimensionality Reduction by Learning an Invariant Mapping", CVPR 2006
    (unsquared hinge with a positive margin, as pytorch-metric-learning's ``ContrastiveLoss``). Each of
    the two terms is reduced over its own pairs (ordered, diagonal excluded) and the two are summed.

    Args:
        pos_margin: positives are pulled below it (0.0).
        neg_margin: negatives are pushed beyond it (1.0; for unit embeddings d lies in [0, 2]).
        distance: ``"euclidean"`` (default), ``"squared_euclidean"`` or ``"cosine"`` (1 - cos).
        reduction: ``"mean_nonzero"`` (default, PML's AvgNonZeroReducer) or ``"mean"``.
        normalize_embeddings: L2-normalise before the distance (False: the model already normalises).
        miner: which pairs (a :class:`~facemetric.core.mining.PairMiner`); None = every pair.
    """

    def __init__(
        self,
        pos_margin: float = 0.0,
        neg_margin: float = 1.0,
        distance: str = "euclidean",
        reduction: str = "mean_nonzero",
        normalize_embeddings: bool = False,
        miner: PairMiner | None = None,
    ) -> None:
        super().__init__()
        check_choice("reduction", reduction, REDUCTIONS)
        self.pos_margin, self.neg_margin, self.distance = pos_margin, neg_margin, distance
        self.reduction, self.normalize_embeddings = reduction, normalize_embeddings
        self.miner = miner

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        dist = pairwise_distance(embeddings, self.distance, normalize=self.normalize_embeddings)
        pos_mask, neg_mask = mine_pairs(self.miner, labels, dist=dist)
        pos = F.relu(dist - self.pos_margin).masked_fill(~pos_mask, 0.0)
        neg = F.relu(self.neg_margin - dist).masked_fill(~neg_mask, 0.0)
        pos_term = pos.sum() / term_count(pos, pos_mask, self.reduction).clamp_min(1)
        return pos_term + neg.sum() / term_count(neg, neg_mask, self.reduction).clamp_min(1)
