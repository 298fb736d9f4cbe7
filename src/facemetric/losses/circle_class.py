"""Class-level (proxy) circle loss (Sun et al., CVPR 2020)."""

from __future__ import annotations

import torch

from facemetric.losses.margin import CLASSIFIER_HEAD, CosineMarginLoss
from facemetric.losses.registry import register_loss


@register_loss("circle_class", needs=CLASSIFIER_HEAD)
class CircleClassLoss(CosineMarginLoss):
    """Circle loss with class weights as proxies (Sun et al., CVPR 2020, Eq. 6 with one positive).

    With s_p the cosine to the own class and s_n those to the others, the logits are
    ``gamma * alpha_p * (s_p - (1 - m))`` and ``gamma * alpha_n * (s_n - m)`` with
    ``alpha_p = relu(1 + m - s_p)`` and ``alpha_n = relu(s_n + m)`` held constant in the
    gradient (as in the authors' code), followed by softmax cross-entropy. Logits stay within
    about ``2.3 * gamma`` and the log-softmax is shift-invariant, so gamma = 1024 is safe in float32.

    Args:
        num_classes, embedding_dim: classes and embedding size.
        gamma: scale (stored as ``scale``), default 256 (the paper's face-recognition setting).
        margin: relaxation m, default 0.25.
        subcenters: weight vectors per class, max-pooled (default 1).
    """

    def __init__(
        self, num_classes: int, embedding_dim: int, gamma: float = 256.0, margin: float = 0.25, subcenters: int = 1
    ) -> None:
        super().__init__(num_classes, embedding_dim, gamma, subcenters)
        self.margin = margin

    @property
    def gamma(self) -> float:
        """The scale, under the paper's name (a loss schedule may set either)."""
        return float(self.scale)

    @gamma.setter
    def gamma(self, value: float) -> None:
        self.scale = value

    def _logits(self, embeddings: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        cos = self.cosine(embeddings)
        if labels is None:
            return self.scale * cos
        m, index = self.margin, labels[:, None]
        positive = cos.gather(1, index)
        alpha_p = (1.0 + m - positive).clamp_min(0.0).detach()
        alpha_n = (cos + m).clamp_min(0.0).detach()
        logits = (alpha_n * (cos - m)).scatter(1, index, alpha_p * (positive - (1.0 - m)))
        return self.scale * logits
