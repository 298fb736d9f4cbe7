"""Embedding head: feature map -> L2-normalised embedding."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class EmbeddingHead(nn.Module):
    """BN -> dropout -> flatten -> linear -> BN, then L2 normalisation (ArcFace's "E" output).

    Flattening (rather than global average pooling) keeps where features are on the face,
    which matters for aligned faces; ``normalize=False`` returns the raw features (margin
    losses normalise themselves, but every public embedding is unit length).
    """

    def __init__(self, channels: int, spatial: tuple[int, int], embedding_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.bn_in = nn.BatchNorm2d(channels)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(channels * spatial[0] * spatial[1], embedding_dim)
        self.bn_out = nn.BatchNorm1d(embedding_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dropout(self.bn_in(x)).flatten(1)
        return F.normalize(self.bn_out(self.fc(x)), dim=1)
