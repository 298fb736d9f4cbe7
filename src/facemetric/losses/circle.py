"""Circle loss, pair form (Sun et al., "Circle Loss: A Unified Perspective of Pair Similarity Optimization",
CVPR 2020)."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from facemetric.core.mining import PairMiner
from facemetric.core.needs import LossNeeds
from facemetric.losses.registry import register_loss
from facemetric.ops.distances import cosine_similarity
from facemetric.ops.masks import masked_logsumexp, mine_pairs


@register_loss("circle", needs=LossNeeds(miner="pairs"))
class CircleLoss(nn.Module):
    """Per anchor ``softplus(logsumexp_n(g a_n (s_n - m)) + logsumexp_p(-g a_p (s_p - 1 + m)))`` on cosine similarity.

    Paper: Sun et al., CVPR 2020, eq. 6, with ``a_p = relu(1 + m - s_p)``, ``a_n = relu(s_n + m)``
    treated as constants (detached). Mean over anchors that have a positive and a negative. Both
    log-sum-exps are taken by ``torch.logsumexp``, so any ``gamma`` (tested up to 1024) stays finite.

    Args:
        m: relaxation margin (0.25, the paper's face-recognition setting; 0.4 for fine-grained retrieval).
        gamma: scale (256 for faces; 128 re-id; 80 fine-grained).
        miner: which pairs (a :class:`~facemetric.core.mining.PairMiner` on 1 - cosine); None = every pair.
    """

    def __init__(self, m: float = 0.25, gamma: float = 256.0, miner: PairMiner | None = None) -> None:
        super().__init__()
        self.m, self.gamma, self.miner = m, gamma, miner

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        sim = cosine_similarity(embeddings)
        pos_mask, neg_mask = mine_pairs(self.miner, labels, sim=sim)
        alpha_p = F.relu(1.0 + self.m - sim.detach())
        alpha_n = F.relu(sim.detach() + self.m)
        lse_p = masked_logsumexp(-self.gamma * alpha_p * (sim - (1.0 - self.m)), pos_mask)
        lse_n = masked_logsumexp(self.gamma * alpha_n * (sim - self.m), neg_mask)
        valid = pos_mask.any(dim=1) & neg_mask.any(dim=1)
        losses = F.softplus(lse_p + lse_n).masked_fill(~valid, 0.0)
        return losses.sum() / valid.sum().clamp_min(1)
