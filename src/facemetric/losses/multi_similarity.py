"""Multi-Similarity loss (Wang et al., "Multi-Similarity Loss with General Pair Weighting", CVPR 2019)."""

from __future__ import annotations

import torch
import torch.nn as nn

from facemetric.core.mining import PairMiner
from facemetric.core.needs import LossNeeds
from facemetric.losses.registry import register_loss
from facemetric.miners.multi_similarity import MultiSimilarityMiner
from facemetric.ops.distances import cosine_similarity
from facemetric.ops.masks import masked_logsumexp, mine_pairs


@register_loss("multi_similarity", needs=LossNeeds(miner="pairs"))
class MultiSimilarityLoss(nn.Module):
    """Per anchor ``log(1 + sum_p e^{-alpha(S_p - base)}) / alpha + log(1 + sum_n e^{beta(S_n - base)}) / beta``.

    Paper: Wang et al., CVPR 2019 (eq. 12, with the pair mining of eqs. 7-8 done by the default
    :class:`~facemetric.miners.multi_similarity.MultiSimilarityMiner`), on cosine similarity,
    mean over all anchors (an anchor with no kept pair counts 0, as in pytorch-metric-learning).
    Stable log-sum-exp form. pytorch-metric-learning's loss alone corresponds to
    ``miner=AllPairsMiner()`` (config: ``miner: {name: all_pairs}``).

    Args:
        alpha: positive scale (2.0).
        beta: negative scale (50.0).
        base: similarity offset lambda (0.5).
        miner: which pairs; None = the paper's multi-similarity mining (epsilon 0.1).
    """

    def __init__(
        self, alpha: float = 2.0, beta: float = 50.0, base: float = 0.5, miner: PairMiner | None = None
    ) -> None:
        super().__init__()
        self.alpha, self.beta, self.base = alpha, beta, base
        self.miner: PairMiner = miner if miner is not None else MultiSimilarityMiner()

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        sim = cosine_similarity(embeddings)
        pos_mask, neg_mask = mine_pairs(self.miner, labels, sim=sim)
        pos = masked_logsumexp(-self.alpha * (sim - self.base), pos_mask, add_one=True) / self.alpha
        neg = masked_logsumexp(self.beta * (sim - self.base), neg_mask, add_one=True) / self.beta
        return (pos + neg).mean()
