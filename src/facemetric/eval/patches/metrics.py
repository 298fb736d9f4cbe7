"""The three tasks of HPatches (Balntas et al., CVPR 2017) as pure functions on descriptors.

Descriptors are compared by L2 distance (smaller: more alike), as in the benchmark. A ranked list is
sorted by distance with ties kept in list order (the benchmark's stable ``mergesort``), so a tie's
outcome depends on the list: the benchmark puts a verification list's negatives first and a retrieval
query's positives first.

Average precision comes in two conventions (``AP_CONVENTIONS``), both of hpatches-benchmark:

* ``trapezoid`` (the Python code, ``python/utils/metrics.py``, ``pr``): precision integrated over recall
  by the trapezoid rule over every rank, starting from (recall 0, precision 1);
* ``step`` (the MATLAB code, VLFeat's ``vl_pr`` ``ap``; TREC AP): the mean over positives of the
  precision at each positive's rank.

The step is never the smaller: a positive at rank r, the j-th, adds j / r to it and the mean of j / r
and (j - 1) / (r - 1) to the trapezoid; the gap is largest when the first positive ranks low (up to a few
points on tough retrieval). ROC AUC
(:func:`roc_auc`, the Python code's ``roc``) is the trapezoid of true over false positive rate.

* **Patch verification** (:func:`verification_ap`, :func:`verification_auc`): a list of patch pairs,
  each the same 3-D point or not, ranked by distance.
* **Image matching** (:func:`matching_ap`): each patch of the reference image is matched to its
  nearest patch of a target image of the same sequence; the matches, ranked by distance, are
  correct when the indices agree. AP over that ranking with every reference patch as a positive (a
  patch whose match is wrong lowers recall).
* **Patch retrieval** (:func:`retrieval_ap`): each query's positives among distractors; the AP of
  each query's ranking, averaged.

They are the readable reference: :mod:`facemetric.eval.patches.tasks` and
:mod:`facemetric.eval.patches.retrieval` compute the same figures in chunks over a whole release, and
the tests check them against these and against numbers of hpatches-benchmark's own code.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

AP_CONVENTIONS = ("trapezoid", "step")
SMALL = 1e-10  # the benchmark's guard against 0 / 0


def check_convention(convention: str) -> None:
    """ValueError unless ``convention`` is one of :data:`AP_CONVENTIONS`."""
    if convention not in AP_CONVENTIONS:
        raise ValueError(f"AP convention must be one of {', '.join(AP_CONVENTIONS)}, got {convention!r}")


def trapezoid(y: np.ndarray, x: np.ndarray) -> float:
    """The trapezoid integral of ``y`` over ``x`` (numpy's ``trapezoid``, also on numpy 1)."""
    return float((np.diff(x) * (y[1:] + y[:-1]) / 2.0).sum())


def ranked_ap(ranked: ArrayLike, n_positive: int, convention: str = "trapezoid") -> float:
    """AP of a ranked list of hits (``ranked``: truth in rank order), recall over ``n_positive``."""
    check_convention(convention)
    y = np.asarray(ranked).astype(bool)
    tp = np.concatenate([[0], np.cumsum(y)])
    fp = np.concatenate([[0], np.cumsum(~y)])
    if convention == "step":
        if n_positive == 0:
            return float("nan")
        return float(np.sum(tp[1:][y] / np.arange(1, len(y) + 1)[y]) / n_positive)
    recall = tp / max(n_positive, SMALL)
    precision = np.maximum(tp, SMALL) / np.maximum(tp + fp, SMALL)
    return trapezoid(precision, recall)


def roc_auc(ranked: ArrayLike) -> float:
    """Area under the ROC curve of a ranked list of hits (``ranked``: truth in rank order)."""
    y = np.asarray(ranked).astype(bool)
    tp = np.concatenate([[0], np.cumsum(y)])
    fp = np.concatenate([[0], np.cumsum(~y)])
    return trapezoid(tp / max(int(y.sum()), SMALL), fp / max(int((~y).sum()), SMALL))


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) L2 distances."""
    return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(2))


def _pairs(desc_a: ArrayLike, desc_b: ArrayLike, same: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Pair distances and truth of a pair list (rows of ``desc_a`` with rows of ``desc_b``)."""
    a, b = np.asarray(desc_a, np.float64), np.asarray(desc_b, np.float64)
    y = np.asarray(same).astype(bool)
    if a.shape != b.shape or a.ndim != 2 or len(y) != len(a):
        raise ValueError(f"pairs need equal (N, D) descriptor arrays and N labels, got {a.shape}, {b.shape}, {y.shape}")
    return np.linalg.norm(a - b, axis=1), y


def verification_ap(desc_a: ArrayLike, desc_b: ArrayLike, same: ArrayLike, convention: str = "trapezoid") -> float:
    """AP of patch pairs (row k of ``desc_a`` with row k of ``desc_b``) ranked by distance, ``same`` the truth."""
    d, y = _pairs(desc_a, desc_b, same)
    ranked = y[np.argsort(d, kind="stable")]
    return ranked_ap(ranked, int(y.sum()), convention)


def verification_auc(desc_a: ArrayLike, desc_b: ArrayLike, same: ArrayLike) -> float:
    """ROC AUC of patch pairs ranked by distance (the benchmark's balanced verification figure)."""
    d, y = _pairs(desc_a, desc_b, same)
    return roc_auc(y[np.argsort(d, kind="stable")])


def matching_ap(ref: ArrayLike, target: ArrayLike, convention: str = "trapezoid") -> float:
    """AP of matching each reference patch to its nearest target patch (patch k corresponds to patch k)."""
    r, t = np.asarray(ref, np.float64), np.asarray(target, np.float64)
    if r.shape != t.shape or r.ndim != 2:
        raise ValueError(f"reference and target need the same (N, D) shape, got {r.shape} and {t.shape}")
    d = _distances(r, t)
    nearest = np.argmin(d, axis=1)
    correct = nearest == np.arange(len(r))
    order = np.argsort(d[np.arange(len(r)), nearest], kind="stable")
    return ranked_ap(correct[order], len(r), convention)


def retrieval_ap(
    queries: ArrayLike, query_labels: ArrayLike, pool: ArrayLike, pool_labels: ArrayLike, convention: str = "trapezoid"
) -> float:
    """Mean over queries of the AP of ranking ``pool`` (ties in pool order) by distance, positives those of the
    query's label."""
    q, p = np.asarray(queries, np.float64), np.asarray(pool, np.float64)
    ql, pl = np.asarray(query_labels), np.asarray(pool_labels)
    if q.ndim != 2 or p.ndim != 2 or q.shape[1] != p.shape[1] or len(ql) != len(q) or len(pl) != len(p):
        raise ValueError(f"queries {q.shape} / {ql.shape} and pool {p.shape} / {pl.shape} do not fit together")
    d = _distances(q, p)
    aps = []
    for k in range(len(q)):
        positive = pl == ql[k]
        order = np.argsort(d[k], kind="stable")
        aps.append(ranked_ap(positive[order], int(positive.sum()), convention))
    return float(np.nanmean(aps)) if aps else float("nan")
