"""Batch-hard mining (Hermans et al., "In Defense of the Triplet Loss", 2017)."""

from __future__ import annotations

import torch

from facemetric.core.mining import TripletMiner, Triplets
from facemetric.miners.registry import register_miner
from facemetric.ops.masks import pair_masks


def batch_hard(
    dist: torch.Tensor, pos_mask: torch.Tensor, neg_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per anchor: index of the farthest positive, of the nearest negative, and whether both exist."""
    valid = pos_mask.any(dim=1) & neg_mask.any(dim=1)
    hardest_pos = dist.masked_fill(~pos_mask, float("-inf")).argmax(dim=1)
    hardest_neg = dist.masked_fill(~neg_mask, float("inf")).argmin(dim=1)
    return hardest_pos, hardest_neg, valid


@register_miner("batch_hard")
class BatchHardMiner(TripletMiner):
    """One triplet per anchor: its farthest positive and its nearest negative (anchors lacking either
    are skipped). The triplet loss's default miner."""

    sparse = True

    def mine(self, dist: torch.Tensor, labels: torch.Tensor, margin: float) -> Triplets:
        pos, neg, valid = batch_hard(dist, *pair_masks(labels))
        anchors = valid.nonzero().squeeze(1)
        return Triplets(anchors=anchors, positives=pos[anchors], negatives=neg[anchors])
