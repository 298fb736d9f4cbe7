"""Scores of verification pairs: cosine similarity or minus the Euclidean distance, in chunks."""

from __future__ import annotations

import numpy as np


def cosine_scores(embeddings: np.ndarray, i: np.ndarray, j: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """Cosine similarity of rows i[k] and j[k] (embeddings are unit length), in chunks."""
    out = np.empty(len(i), dtype=np.float32)
    for s in range(0, len(i), chunk):
        out[s : s + chunk] = np.einsum("nd,nd->n", embeddings[i[s : s + chunk]], embeddings[j[s : s + chunk]])
    return out


def euclidean_scores(embeddings: np.ndarray, i: np.ndarray, j: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """Minus the Euclidean distance of rows i[k] and j[k] (higher = more similar), in chunks.

    For unit-length embeddings it ranks pairs exactly as :func:`cosine_scores` does
    (distance^2 = 2 - 2 cos); it differs for raw, unnormalised features.
    """
    out = np.empty(len(i), dtype=np.float32)
    for s in range(0, len(i), chunk):
        d = embeddings[i[s : s + chunk]].astype(np.float32) - embeddings[j[s : s + chunk]]
        out[s : s + chunk] = -np.sqrt(np.einsum("nd,nd->n", d, d))
    return out
