"""Supervised contrastive loss (Khosla et al., "Supervised Contrastive Learning", NeurIPS 2020)."""

from __future__ import annotations

import torch
import torch.nn as nn

from facemetric.core.mining import PairMiner
from facemetric.core.needs import LossNeeds
from facemetric.losses.registry import register_loss
from facemetric.ops.distances import cosine_similarity
from facemetric.ops.masks import masked_logsumexp, mine_pairs


@register_loss("supcon", needs=LossNeeds(miner="pairs"))
class SupConLoss(nn.Module):
    """Per anchor ``-mean_p log(e^{s_p/T} / sum_{j != a} e^{s_j/T})`` on cosine similarity (L_out of the paper).

    Paper: Khosla et al., NeurIPS 2020 (NT-Xent of SimCLR when each anchor has one positive).
    Mean over anchors that have a positive and a negative; log-sum-exp form, stable for any temperature.

    Args:
        temperature: T (0.1).
        miner: which pairs enter the numerator and denominator; None = every pair.
    """

    def __init__(self, temperature: float = 0.1, miner: PairMiner | None = None) -> None:
        super().__init__()
        self.temperature, self.miner = temperature, miner

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        sim = cosine_similarity(embeddings)
        logits = sim / self.temperature
        pos_mask, neg_mask = mine_pairs(self.miner, labels, sim=sim)
        valid = pos_mask.any(dim=1) & neg_mask.any(dim=1)
        mean_pos = logits.masked_fill(~pos_mask, 0.0).sum(dim=1) / pos_mask.sum(dim=1).clamp_min(1)
        losses = (masked_logsumexp(logits, pos_mask | neg_mask) - mean_pos).masked_fill(~valid, 0.0)
        return losses.sum() / valid.sum().clamp_min(1)
