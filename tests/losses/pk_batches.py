"""Shared inputs of the pair-loss tests (imported by name: pytest puts this folder on sys.path)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

# unit vectors: x0 = x2 = (1, 0), x1 = (0, 1); s01 = 0, s02 = 1, s12 = 0
TINY = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
TINY_LABELS = torch.tensor([0, 0, 1])


def pk_batch(seed: int, dtype: torch.dtype = torch.float64, p: int = 8, k: int = 4, d: int = 16):
    """L2-normalised random embeddings of a shuffled P x K batch, and their labels."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(p).repeat_interleave(k)
    x = F.normalize(torch.randn(p * k, d, generator=g, dtype=dtype), dim=1)
    return x, y[torch.randperm(p * k, generator=g)]
