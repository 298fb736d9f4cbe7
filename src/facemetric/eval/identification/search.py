"""Searching probes against an enrolled gallery: the step every identification metric starts from.

A gallery identity may have several images; it is scored by a *template* of them (``core.matching``:
``max``, the best-matching image, or ``mean``, the cosine to the re-normalised mean of its images).
Embeddings are L2-normalised ``(N, D)`` float arrays, so a score is the cosine similarity (a dot product;
higher = more similar). Probes are searched in chunks, so memory is O(chunk x gallery images), never
O(probes x gallery).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from facemetric.core.matching import TEMPLATES
from facemetric.eval.primitives import check_labels, check_positive_int

_NORM_TOL = 1e-2  # |norm - 1| allowed for "L2-normalised" (float16/bfloat16 storage included)


def check_embeddings(emb: ArrayLike, name: str) -> np.ndarray:
    """Return ``emb`` as a float32 (N, D) array of unit rows, or raise ValueError."""
    e = np.asarray(emb)
    if e.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (N, D) array, got shape {e.shape}")
    if e.shape[0] == 0 or e.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {e.shape})")
    if not np.issubdtype(e.dtype, np.floating):
        raise ValueError(f"{name} must be a float array of embeddings, got dtype {e.dtype}")
    e = np.asarray(e, dtype=np.float32)
    finite = np.isfinite(e).all(axis=1)
    if not finite.all():
        raise ValueError(f"{name} has {int(np.sum(~finite))} rows with NaN/inf values")
    norms = np.sqrt(np.einsum("nd,nd->n", e, e, dtype=np.float64))
    bad = np.abs(norms - 1.0) > _NORM_TOL
    if bad.any():
        raise ValueError(
            f"{int(bad.sum())} rows of {name} are not unit length (norms "
            f"{norms[bad].min():.4g}..{norms[bad].max():.4g}); L2-normalise the "
            "embeddings first: x / np.linalg.norm(x, axis=1, keepdims=True)"
        )
    return e


def check_probes(
    emb: ArrayLike, labels: ArrayLike, rejected: ArrayLike | None, name: str
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """``(embeddings of the probes searched, labels of all, rejected mask of all)``.

    ``rejected`` flags probes turned away before any search (no face found): their rows of ``emb``
    are not read (None when every probe was turned away); None means no probe was.
    """
    if rejected is None:
        e = check_embeddings(emb, f"{name}_emb")
        return e, check_labels(labels, len(e), f"{name}_labels", f"{name}_emb"), np.zeros(len(e), dtype=bool)
    raw = np.asarray(emb)
    if raw.ndim != 2 or not len(raw):
        check_embeddings(raw, f"{name}_emb")  # raises its message
    y = check_labels(labels, len(raw), f"{name}_labels", f"{name}_emb")
    r = np.asarray(rejected)
    if r.ndim != 1 or len(r) != len(raw):
        raise ValueError(f"{name}_rejected must give one flag per row of {name}_emb ({len(raw)}), got shape {r.shape}")
    if r.dtype != np.bool_:
        if not np.all(np.isin(r, (0, 1))):
            raise ValueError(f"{name}_rejected must be booleans (or 0/1): was the probe turned away?")
        r = r.astype(bool)
    kept = check_embeddings(raw[~r], f"{name}_emb") if (~r).any() else None
    return kept, y, r


class Templates:
    """A gallery prepared for search: identities sorted, images grouped per identity."""

    def __init__(self, emb: ArrayLike, labels: ArrayLike, template: str) -> None:
        if template not in TEMPLATES:
            raise ValueError(f"template must be one of {TEMPLATES}, got {template!r}")
        e = check_embeddings(emb, "gallery_emb")
        y = check_labels(labels, len(e), "gallery_labels", "gallery_emb")
        self.template = template
        self.identities, inverse = np.unique(y, return_inverse=True)
        self.index = {label: k for k, label in enumerate(self.identities.tolist())}
        self.n_images = len(e)
        order = np.argsort(inverse, kind="stable")
        grouped = e[order]
        # first row of each identity in ``grouped``; every identity has >= 1 image
        self.starts = np.searchsorted(inverse[order], np.arange(len(self.identities)))
        if template == "max":
            self.matrix = grouped
        else:
            sums = np.add.reduceat(grouped.astype(np.float64), self.starts, axis=0)
            norms = np.linalg.norm(sums, axis=1)
            zero = norms < 1e-6 * np.diff(np.append(self.starts, len(e)))
            if zero.any():
                raise ValueError(
                    "the mean template of gallery identities "
                    f"{self.identities[zero][:5].tolist()} has (near) zero length: their "
                    "images cancel out; use template='max' or check those images"
                )
            self.matrix = (sums / norms[:, None]).astype(np.float32)
        self.dim = e.shape[1]

    def __len__(self) -> int:
        return len(self.identities)

    def lookup(self, labels: np.ndarray) -> np.ndarray:
        """Identity index of each label, -1 for labels not in the gallery."""
        return np.array([self.index.get(v, -1) for v in labels.tolist()], dtype=np.int64)

    def scores(self, probes: np.ndarray) -> np.ndarray:
        """(len(probes), n_identities) identity scores of a chunk of probes."""
        s = probes @ self.matrix.T
        if self.template == "max":
            s = np.maximum.reduceat(s, self.starts, axis=1)
        return s


def search_gallery(
    gallery: Templates, probes: np.ndarray, true_idx: np.ndarray, chunk: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top identity index, top score and rank of the true identity for each probe.

    The rank is ``1 +`` the number of *other* identities scoring >= the true
    identity (ties count against the probe); it is 0 where ``true_idx`` is -1.
    """
    if probes.shape[1] != gallery.dim:
        raise ValueError(
            f"probe embeddings have dimension {probes.shape[1]} but the gallery has "
            f"{gallery.dim}; embed both with the same model"
        )
    n = len(probes)
    top_idx = np.empty(n, dtype=np.int64)
    top_score = np.empty(n, dtype=np.float64)
    rank = np.zeros(n, dtype=np.int64)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        s = gallery.scores(probes[start:stop])
        rows = np.arange(stop - start)
        best = np.argmax(s, axis=1)
        top_idx[start:stop] = best
        top_score[start:stop] = s[rows, best]
        t = true_idx[start:stop]
        known = t >= 0
        true_s = s[rows, np.where(known, t, 0)]
        rank[start:stop] = np.where(known, np.sum(s >= true_s[:, None], axis=1), 0)
    return top_idx, top_score, rank


def top_matches(
    probe_emb: ArrayLike,
    gallery_emb: ArrayLike,
    gallery_labels: ArrayLike,
    template: str = "max",
    chunk: int = 4096,
) -> tuple[np.ndarray, np.ndarray]:
    """Best gallery identity and its score for each probe (the inputs of the open-set metrics).

    Ties for the top go to the identity that sorts first. Returns
    ``(top_labels, top_scores)``: labels in the gallery's label dtype, scores float64.
    """
    chunk = check_positive_int(chunk, "chunk")
    gallery = Templates(gallery_emb, gallery_labels, template)
    p = check_embeddings(probe_emb, "probe_emb")
    top_idx, top_score, _ = search_gallery(gallery, p, np.full(len(p), -1), chunk)
    return gallery.identities[top_idx], top_score
