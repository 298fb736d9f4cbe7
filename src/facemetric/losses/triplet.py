"""Triplet loss (Schroff et al., "FaceNet", CVPR 2015; Hermans et al., "In Defense of the Triplet Loss", 2017)."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from facemetric.core.mining import TripletMiner, Triplets
from facemetric.core.needs import LossNeeds
from facemetric.losses.registry import register_loss
from facemetric.miners.batch_hard import BatchHardMiner
from facemetric.ops.distances import paired_distance, pairwise_distance
from facemetric.ops.masks import REDUCTIONS, check_choice, term_count


@register_loss("triplet", needs=LossNeeds(miner="triplets"))
class TripletLoss(nn.Module):
    """``max(0, d(a,p) - d(a,n) + margin)`` over the triplets its miner picks, on the B x B distance matrix.

    Papers: FaceNet (Schroff et al., CVPR 2015) for semi-hard mining; Hermans et al. 2017 for
    batch-hard / batch-all mining and the soft margin. Which triplets: the ``miner``
    (:mod:`facemetric.miners`: ``BatchHardMiner`` by default, ``AllTripletsMiner``, ``SemiHardMiner``).

    Args:
        margin: hinge margin (0.2; a semi-hard miner's window uses it too).
        distance: ``"euclidean"`` (default), ``"squared_euclidean"`` or ``"cosine"`` (1 - cos).
        soft_margin: ``softplus(d(a,p) - d(a,n))`` instead of the hinge (Hermans; ``margin`` unused).
        reduction: ``"mean_nonzero"`` (mean over triplets with loss > 0) or ``"mean"`` (over all mined
            triplets); default ``None`` = ``"mean"`` with a batch-hard miner (Hermans), else ``"mean_nonzero"``.
        normalize_embeddings: L2-normalise before the distance (False: the model already normalises).
        miner: which triplets; None = batch-hard.
    """

    def __init__(
        self,
        margin: float = 0.2,
        distance: str = "euclidean",
        soft_margin: bool = False,
        reduction: str | None = None,
        normalize_embeddings: bool = False,
        miner: TripletMiner | None = None,
    ) -> None:
        super().__init__()
        if reduction is not None:
            check_choice("reduction", reduction, REDUCTIONS)
        if miner is not None and not isinstance(miner, TripletMiner):
            raise ValueError(f"the triplet loss needs a triplet miner, got {type(miner).__name__}")
        self.margin, self.distance, self.soft_margin = margin, distance, soft_margin
        self.reduction, self.normalize_embeddings = reduction, normalize_embeddings
        self.miner: TripletMiner = miner if miner is not None else BatchHardMiner()

    def resolved_reduction(self) -> str:
        """``reduction``, or its default for the current miner (a schedule may swap the miner)."""
        return self.reduction or ("mean" if isinstance(self.miner, BatchHardMiner) else "mean_nonzero")

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.miner.sparse:
            return self._sparse(embeddings, labels)
        dist = pairwise_distance(embeddings, self.distance, normalize=self.normalize_embeddings)
        triplets = self.miner.mine(dist.detach(), labels, self.margin)
        if self.soft_margin:
            return self._soft_dense(dist, triplets)
        return self._linear_hinge(dist, triplets)

    def _sparse(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mine on a gradient-free B x B matrix, then compute the mined distances from the rows (O(T x D))."""
        with torch.no_grad():
            dist = pairwise_distance(embeddings, self.distance, normalize=self.normalize_embeddings)
        t = self.miner.mine(dist, labels, self.margin)
        assert t.anchors is not None and t.positives is not None and t.negatives is not None
        d_ap = paired_distance(embeddings, t.anchors, t.positives, self.distance, self.normalize_embeddings)
        d_an = paired_distance(embeddings, t.anchors, t.negatives, self.distance, self.normalize_embeddings)
        gap = d_ap - d_an
        losses = F.softplus(gap) if self.soft_margin else F.relu(gap + self.margin)
        total = embeddings.sum() * 0.0 + losses.sum()  # zero loss with the graph kept when nothing is mined
        count = term_count(losses, torch.ones_like(losses, dtype=torch.bool), self.resolved_reduction())
        return total / count.clamp_min(1)

    def _soft_dense(self, dist: torch.Tensor, t: Triplets) -> torch.Tensor:
        """Soft margin over per-slot masks: one B x B softplus per positive slot."""
        assert t.positive_index is not None and t.negative_masks is not None
        total = dist.sum() * 0.0
        count = torch.zeros((), dtype=torch.long, device=dist.device)
        for k in range(t.positive_index.shape[1]):
            mask = t.negative_masks[k]
            gap = (dist.gather(1, t.positive_index[:, k, None]) - dist).masked_fill(~mask, float("-inf"))
            losses = F.softplus(gap)
            total = total + losses.sum()
            count = count + term_count(losses, mask, self.resolved_reduction())
        return total / count.clamp_min(1)

    def _linear_hinge(self, dist: torch.Tensor, t: Triplets) -> torch.Tensor:
        """Hinge loss over dense triplets as one weighted sum of the B x B distances.

        A mined triplet with positive loss contributes d(a,p) - d(a,n) + margin, linear in the
        distances; so the loss is sum(W * dist) + margin * (active triplets), where W counts, under
        no_grad, +1 per active triplet at (a, p) and -1 at (a, n). Same value and gradient as the
        per-triplet form (relu's gradient is 0 where the loss is 0), without a graph per triplet.
        """
        assert t.positive_index is not None and t.negative_masks is not None
        with torch.no_grad():
            d = dist.detach()
            weight = torch.zeros_like(d)
            active_total = torch.zeros((), dtype=torch.long, device=d.device)
            mined_total = torch.zeros((), dtype=torch.long, device=d.device)
            for k in range(t.positive_index.shape[1]):
                column = t.positive_index[:, k, None]
                mined = t.negative_masks[k]
                active = mined & (d.gather(1, column) - d + self.margin > 0)
                per_anchor = active.sum(dim=1, keepdim=True)
                weight.scatter_add_(1, column, per_anchor.to(d.dtype))
                weight -= active.to(d.dtype)
                active_total += per_anchor.sum()
                mined_total += mined.sum()
        count = active_total if self.resolved_reduction() == "mean_nonzero" else mined_total
        total = (weight * dist).sum() + self.margin * active_total
        return total / count.clamp_min(1)
