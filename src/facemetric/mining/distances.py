"""Pairwise distances on a B x B matrix (never B x B x D)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

DISTANCES = ("euclidean", "squared_euclidean", "cosine")


def pairwise_distance(x: torch.Tensor, distance: str = "euclidean", eps: float = 1e-12) -> torch.Tensor:
    """B x B distance matrix of the rows of ``x``.

    ``euclidean`` uses the Gram-matrix expansion and a sqrt guarded against the zero
    diagonal (whose gradient would be inf); ``cosine`` is 1 - cosine similarity.
    """
    if distance == "cosine":
        x = F.normalize(x, dim=1)
        return 1.0 - x @ x.t()
    if distance not in DISTANCES:
        raise ValueError(f"unknown distance {distance!r}; use one of {DISTANCES}")
    sq = (x * x).sum(dim=1)
    d2 = (sq[:, None] + sq[None, :] - 2.0 * (x @ x.t())).clamp_min(0.0)
    d2 = d2 * (1.0 - torch.eye(len(x), dtype=x.dtype, device=x.device))  # exact zeros on the diagonal
    if distance == "squared_euclidean":
        return d2
    zero = d2 <= eps
    return torch.where(zero, torch.zeros_like(d2), torch.sqrt(torch.where(zero, torch.ones_like(d2), d2)))
