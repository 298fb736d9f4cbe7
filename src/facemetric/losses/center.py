"""Center loss (Wen et al., ECCV 2016): softmax cross-entropy + lambda_c / 2 * ||x - c_y||^2."""

from __future__ import annotations

import torch
import torch.nn as nn

from facemetric.losses.margin import CLASSIFIER_HEAD
from facemetric.losses.registry import register_loss
from facemetric.losses.softmax import SoftmaxLoss


@register_loss("center", needs=CLASSIFIER_HEAD)
class CenterLoss(SoftmaxLoss):
    """Softmax loss plus ``lambda_c / 2 * mean_i ||x_i - c_{y_i}||^2`` (Wen et al., ECCV 2016).

    The centres are an ``nn.Parameter`` learned by the trainer's optimizer from this same loss
    (gradient ``lambda_c * (c_y - x) / batch``), replacing the paper's separate update
    ``c_j -= alpha * delta_c_j``; with a small lambda_c the centres therefore move slowly, so
    raise the learning rate of ``centers`` or lambda_c if they lag.

    Args:
        num_classes, embedding_dim: classes and embedding size.
        lambda_c: weight of the centre term, default 0.003 (the paper's face setting; both
            terms are batch means here, as both are batch sums in the paper).
    """

    def __init__(self, num_classes: int, embedding_dim: int, lambda_c: float = 0.003) -> None:
        super().__init__(num_classes, embedding_dim)
        self.lambda_c = lambda_c
        self.centers = nn.Parameter(torch.empty(num_classes, embedding_dim))
        nn.init.normal_(self.centers, std=0.01)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        softmax = super().forward(embeddings, labels)
        x = embeddings.to(softmax.dtype)
        pull = (x - self.centers.to(x.dtype)[labels]).square().sum(dim=1).mean()
        return softmax + 0.5 * self.lambda_c * pull
