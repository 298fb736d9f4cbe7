"""Triplet loss (Schroff et al., "FaceNet", CVPR 2015; Hermans et al., "In Defense of the Triplet Loss", 2017)."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from facemetric.losses.registry import register_loss
from facemetric.mining.distances import paired_distance, pairwise_distance
from facemetric.mining.miners import (
    FALLBACKS,
    REDUCTIONS,
    SEMI_HARD_SELECTIONS,
    batch_hard,
    check_choice,
    mine_triplets,
    pair_masks,
    positive_slots,
    semi_hard_mask,
    term_count,
)

MININGS = ("batch_all", "batch_hard", "semi_hard")


@register_loss("triplet")
class TripletLoss(nn.Module):
    """``max(0, d(a,p) - d(a,n) + margin)`` over mined triplets, on the B x B distance matrix.

    Papers: FaceNet (Schroff et al., CVPR 2015) for semi-hard mining; Hermans et al. 2017 for
    batch-hard / batch-all mining and the soft margin.

    Args:
        margin: hinge margin (0.2; the semi-hard window uses it too).
        mining: ``"batch_hard"`` (default), ``"batch_all"`` or ``"semi_hard"``.
        distance: ``"euclidean"`` (default), ``"squared_euclidean"`` or ``"cosine"`` (1 - cos).
        soft_margin: ``softplus(d(a,p) - d(a,n))`` instead of the hinge (Hermans; ``margin`` unused).
        reduction: ``"mean_nonzero"`` (mean over triplets with loss > 0) or ``"mean"`` (over all mined
            triplets); default ``None`` = ``"mean"`` for batch_hard (Hermans), ``"mean_nonzero"`` otherwise.
        semi_hard: per (anchor, positive), ``"hardest"`` (nearest semi-hard negative, FaceNet, default)
            or ``"all"`` semi-hard negatives (pytorch-metric-learning's ``TripletMarginMiner``).
        fallback: pair without a semi-hard negative: ``"drop"`` (default), ``"hardest"`` or ``"easiest"``
            negative of the anchor.
        normalize_embeddings: L2-normalise before the distance (False: the model already normalises).
    """

    def __init__(
        self,
        margin: float = 0.2,
        mining: str = "batch_hard",
        distance: str = "euclidean",
        soft_margin: bool = False,
        reduction: str | None = None,
        semi_hard: str = "hardest",
        fallback: str = "drop",
        normalize_embeddings: bool = False,
    ) -> None:
        super().__init__()
        reduction = reduction or ("mean" if mining == "batch_hard" else "mean_nonzero")
        check_choice("mining", mining, MININGS)
        check_choice("reduction", reduction, REDUCTIONS)
        check_choice("semi_hard", semi_hard, SEMI_HARD_SELECTIONS)
        check_choice("fallback", fallback, FALLBACKS)
        self.margin, self.mining, self.distance, self.soft_margin = margin, mining, distance, soft_margin
        self.reduction, self.semi_hard, self.fallback = reduction, semi_hard, fallback
        self.normalize_embeddings = normalize_embeddings

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.mining == "batch_hard":
            chunks = [self._batch_hard_distances(embeddings, labels)]
        else:
            dist = pairwise_distance(embeddings, self.distance, normalize=self.normalize_embeddings)
            if not self.soft_margin and (self.mining == "batch_all" or (self.semi_hard == "all" and self.fallback == "drop")):
                return self._linear_hinge(dist, labels)
            chunks = mine_triplets(dist, labels, self.mining, self.margin, self.semi_hard, self.fallback)
        total = embeddings.sum() * 0.0  # zero loss with the graph kept when nothing is mined
        count = torch.zeros((), dtype=torch.long, device=embeddings.device)
        for d_ap, d_an, mask in chunks:
            gap = (d_ap - d_an).masked_fill(~mask, float("-inf"))
            losses = F.softplus(gap) if self.soft_margin else F.relu(gap + self.margin)
            total = total + losses.sum()
            count = count + term_count(losses, mask, self.reduction)
        return total / count.clamp_min(1)

    def _linear_hinge(self, dist: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Hinge loss over all (or all semi-hard) triplets as one weighted sum of the B x B distances.

        A mined triplet with positive loss contributes d(a,p) - d(a,n) + margin, linear in the
        distances; so the loss is sum(W * dist) + margin * (active triplets), where W counts, under
        no_grad, +1 per active triplet at (a, p) and -1 at (a, n). Same value and gradient as the
        per-triplet form (relu's gradient is 0 where the loss is 0), without a graph per triplet.
        """
        with torch.no_grad():
            d = dist.detach()
            pos_mask, neg_mask = pair_masks(labels)
            idx, slot_valid = positive_slots(pos_mask)
            weight = torch.zeros_like(d)
            active_total = torch.zeros((), dtype=torch.long, device=d.device)
            mined_total = torch.zeros((), dtype=torch.long, device=d.device)
            for k in range(idx.shape[1]):
                d_ap = d.gather(1, idx[:, k, None])
                mined = slot_valid[:, k, None] & neg_mask
                if self.mining == "semi_hard":
                    mined &= semi_hard_mask(d, d_ap, neg_mask, self.margin)
                active = mined & (d_ap - d + self.margin > 0)
                per_anchor = active.sum(dim=1, keepdim=True)
                weight.scatter_add_(1, idx[:, k, None], per_anchor.to(d.dtype))
                weight -= active.to(d.dtype)
                active_total += per_anchor.sum()
                mined_total += mined.sum()
        count = active_total if self.reduction == "mean_nonzero" else mined_total
        total = (weight * dist).sum() + self.margin * active_total
        return total / count.clamp_min(1)

    def _batch_hard_distances(
        self, embeddings: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Mine on a gradient-free B x B matrix, then recompute the 2B mined distances from the rows."""
        with torch.no_grad():
            dist = pairwise_distance(embeddings, self.distance, normalize=self.normalize_embeddings)
        pos, neg, valid = batch_hard(dist, *pair_masks(labels))
        anchors = valid.nonzero().squeeze(1)
        d_ap = paired_distance(embeddings, anchors, pos[anchors], self.distance, self.normalize_embeddings)
        d_an = paired_distance(embeddings, anchors, neg[anchors], self.distance, self.normalize_embeddings)
        return d_ap, d_an, torch.ones_like(anchors, dtype=torch.bool)
