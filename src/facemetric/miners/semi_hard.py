"""Semi-hard negative mining (Schroff et al., "FaceNet", CVPR 2015)."""

from __future__ import annotations

import torch

from facemetric.core.mining import TripletMiner, Triplets
from facemetric.miners.registry import register_miner
from facemetric.ops.masks import check_choice, pair_masks, positive_slots

SELECTIONS = ("hardest", "all")
FALLBACKS = ("drop", "hardest", "easiest")


def semi_hard_mask(dist: torch.Tensor, d_ap: torch.Tensor, neg_mask: torch.Tensor, margin: float) -> torch.Tensor:
    """B x B mask of the semi-hard negatives of the pairs (a, p) with distances ``d_ap`` (B x 1).

    FaceNet / pytorch-metric-learning ``TripletMarginMiner("semihard")``: 0 < d(a,n) - d(a,p) <= margin.
    """
    gap = dist.detach() - d_ap.detach()
    return neg_mask & (gap > 0) & (gap <= margin)


@register_miner("semi_hard")
class SemiHardMiner(TripletMiner):
    """Per (anchor, positive), negatives farther than the positive but within the margin:
    ``0 < d(a,n) - d(a,p) <= margin``.

    Args:
        selection: ``"hardest"`` keeps the nearest such negative (FaceNet, default); ``"all"`` keeps
            them all (pytorch-metric-learning's ``TripletMarginMiner("semihard")``).
        fallback: a pair without a semi-hard negative is dropped (``"drop"``, default, as
            pytorch-metric-learning) or gets the anchor's ``"hardest"`` (nearest) or ``"easiest"``
            (farthest) negative.
        margin: the window; default None uses the triplet loss's margin.
    """

    def __init__(self, selection: str = "hardest", fallback: str = "drop", margin: float | None = None) -> None:
        check_choice("selection", selection, SELECTIONS)
        check_choice("fallback", fallback, FALLBACKS)
        if margin is not None and margin <= 0:
            raise ValueError(f"margin must be > 0, got {margin}")
        self.selection, self.fallback, self.margin = selection, fallback, margin
        self.sparse = selection == "hardest"

    def mine(self, dist: torch.Tensor, labels: torch.Tensor, margin: float) -> Triplets:
        window = self.margin if self.margin is not None else margin
        pos_mask, neg_mask = pair_masks(labels)
        idx, slot_valid = positive_slots(pos_mask)
        has_neg = neg_mask.any(dim=1)
        fallback = None
        if self.fallback == "hardest":
            fallback = dist.masked_fill(~neg_mask, float("inf")).argmin(dim=1)
        elif self.fallback == "easiest":
            fallback = dist.masked_fill(~neg_mask, float("-inf")).argmax(dim=1)
        slots = idx.shape[1]
        masks = None if self.sparse else torch.empty(slots, *dist.shape, dtype=torch.bool, device=dist.device)
        anchors, positives, negatives = [], [], []
        for k in range(slots):
            d_ap = dist.gather(1, idx[:, k, None])
            candidates = slot_valid[:, k, None] & semi_hard_mask(dist, d_ap, neg_mask, window)
            if masks is not None:
                masks[k] = candidates
                if fallback is not None:  # pairs without a semi-hard negative get the fallback one
                    rows = (slot_valid[:, k] & has_neg & ~candidates.any(dim=1)).nonzero().squeeze(1)
                    masks[k, rows, fallback[rows]] = True
                continue
            found = candidates.any(dim=1)
            nearest = dist.masked_fill(~candidates, float("inf")).argmin(dim=1)
            if fallback is None:
                chosen, keep = nearest, found
            else:
                chosen, keep = torch.where(found, nearest, fallback), found | (slot_valid[:, k] & has_neg)
            rows = keep.nonzero().squeeze(1)
            anchors.append(rows)
            positives.append(idx[rows, k])
            negatives.append(chosen[rows])
        if masks is not None:
            return Triplets(positive_index=idx, positive_valid=slot_valid, negative_masks=masks)
        empty = torch.zeros(0, dtype=torch.long, device=dist.device)
        return Triplets(
            anchors=torch.cat(anchors) if anchors else empty,
            positives=torch.cat(positives) if positives else empty,
            negatives=torch.cat(negatives) if negatives else empty,
        )
