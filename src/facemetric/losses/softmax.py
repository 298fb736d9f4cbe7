"""Plain softmax classifier loss: a linear layer with bias on the raw embedding + cross-entropy."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from facemetric.losses.margin import SHARDABLE_HEAD, ClassifierLoss
from facemetric.losses.registry import register_loss


@register_loss("softmax", needs=SHARDABLE_HEAD)
class SoftmaxLoss(ClassifierLoss):
    """Softmax cross-entropy on ``W x + b`` (no normalisation, no margin): the classic baseline
    (e.g. DeepFace, Taigman et al., CVPR 2014).

    Args:
        num_classes: training identities (>= 2).
        embedding_dim: embedding size.
    """

    def __init__(self, num_classes: int, embedding_dim: int) -> None:
        super().__init__(num_classes, embedding_dim)
        self.bias = nn.Parameter(torch.zeros(num_classes))

    def _logits(self, embeddings: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return F.linear(embeddings, self.weight.to(embeddings.dtype), self.bias.to(embeddings.dtype))
