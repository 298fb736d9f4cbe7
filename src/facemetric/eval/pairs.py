"""Verification pairs drawn from labelled images (for validation on held-out identities)."""

from __future__ import annotations

import numpy as np


def sample_pairs(labels: np.ndarray, max_genuine: int = 3000, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (i, j, same): genuine pairs (all, or ``max_genuine`` at random) and as many impostor pairs.

    Balanced like the LFW protocol, so accuracy 0.5 is chance. Deterministic for ``seed``.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    genuine = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        a, b = np.triu_indices(len(idx), k=1)
        genuine.append(np.stack([idx[a], idx[b]], axis=1))
    genuine = np.concatenate(genuine) if genuine else np.zeros((0, 2), dtype=np.int64)
    if len(genuine) == 0:
        raise ValueError("no genuine pair: every identity has a single image")
    if len(genuine) > max_genuine:
        genuine = genuine[rng.choice(len(genuine), size=max_genuine, replace=False)]
    n = len(genuine)
    if len(np.unique(labels)) < 2:
        raise ValueError("no impostor pair: a single identity")
    impostor = np.zeros((0, 2), dtype=np.int64)
    while len(impostor) < n:  # rejection sampling; same-identity draws are rare
        cand = rng.integers(0, len(labels), size=(2 * n, 2))
        cand = cand[labels[cand[:, 0]] != labels[cand[:, 1]]]
        impostor = np.concatenate([impostor, cand])[:n]
    pairs = np.concatenate([genuine, impostor])
    same = np.concatenate([np.ones(n, dtype=np.int64), np.zeros(n, dtype=np.int64)])
    return pairs[:, 0], pairs[:, 1], same


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
