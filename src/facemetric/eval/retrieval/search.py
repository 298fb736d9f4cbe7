"""Nearest neighbours by inner product with FAISS, a chunk of queries at a time: what retrieval is measured on.

Every query embedding is ranked against a set of reference embeddings by inner product (= cosine
similarity for the L2-normalised float32 embeddings the rest of facemetric produces). Queries are
searched ``chunk`` at a time, so memory is O(N * k) for :func:`knn` (and O(N) for
:func:`~facemetric.eval.retrieval.metrics.retrieval_metrics`, which never keeps the neighbour lists)
plus one chunk's scratch - never an N x N similarity matrix. With ``exclude_self`` (leave-one-out) a
query never retrieves itself: it is dropped by *index*, so an identical copy of the query under another
index is still retrieved. ``index="flat"`` is exact; ``index="ivf"`` (an inverted file index for large
galleries) is approximate.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import faiss
import numpy as np
from numpy.typing import ArrayLike

from facemetric.eval.primitives import check_positive_int

INDEX_TYPES = ("flat", "ivf")


def as_embeddings(x: ArrayLike, name: str) -> np.ndarray:
    """Return ``x`` as a C-contiguous float32 (N, D) array, or raise ValueError."""
    a = np.ascontiguousarray(x, dtype=np.float32)
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (num_items, dim) array, got shape {a.shape}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {a.shape})")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains {int(np.sum(~np.isfinite(a)))} NaN/inf values")
    return a


def build_index(
    references: np.ndarray,
    index: str,
    nlist: int | None,
    nprobe: int,
    seed: int,
) -> faiss.Index:
    """A FAISS inner-product index holding ``references`` (float32, C-contiguous).

    ``"flat"`` is an exact ``IndexFlatIP``. ``"ivf"`` is an ``IndexIVFFlat``
    with ``nlist`` cells (default ``round(4 * sqrt(N))``) from spherical
    k-means trained on a random sample of at most ``50 * nlist`` references
    (drawn with ``seed``); a search visits the ``nprobe`` closest cells.
    """
    n, d = references.shape
    idx: Any
    if index == "flat":
        idx = faiss.IndexFlatIP(d)
    elif index == "ivf":
        if nlist is None:
            nlist = int(round(4.0 * np.sqrt(n)))
        nlist = check_positive_int(nlist, "nlist")
        nprobe = check_positive_int(nprobe, "nprobe")
        nlist = min(nlist, n)
        quantizer = faiss.IndexFlatIP(d)
        idx = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
        # The SWIG wrapper already keeps the quantizer alive; be explicit anyway.
        idx.referenced_objects = [quantizer]
        idx.cp.spherical = True
        idx.cp.seed = int(seed)
        n_train = min(n, 50 * nlist)
        rng = np.random.default_rng(seed)
        sample = np.sort(rng.choice(n, size=n_train, replace=False))
        idx.train(references[sample])
        idx.nprobe = min(nprobe, nlist)
    else:
        raise ValueError(f"index must be one of {INDEX_TYPES}, got {index!r}")
    idx.add(references)
    return idx


def search_chunks(
    idx: faiss.Index,
    queries: np.ndarray,
    k: int,
    exclude_self: bool,
    chunk: int,
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Yield ``(start, indices, scores)`` for each chunk of ``queries``.

    With ``exclude_self`` query ``i`` is reference ``i``: k + 1 neighbours are
    searched and, per row, the column holding index ``i`` is dropped; rows
    where it is absent (ties among more than k + 1 duplicates, or an IVF probe
    that missed it) drop their last column instead. Missing results (IVF)
    have index -1 and score -inf.
    """
    k_search = k + 1 if exclude_self else k
    for start in range(0, len(queries), chunk):
        stop = min(start + chunk, len(queries))
        scores, indices = idx.search(queries[start:stop], k_search)
        if exclude_self:
            own = indices == np.arange(start, stop, dtype=np.int64)[:, None]
            own[~own.any(axis=1), -1] = True
            keep = ~own  # exactly k True per row
            indices = indices[keep].reshape(stop - start, k)
            scores = scores[keep].reshape(stop - start, k)
        missing = indices < 0
        if missing.any():
            scores[missing] = -np.inf
        yield start, indices, scores


def knn(
    queries: ArrayLike,
    references: ArrayLike,
    k: int,
    exclude_self: bool = False,
    chunk: int = 2048,
    *,
    index: str = "flat",
    nlist: int | None = None,
    nprobe: int = 16,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` references with the highest inner product with each query.

    Returns ``(indices, scores)``: (Nq, k) int64 reference indices and (Nq, k)
    float32 inner products, best first. Queries are searched ``chunk`` at a
    time. With ``exclude_self`` the queries must be the references (same
    array) and a query never gets its own index back; an identical vector
    stored under another index is still returned.

    ``index="flat"`` is exact. ``index="ivf"`` is approximate (see
    :func:`build_index` for ``nlist``/``nprobe``/``seed``); when the probed
    cells hold fewer than k items the missing slots have index -1 and score
    -inf.
    """
    q = as_embeddings(queries, "queries")
    r = q if references is queries else as_embeddings(references, "references")
    if q.shape[1] != r.shape[1]:
        raise ValueError(f"queries and references must have the same dimension, got {q.shape[1]} and {r.shape[1]}")
    k = check_positive_int(k, "k")
    chunk = check_positive_int(chunk, "chunk")
    if exclude_self and r is not q and not np.array_equal(q, r):
        raise ValueError(
            "exclude_self=True needs the queries to be the references (row i of "
            "queries is reference i); pass the same array twice"
        )
    available = len(r) - int(exclude_self)
    if k > available:
        raise ValueError(
            f"k={k} is more than the {available} references available"
            + (" (excluding the query itself)" if exclude_self else "")
        )
    idx = build_index(r, index, nlist, nprobe, seed)
    out_idx = np.empty((len(q), k), dtype=np.int64)
    out_scores = np.empty((len(q), k), dtype=np.float32)
    for start, indices, scores in search_chunks(idx, q, k, exclude_self, chunk):
        out_idx[start : start + len(indices)] = indices
        out_scores[start : start + len(indices)] = scores
    return out_idx, out_scores
