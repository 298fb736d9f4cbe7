"""A loss over the global batch of several training processes: each rank gathers every rank's
embeddings (with their gradient) and labels, and computes the wrapped loss on the concatenation.

A miner on rank ``r`` then finds exactly the positives and negatives one process finds on the
concatenated batch, and the loss is the same number on every rank. The backward pass sums each
rank's gradient for a rank's rows; DistributedDataParallel's average over ranks divides the
``world_size`` equal copies back out, so the weights get the one-process gradient (a test checks it
for the triplet miners, contrastive, multi-similarity, circle and ArcFace).

Memory: every rank holds the global batch's B x B similarities. (pytorch-metric-learning's
"efficient" mode, local anchors against global references, would need every loss to take
separate reference embeddings; facemetric's losses do not yet.)
"""

from __future__ import annotations

import torch
import torch.nn as nn

from facemetric.ops.distributed import gather, gather_with_grad


class GlobalBatchLoss(nn.Module):
    """``loss(gather(embeddings), gather(labels))``; one process: ``loss`` itself."""

    def __init__(self, loss: nn.Module) -> None:
        super().__init__()
        self.loss = loss

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.loss(gather_with_grad(embeddings), gather(labels))
