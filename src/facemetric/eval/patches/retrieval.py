"""Patch retrieval as hpatches-benchmark's Python code scores it (``eval_retrieval`` in ``python/utils/tasks.py``,
commit e0c993c), in chunks.

Each query is the reference patch of a point; its positives are the point's five patches in the level's
target images; the distractors are the reference patches of the list's distractor points, in list
order, less those of the query's own sequence (the benchmark masks them: overlapping detections of one
scene make near-copies). The query ranks its five positives, then the kept distractors, by distance,
ties in that order (a distractor at a positive's distance ranks after it). The benchmark scores a pool
of size k as the first k entries of that list: the five positives and the first k - 5 kept
distractors, for k in :data:`POOL_SIZES`; a pool larger than the list is the whole list. The figure
published tables quote (the paper's, from the MATLAB code with every distractor) is the whole list:
:func:`query_aps` gives it as the last column.

Two variants, asked for by option only: ``distractor_image="target"`` takes each distractor's patch in
one target image of the level drawn per distractor (facemetric's earlier choice: positives and
distractors equally jittered; hard and tough figures rise by about 5 and 7 points), and
``same_sequence=True`` keeps the distractors of the query's sequence (only the query's own point is left
out).
"""

from __future__ import annotations

import numpy as np

from facemetric.eval.patches.metrics import SMALL, check_convention

POOL_SIZES = (100, 500, 1000, 5000, 10_000, 15_000, 20_000)  # the benchmark's at_ranks
POSITIVES = 5
CHUNK = 32  # queries at a time: a (CHUNK, 5, distractors) count array
TIE = 1e-10  # squared distances closer than this are ties


def squared(q: np.ndarray, x: np.ndarray) -> np.ndarray:
    """(len(q), len(x)) squared L2 distances (float64), ties within :data:`TIE` made exact."""
    d2 = (q * q).sum(1)[:, None] + (x * x).sum(1)[None, :] - 2.0 * q @ x.T
    return np.round(np.maximum(d2, 0.0) / TIE) * TIE


def ap_of_ranks(ranks: np.ndarray, convention: str) -> np.ndarray:
    """AP of each row of ``ranks`` (n, P): the 1-based ranks of its P positives, ascending."""
    j = np.arange(1, ranks.shape[1] + 1, dtype=np.float64)[None, :]
    at = j / ranks
    if convention == "step":
        return at.mean(1)
    before = np.maximum(j - 1, SMALL) / np.maximum(ranks - 1, SMALL)  # precision just above each positive
    return ((before + at) / 2 * (1.0 / ranks.shape[1])).sum(1)


def query_aps(
    q: np.ndarray,
    positives: np.ndarray,
    pool: np.ndarray,
    q_group: np.ndarray,
    pool_group: np.ndarray,
    cutoffs: list[int],
    convention: str = "trapezoid",
) -> np.ndarray:
    """(n, len(cutoffs) + 1) AP of each query (rows of ``q``) ranking its ``positives`` (n, 5, D) among the first
    ``cutoff`` distractors of ``pool`` (m, D) it keeps, then among all it keeps: those whose ``pool_group`` differs
    from its ``q_group`` (the sequence; or the point, to keep the sequence's other points)."""
    check_convention(convention)
    n, m = len(q), len(pool)
    out = np.empty((n, len(cutoffs) + 1))
    for s in range(0, n, CHUNK):
        qc, pc = q[s : s + CHUNK], positives[s : s + CHUNK]
        kc = q_group[s : s + CHUNK, None] != pool_group[None, :]  # (c, m): the distractors each query ranks
        diff = pc - qc[:, None, :]
        d_pos = np.sort(np.round((diff * diff).sum(2) / TIE) * TIE, axis=1)  # (c, 5)
        if m == 0:
            before = np.zeros((len(qc), len(cutoffs) + 1, pc.shape[1]), np.int64)
        else:
            d_pool = squared(qc, pool)
            ahead = kc[:, None, :] & (d_pool[:, None, :] < d_pos[:, :, None])  # (c, 5, m): strictly closer
            cum = np.cumsum(ahead, axis=2, dtype=np.int32)
            count = np.cumsum(kc, axis=1)  # kept distractors up to each position
            ends = [np.minimum((count < c).sum(1), m - 1) for c in cutoffs] + [np.full(len(qc), m - 1)]
            rows = np.arange(len(qc))
            before = np.stack([cum[rows, :, end] for end in ends], axis=1)  # (c, pools, 5)
            empty = np.array([c <= 0 for c in cutoffs] + [False])
            before[:, empty, :] = 0
        ranks = np.arange(1, pc.shape[1] + 1)[None, None, :] + before
        aps = ap_of_ranks(ranks.reshape(-1, pc.shape[1]).astype(np.float64), convention)
        out[s : s + CHUNK] = aps.reshape(len(qc), -1)
    return out
