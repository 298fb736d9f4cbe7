"""No mining: every positive and negative pair of the batch."""

from __future__ import annotations

import torch

from facemetric.core.mining import PairMiner, Pairs
from facemetric.miners.registry import register_miner
from facemetric.ops.masks import pair_masks


@register_miner("all_pairs")
class AllPairsMiner(PairMiner):
    """Every pair: what a pair loss uses without a miner (e.g. multi-similarity without its mining)."""

    def mine(self, dist: torch.Tensor, labels: torch.Tensor) -> Pairs:
        return Pairs(*pair_masks(labels))
