"""Pairwise distances and similarities on a B x B matrix (never B x B x D).

Both compute in at least float32 with autocast disabled, so a loss called under
``torch.autocast("cpu", dtype=torch.bfloat16)`` still gets a float32 matrix (float64 stays float64).
"""

from __future__ import annotations

import torch

from facemetric.ops.gram import self_euclidean, self_gram
from facemetric.ops.normalize import normalize_rows

DISTANCES = ("euclidean", "squared_euclidean", "cosine")


def _at_least_float32(x: torch.Tensor) -> torch.Tensor:
    return x.to(torch.promote_types(x.dtype, torch.float32))


def cosine_similarity(x: torch.Tensor) -> torch.Tensor:
    """B x B cosine similarity of the rows of ``x``."""
    with torch.autocast(x.device.type, enabled=False):
        return self_gram(normalize_rows(_at_least_float32(x)))


def paired_distance(
    x: torch.Tensor, i: torch.Tensor, j: torch.Tensor, distance: str = "euclidean", normalize: bool = False
) -> torch.Tensor:
    """Distances between rows ``x[i]`` and ``x[j]`` (O(len(i) x D), no B x B matrix), same conventions
    as :func:`pairwise_distance`."""
    if distance not in DISTANCES:
        raise ValueError(f"unknown distance {distance!r}; use one of {DISTANCES}")
    with torch.autocast(x.device.type, enabled=False):
        x = _at_least_float32(x)
        if normalize or distance == "cosine":
            x = normalize_rows(x)
        if distance == "cosine":
            return 1.0 - (x[i] * x[j]).sum(dim=1)
        diff = x[i] - x[j]
        return (diff * diff).sum(dim=1) if distance == "squared_euclidean" else torch.linalg.vector_norm(diff, dim=1)


def pairwise_distance(x: torch.Tensor, distance: str = "euclidean", normalize: bool = False) -> torch.Tensor:
    """B x B distance matrix of the rows of ``x``.

    ``euclidean`` uses the Gram-matrix expansion (one ``addmm``) with exact zeros on the diagonal;
    its gradient is 0 (not inf) where a distance is 0, as ``torch.cdist``'s. Both it and ``cosine``
    (1 - cosine similarity) backpropagate with one matmul (:mod:`facemetric.ops.gram`).
    ``normalize`` L2-normalises the rows first (pytorch-metric-learning's ``LpDistance`` default).
    """
    if distance not in DISTANCES:
        raise ValueError(f"unknown distance {distance!r}; use one of {DISTANCES}")
    if distance == "cosine":
        return 1.0 - cosine_similarity(x)
    with torch.autocast(x.device.type, enabled=False):
        x = _at_least_float32(x)
        if normalize:
            x = normalize_rows(x)
        return self_euclidean(x, squared=distance == "squared_euclidean")
