"""Knowledge distillation: the student's embeddings regress onto a teacher's, pointwise and pairwise."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from facemetric.core.errors import ConfigError
from facemetric.core.needs import LossNeeds
from facemetric.losses.registry import register_loss


@register_loss("distill", needs=LossNeeds(teacher=True))
class DistillLoss(nn.Module):
    """``cosine * mean(1 - cos(s_i, t_i)) + relation * mean_{i != j} (s_i.s_j - t_i.t_j)^2``.

    The first term puts each student embedding ``s_i`` (L2-normalised) on its teacher embedding
    ``t_i`` (equal to half the squared L2 distance of unit vectors: embedding regression as in
    FitNets / "embedding distillation"); the second matches the batch's pairwise cosine similarities
    (relational knowledge distillation, Park et al., CVPR 2019, on angles of pairs rather than
    triplets), which carries the teacher's notion of who resembles whom even where the student cannot
    reproduce the exact vectors. Images without a teacher embedding (the teacher found no face: a NaN
    row) are left out of both terms.

    The targets of a batch are set in :attr:`targets` before the step by the distillation callback
    (``facemetric.train.callbacks.distill``), which looks them up in the cached teacher table; a
    labelled loss (``distill.labels`` > 0: e.g. ArcFace on the photos' identities) is added by
    :meth:`add_label_loss`.

    Args:
        cosine: weight of the pointwise term (default 1).
        relation: weight of the pairwise term (default 1).
    """

    def __init__(self, cosine: float = 1.0, relation: float = 1.0) -> None:
        super().__init__()
        if cosine < 0 or relation < 0 or cosine + relation == 0:
            raise ValueError(f"cosine and relation must be >= 0 and not both 0, got {cosine}, {relation}")
        self.cosine, self.relation = cosine, relation
        self.targets: torch.Tensor | None = None  # (N, D) unit rows of this batch, NaN where the teacher has none
        self.label_loss: nn.Module | None = None
        self.label_weight = 0.0

    def add_label_loss(self, loss: nn.Module, weight: float) -> None:
        """Also learn from the identities: ``+ weight * loss(embeddings, labels)``."""
        self.label_loss, self.label_weight = loss, weight

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        targets, self.targets = self.targets, None  # each batch's targets are used once
        if targets is None:
            raise ConfigError(
                "loss distill: no teacher targets for this batch; set distill.teacher (facemetric train does "
                "this), or set loss.targets before calling the loss"
            )
        if targets.shape != embeddings.shape:
            raise ValueError(f"distill: teacher targets {tuple(targets.shape)} vs embeddings {tuple(embeddings.shape)}")
        valid = torch.isfinite(targets).all(dim=1)
        s = F.normalize(embeddings[valid], dim=1)
        t = targets[valid].to(s.dtype)
        loss = embeddings.new_zeros(())
        if len(s):
            if self.cosine:
                loss = loss + self.cosine * (1.0 - (s * t).sum(dim=1)).mean()
            if self.relation and len(s) > 1:
                off = ~torch.eye(len(s), dtype=torch.bool, device=s.device)
                loss = loss + self.relation * ((s @ s.T - t @ t.T)[off] ** 2).mean()
        if self.label_loss is not None and self.label_weight:
            loss = loss + self.label_weight * self.label_loss(embeddings, labels)
        return loss
