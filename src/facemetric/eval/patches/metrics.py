"""The three tasks of HPatches (Balntas et al., CVPR 2017) as pure functions on descriptors.

Descriptors are compared by L2 distance (smaller: more alike), as in the benchmark.

* **Patch verification** (:func:`verification_ap`): a list of patch pairs, each the same 3-D
  point or not; the average precision of ranking the pairs by distance (the benchmark averages it
  over its balanced and imbalanced lists, with negatives from the same or other sequences).
* **Image matching** (:func:`matching_ap`): each patch of the reference image is matched to its
  nearest patch of a target image of the same sequence; the matches, ranked by distance, are
  correct when the indices agree. AP over that ranking with every reference patch as a positive (a
  patch whose match is wrong lowers recall); the benchmark averages it over sequences and targets.
* **Patch retrieval** (:func:`retrieval_ap`): each query's positives (the same point in other
  images) among distractors; the AP of each query's ranking, averaged.

The definitions follow hpatches-benchmark's evaluation code; every function is checked on
hand-made descriptors in the tests. They are the readable reference: :mod:`facemetric.eval.patches.tasks`
computes the same figures in chunks over a whole release, and its tests check it against these.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from facemetric.eval.primitives import ap_of_ranking


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) L2 distances."""
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.maximum(d2, 0.0))


def verification_ap(desc_a: ArrayLike, desc_b: ArrayLike, same: ArrayLike) -> float:
    """AP of patch pairs (row k of ``desc_a`` with row k of ``desc_b``) ranked by distance, ``same`` the truth."""
    a, b = np.asarray(desc_a, np.float64), np.asarray(desc_b, np.float64)
    y = np.asarray(same).astype(bool)
    if a.shape != b.shape or a.ndim != 2 or len(y) != len(a):
        raise ValueError(f"pairs need equal (N, D) descriptor arrays and N labels, got {a.shape}, {b.shape}, {y.shape}")
    order = np.argsort(np.linalg.norm(a - b, axis=1), kind="stable")
    return ap_of_ranking(y[order], int(y.sum()))


def matching_ap(ref: ArrayLike, target: ArrayLike) -> float:
    """AP of matching each reference patch to its nearest target patch (patch k corresponds to patch k)."""
    r, t = np.asarray(ref, np.float64), np.asarray(target, np.float64)
    if r.shape != t.shape or r.ndim != 2:
        raise ValueError(f"reference and target need the same (N, D) shape, got {r.shape} and {t.shape}")
    d = _distances(r, t)
    nearest = np.argmin(d, axis=1)
    correct = nearest == np.arange(len(r))
    order = np.argsort(d[np.arange(len(r)), nearest], kind="stable")
    return ap_of_ranking(correct[order], len(r))


def retrieval_ap(queries: ArrayLike, query_labels: ArrayLike, pool: ArrayLike, pool_labels: ArrayLike) -> float:
    """Mean over queries of the AP of ranking ``pool`` by distance, positives those of the query's label."""
    q, p = np.asarray(queries, np.float64), np.asarray(pool, np.float64)
    ql, pl = np.asarray(query_labels), np.asarray(pool_labels)
    if q.ndim != 2 or p.ndim != 2 or q.shape[1] != p.shape[1] or len(ql) != len(q) or len(pl) != len(p):
        raise ValueError(f"queries {q.shape} / {ql.shape} and pool {p.shape} / {pl.shape} do not fit together")
    d = _distances(q, p)
    aps = []
    for k in range(len(q)):
        positive = pl == ql[k]
        order = np.argsort(d[k], kind="stable")
        aps.append(ap_of_ranking(positive[order], int(positive.sum())))
    return float(np.nanmean(aps)) if aps else float("nan")
