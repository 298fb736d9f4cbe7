"""All triplets of a batch ("batch all", Hermans et al. 2017)."""

from __future__ import annotations

import torch

from facemetric.core.mining import TripletMiner, Triplets
from facemetric.miners.registry import register_miner
from facemetric.ops.masks import pair_masks, positive_slots


@register_miner("batch_all")
class AllTripletsMiner(TripletMiner):
    """Every (anchor, positive, negative) of the batch, as per-slot masks (no B x B x B tensor)."""

    def mine(self, dist: torch.Tensor, labels: torch.Tensor, margin: float) -> Triplets:
        pos_mask, neg_mask = pair_masks(labels)
        idx, valid = positive_slots(pos_mask)
        masks = valid.t()[:, :, None] & neg_mask[None]
        return Triplets(positive_index=idx, positive_valid=valid, negative_masks=masks)
