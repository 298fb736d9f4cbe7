"""Multi-Similarity loss (Wang et al., "Multi-Similarity Loss with General Pair Weighting", CVPR 2019)."""

from __future__ import annotations

import torch
import torch.nn as nn

from facemetric.losses.registry import register_loss
from facemetric.mining.distances import cosine_similarity
from facemetric.mining.miners import masked_logsumexp, multi_similarity_pairs, pair_masks


@register_loss("multi_similarity")
class MultiSimilarityLoss(nn.Module):
    """Per anchor ``log(1 + sum_p e^{-alpha(S_p - base)}) / alpha + log(1 + sum_n e^{beta(S_n - base)}) / beta``.

    Paper: Wang et al., CVPR 2019 (eq. 12 with the pair mining of eqs. 7-8), on cosine similarity,
    mean over all anchors (an anchor with no kept pair counts 0, as in pytorch-metric-learning).
    Stable log-sum-exp form.

    Args:
        alpha: positive scale (2.0).
        beta: negative scale (50.0).
        base: similarity offset lambda (0.5).
        mining: apply the paper's pair mining first (True; PML's loss alone corresponds to False).
        epsilon: mining margin (0.1).
    """

    def __init__(
        self, alpha: float = 2.0, beta: float = 50.0, base: float = 0.5, mining: bool = True, epsilon: float = 0.1
    ) -> None:
        super().__init__()
        self.alpha, self.beta, self.base, self.mining, self.epsilon = alpha, beta, base, mining, epsilon

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        sim = cosine_similarity(embeddings)
        pos_mask, neg_mask = pair_masks(labels)
        if self.mining:
            pos_mask, neg_mask = multi_similarity_pairs(sim, pos_mask, neg_mask, self.epsilon)
        pos = masked_logsumexp(-self.alpha * (sim - self.base), pos_mask, add_one=True) / self.alpha
        neg = masked_logsumexp(self.beta * (sim - self.base), neg_mask, add_one=True) / self.beta
        return (pos + neg).mean()
