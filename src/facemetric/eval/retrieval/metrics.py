"""Retrieval (identification) metrics: P@1, R-precision, MAP@R and Recall@K.

Every query embedding is ranked against a set of reference embeddings by
inner product (= cosine similarity for the L2-normalised float32 embeddings
the rest of facemetric produces). Two modes:

* leave-one-out (the default): every embedding is a query against all the
  others; a query never retrieves itself (it is dropped by *index*, so an
  identical copy of the query under another index is still retrieved);
* gallery: the embeddings are queries against a separate reference set
  (``reference_embeddings``/``reference_labels``); nothing is excluded.

Nearest neighbours come from FAISS (:mod:`facemetric.eval.retrieval.search`),
searched a chunk of queries at a time, so memory is O(N) plus one chunk's
scratch - never an N x N similarity matrix. ``index="flat"`` is exact;
``index="ivf"`` (an inverted file index for large galleries) is approximate,
and so are the metrics computed with it.

MAP@R and R-precision follow Musgrave et al., "A Metric Learning Reality
Check" (ECCV 2020). The result is typed
(:class:`~facemetric.eval.retrieval.result.RetrievalResult`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from facemetric.eval.primitives import check_labels, check_positive_int
from facemetric.eval.retrieval.result import RetrievalResult
from facemetric.eval.retrieval.search import as_embeddings, build_index, search_chunks


def retrieval_metrics(
    embeddings: ArrayLike,
    labels: ArrayLike,
    ks: Sequence[int] = (1, 5, 10),
    *,
    reference_embeddings: ArrayLike | None = None,
    reference_labels: ArrayLike | None = None,
    max_r: int | None = 1000,
    index: str = "flat",
    nlist: int | None = None,
    nprobe: int = 16,
    chunk: int = 2048,
    seed: int = 0,
) -> RetrievalResult:
    """P@1, R-precision, MAP@R and Recall@K of ranking by inner product.

    Without a reference set every embedding is a query against all the others
    (leave-one-out); with ``reference_embeddings``/``reference_labels`` the
    embeddings are queries against that gallery. For a query, R is the number
    of references of its class (other than itself), rel(i) is 1 when the i-th
    neighbour shares its label and P(i) is the fraction of the first i
    neighbours that do:

    * ``precision_at_1``: mean rel(1);
    * ``r_precision``: mean of (number of rel in the first R) / R;
    * ``map_at_r``: mean of sum_{i <= R} P(i) * rel(i) / R (Musgrave et al.
      2020);
    * ``recall_at_k[str(k)]``: fraction of queries with a rel among the first
      k (k larger than the number of references just means "all of them").

    Queries with R = 0 (a class with no other member in the references) are
    left out of every mean and counted in ``queries_without_positives``.
    Queries with R > ``max_r`` are scored with R = ``max_r`` (R-precision and
    MAP@R over their first ``max_r`` neighbours), which bounds the search
    depth; they are counted in ``queries_r_capped``. ``max_r=None`` never
    caps. The search depth is ``k_searched = max(max(ks), max capped R)``,
    limited to the number of references.

    With ``index="ivf"`` the neighbours, and so every metric, are approximate
    (``exact`` is False in the result).
    """
    q = as_embeddings(embeddings, "embeddings")
    q_labels = check_labels(labels, len(q), "labels", "embeddings")
    if (reference_embeddings is None) != (reference_labels is None):
        raise ValueError("pass both reference_embeddings and reference_labels, or neither")
    leave_one_out = reference_embeddings is None
    if reference_embeddings is None or reference_labels is None:
        r, r_labels = q, q_labels
    else:
        r = as_embeddings(reference_embeddings, "reference_embeddings")
        r_labels = check_labels(reference_labels, len(r), "reference_labels", "reference_embeddings")
        if q.shape[1] != r.shape[1]:
            raise ValueError(
                f"embeddings and reference_embeddings must have the same dimension, got {q.shape[1]} and {r.shape[1]}"
            )
    ks = sorted({check_positive_int(k, "every k in ks") for k in ((ks,) if isinstance(ks, (int, np.integer)) else ks)})
    if not ks:
        raise ValueError("ks is empty; give at least one k, e.g. ks=(1, 5)")
    if max_r is not None:
        max_r = check_positive_int(max_r, "max_r")
    chunk = check_positive_int(chunk, "chunk")

    # Integer class ids shared by queries and references.
    if leave_one_out:
        _, q_cls = np.unique(q_labels, return_inverse=True)
        r_cls = q_cls
    else:
        _, cls = np.unique(np.concatenate([q_labels, r_labels]), return_inverse=True)
        q_cls, r_cls = cls[: len(q)], cls[len(q) :]
    q_cls = q_cls.astype(np.int64).ravel()
    r_cls = r_cls.astype(np.int64).ravel()
    counts = np.bincount(r_cls, minlength=int(max(q_cls.max(), r_cls.max())) + 1)
    r_full = counts[q_cls] - int(leave_one_out)  # R per query
    has_pos = r_full > 0
    n_eval = int(has_pos.sum())
    if n_eval == 0:
        raise ValueError(
            "no query has another item of its class among the references, so "
            "there is nothing to retrieve; check the labels"
        )
    r_eff = r_full if max_r is None else np.minimum(r_full, max_r)
    capped = has_pos & (r_eff < r_full)

    available = len(r) - int(leave_one_out)
    k_search = min(max(ks[-1], int(r_eff.max())), available)
    idx = build_index(r, index, nlist, nprobe, seed)

    p_at_1 = np.zeros(len(q), dtype=np.float64)
    r_prec = np.zeros(len(q), dtype=np.float64)
    map_r = np.zeros(len(q), dtype=np.float64)
    hit_at = {k: np.zeros(len(q), dtype=bool) for k in ks}
    ranks = np.arange(1, k_search + 1, dtype=np.float32)
    for start, indices, _ in search_chunks(idx, q, k_search, leave_one_out, chunk):
        stop = start + len(indices)
        rel = (indices >= 0) & (r_cls[np.maximum(indices, 0)] == q_cls[start:stop, None])
        big_r = r_eff[start:stop]
        in_r = rel & (ranks[None, :] <= big_r[:, None])
        denom = np.maximum(big_r, 1).astype(np.float64)
        precision = np.cumsum(rel, axis=1, dtype=np.float32) / ranks  # P(i)
        p_at_1[start:stop] = rel[:, 0]
        r_prec[start:stop] = in_r.sum(axis=1) / denom
        map_r[start:stop] = np.sum(precision, axis=1, where=in_r, dtype=np.float64) / denom
        first_hit = np.where(rel.any(axis=1), rel.argmax(axis=1), k_search)
        for k in ks:
            hit_at[k][start:stop] = first_hit < k

    return RetrievalResult(
        precision_at_1=float(p_at_1[has_pos].mean()),
        r_precision=float(r_prec[has_pos].mean()),
        map_at_r=float(map_r[has_pos].mean()),
        recall_at_k={str(k): float(hit_at[k][has_pos].mean()) for k in ks},
        num_queries=int(len(q)),
        num_evaluated=n_eval,
        queries_without_positives=int(len(q) - n_eval),
        queries_r_capped=int(capped.sum()),
        max_r=max_r,
        k_searched=int(k_search),
        leave_one_out=leave_one_out,
        index=index,
        exact=index == "flat",
    )
