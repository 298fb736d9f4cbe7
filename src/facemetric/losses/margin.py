"""Shared machinery of the classification ("margin-softmax") losses.

:class:`ClassifierLoss` owns the class-weight matrix, runs in at least float32 (also under
autocast) and applies cross-entropy; :class:`CosineMarginLoss` adds cosine logits with optional
sub-centres and a per-loss transform of the target-class cosine. Each named loss only chooses
that transform (or the logit scale).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from facemetric.core.needs import LossNeeds
from facemetric.ops.normalize import normalize_rows

# what the classification heads declare at registration (``@register_loss(name, needs=...)``)
CLASSIFIER_HEAD = LossNeeds(classes=True)  # owns class weights: gets num_classes and embedding_dim
SHARDABLE_HEAD = LossNeeds(classes=True, partial_fc=True)  # cosine logits or softmax, cross-entropy only

_SIN_SQ_FLOOR = 1e-6  # keeps sqrt(1 - cos^2) and its gradient finite at cos = +-1


class ClassifierLoss(nn.Module):
    """Cross-entropy over logits against ``num_classes * subcenters`` weight rows.

    ``weight[c * subcenters + j]`` is sub-centre ``j`` of class ``c`` (PML's ``W.t()`` layout).
    """

    def __init__(self, num_classes: int, embedding_dim: int, subcenters: int = 1) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"{type(self).__name__} needs at least 2 classes, got {num_classes}")
        if subcenters < 1:
            raise ValueError(f"subcenters must be >= 1, got {subcenters}")
        self.num_classes, self.subcenters = num_classes, subcenters
        self.weight = nn.Parameter(torch.empty(num_classes * subcenters, embedding_dim))
        nn.init.normal_(self.weight, std=0.01)

    def logits(self, embeddings: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Logits fed to cross-entropy; without ``labels`` the margin-free logits (for prediction)."""
        dtype = torch.promote_types(embeddings.dtype, torch.float32)
        with torch.autocast(embeddings.device.type, enabled=False):  # float32 math under autocast
            return self._logits(embeddings.to(dtype), labels)

    def _logits(self, embeddings: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(self.logits(embeddings, labels), labels)


def classifier_head(loss: nn.Module) -> ClassifierLoss | None:
    """The classifier head a loss holds (itself, a Partial FC's head over every class, a distillation's
    label loss), or None for a pair loss."""
    if isinstance(loss, ClassifierLoss):
        return loss
    head = loss._modules.get("head")
    if isinstance(head, ClassifierLoss) and getattr(loss, "num_local", None) == getattr(loss, "num_classes", -1):
        return head  # Partial FC in one process: its shard is every class
    label = getattr(loss, "label_loss", None)
    return label if isinstance(label, ClassifierLoss) else None


class CosineMarginLoss(ClassifierLoss):
    """Logits ``scale * cos(theta_j)`` with the target cosine replaced by :meth:`target_transform`.

    With ``subcenters = k > 1`` each class holds k weight vectors and its cosine is the maximum
    over them (Sub-center ArcFace, Deng et al., ECCV 2020).
    """

    has_margin = True  # False: target_transform is the identity, skip the gather/scatter

    def __init__(self, num_classes: int, embedding_dim: int, scale: float, subcenters: int = 1) -> None:
        super().__init__(num_classes, embedding_dim, subcenters)
        self.scale = scale

    def cosine(self, embeddings: torch.Tensor) -> torch.Tensor:
        """(batch, num_classes) cosine similarities, clamped to [-1, 1], max-pooled over sub-centres."""
        weight = normalize_rows(self.weight.to(embeddings.dtype))
        cos = F.linear(normalize_rows(embeddings), weight)
        if self.subcenters > 1:
            cos = cos.view(len(cos), self.num_classes, self.subcenters).amax(dim=2)
        return cos.clamp(-1.0, 1.0)

    def logit_scale(self, embeddings: torch.Tensor) -> float | torch.Tensor:
        """Factor multiplying every cosine; a constant unless a loss overrides it."""
        return self.scale

    def target_transform(self, cos: torch.Tensor) -> torch.Tensor:
        """Transform of the target-class cosine; the identity (no margin) by default."""
        return cos

    def _logits(self, embeddings: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        cos = self.cosine(embeddings)
        if labels is not None and self.has_margin:
            index = labels[:, None]
            cos = cos.scatter(1, index, self.target_transform(cos.gather(1, index)))
        return self.logit_scale(embeddings) * cos


def sin_from_cos(cos: torch.Tensor) -> torch.Tensor:
    """sin(theta) for theta in [0, pi], with a floor that keeps the gradient finite at cos = +-1."""
    return torch.sqrt((1.0 - cos * cos).clamp_min(_SIN_SQ_FLOOR))


class CombinedMarginTransform:
    """cos(m1 * theta + m2) - m3 with a monotonic fallback once m1 * theta + m2 passes pi.

    Past ``theta0 = (pi - m2) / m1`` the target becomes ``cos(theta) - m3 - shift`` with
    ``shift = max(m2 * sin(m2), 1 + cos(theta0))``: for m1 = 1 this is insightface's ArcFace
    fallback ``cos(theta) - m * sin(m)``; the second term keeps the fallback below the value at
    theta0 (-1 - m3) for any m1, so the target never increases with theta.
    """

    def __init__(self, m1: float, m2: float, m3: float) -> None:
        if m1 <= 0:
            raise ValueError(f"m1 must be positive, got {m1}")
        self.m1, self.m2, self.m3 = m1, m2, m3
        self.cos_m2, self.sin_m2 = math.cos(m2), math.sin(m2)
        theta0 = (math.pi - m2) / m1
        self.threshold = math.cos(theta0) if theta0 < math.pi else -math.inf
        self.shift = max(m2 * self.sin_m2, 1.0 + math.cos(min(theta0, math.pi)))

    def __call__(self, cos: torch.Tensor) -> torch.Tensor:
        sin = sin_from_cos(cos)
        if self.m1 == 1.0:  # angle addition, no arc-cosine
            moved = cos * self.cos_m2 - sin * self.sin_m2
        else:  # atan2 of a floored sine: finite gradient, unlike acos at +-1
            moved = torch.cos(self.m1 * torch.atan2(sin, cos) + self.m2)
        return torch.where(cos > self.threshold, moved, cos - self.shift) - self.m3
