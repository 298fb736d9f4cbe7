"""Multi-Similarity pair mining (Wang et al., "Multi-Similarity Loss with General Pair Weighting", CVPR 2019)."""

from __future__ import annotations

import torch

from facemetric.core.mining import PairMiner, Pairs
from facemetric.miners.registry import register_miner
from facemetric.ops.masks import masked_max, masked_min, pair_masks


@register_miner("multi_similarity")
class MultiSimilarityMiner(PairMiner):
    """Eqs. 7-8 of the paper, in distance form (d = 1 - cosine similarity for the paper's setting):
    keep a positive if ``d_ap + epsilon > min_n d_an`` and a negative if ``d_an - epsilon < max_p d_ap``
    (anchors without negatives keep no positive and vice versa). The multi-similarity loss's default.

    Args:
        epsilon: the mining margin (0.1).
    """

    def __init__(self, epsilon: float = 0.1) -> None:
        if epsilon < 0:
            raise ValueError(f"epsilon must be >= 0, got {epsilon}")
        self.epsilon = epsilon

    def mine(self, dist: torch.Tensor, labels: torch.Tensor) -> Pairs:
        pos_mask, neg_mask = pair_masks(labels)
        nearest_neg = masked_min(dist, neg_mask, keepdim=True)
        farthest_pos = masked_max(dist, pos_mask, keepdim=True)
        return Pairs(pos_mask & (dist + self.epsilon > nearest_neg), neg_mask & (dist - self.epsilon < farthest_pos))
