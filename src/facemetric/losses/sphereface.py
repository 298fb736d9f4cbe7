"""SphereFace / A-Softmax (Liu et al., CVPR 2017): multiplicative angular margin with lambda annealing."""

from __future__ import annotations

import math

import torch

from facemetric.losses.margin import CLASSIFIER_HEAD, CosineMarginLoss
from facemetric.losses.registry import register_loss


@register_loss("sphereface", needs=CLASSIFIER_HEAD)
class SphereFaceLoss(CosineMarginLoss):
    """SphereFace (Liu et al., CVPR 2017): logits ``||x|| * cos(theta_j)``, target ``||x|| * t`` with
    ``t = (lambda * cos(theta_y) + psi(theta_y)) / (1 + lambda)`` and
    ``psi(theta) = (-1)^k cos(m theta) - 2k`` for theta in [k pi / m, (k + 1) pi / m].

    cos(m theta) is the Chebyshev polynomial T_m(cos theta), k counts the thresholds
    cos(j pi / m) at or above cos theta: no arc-cosine. lambda anneals as
    ``max(lambda_min, lambda_base * (1 + lambda_gamma * iteration) ** -lambda_power)``; the
    iteration counter is a buffer (saved with the state dict) advanced by each training-mode forward.
    With ``lambda_base = lambda_min = 0`` this equals PML's ``SphereFaceLoss`` (which has no
    annealing). Note that the margin acts through ``||x||``: L2-normalised embeddings give logits
    in [-2m - 1, 1], i.e. a weak softmax.

    Args:
        num_classes, embedding_dim: classes and embedding size.
        margin: integer m >= 1, default 4.
        lambda_base, lambda_gamma, lambda_power, lambda_min: annealing, defaults 1000, 0.12, 1, 5
            (the paper's Caffe settings).
        subcenters: weight vectors per class, max-pooled (default 1).
    """

    def __init__(
        self,
        num_classes: int,
        embedding_dim: int,
        margin: int = 4,
        lambda_base: float = 1000.0,
        lambda_gamma: float = 0.12,
        lambda_power: float = 1.0,
        lambda_min: float = 5.0,
        subcenters: int = 1,
    ) -> None:
        if int(margin) != margin or margin < 1:
            raise ValueError(f"SphereFace margin must be a positive integer, got {margin}")
        super().__init__(num_classes, embedding_dim, 1.0, subcenters)
        self.margin = int(margin)
        self.lambda_base, self.lambda_gamma = lambda_base, lambda_gamma
        self.lambda_power, self.lambda_min = lambda_power, lambda_min
        self.iteration: torch.Tensor
        self.register_buffer("iteration", torch.zeros((), dtype=torch.long))

    def current_lambda(self) -> torch.Tensor:
        """The annealed lambda at the current iteration."""
        decay = (1.0 + self.lambda_gamma * self.iteration.float()) ** -self.lambda_power
        return (self.lambda_base * decay).clamp_min(self.lambda_min)

    def logit_scale(self, embeddings: torch.Tensor) -> torch.Tensor:
        return embeddings.norm(dim=1, keepdim=True)

    def target_transform(self, cos: torch.Tensor) -> torch.Tensor:
        previous, cos_m_theta = torch.ones_like(cos), cos
        for _ in range(self.margin - 1):  # Chebyshev recurrence T_{n+1} = 2c T_n - T_{n-1}
            previous, cos_m_theta = cos_m_theta, 2.0 * cos * cos_m_theta - previous
        k = torch.zeros_like(cos)
        for threshold in (math.cos(j * math.pi / self.margin) for j in range(1, self.margin)):
            k = k + (cos <= threshold).to(cos.dtype)
        psi = (1.0 - 2.0 * torch.remainder(k, 2.0)) * cos_m_theta - 2.0 * k
        lam = self.current_lambda().to(cos.dtype)
        return (lam * cos + psi) / (1.0 + lam)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        loss = super().forward(embeddings, labels)
        if self.training:
            self.iteration += 1
        return loss
