"""Closed-set identification: every probe's identity is enrolled; the metric is the CMC curve.

The CMC curve is the fraction of probes whose true identity is among the ``k`` best-scoring gallery
identities (:func:`cmc`); a tie never flatters the model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from facemetric.eval.identification.result import ClosedSetResult
from facemetric.eval.identification.search import Templates, check_probes, search_gallery
from facemetric.eval.primitives import check_positive_int


@dataclass(frozen=True, eq=False)
class CMCResult:
    """Closed-set identification result.

    ``ranks[k - 1]`` is the rank-k identification rate for k = 1 .. min(max_rank,
    n_identities) (beyond the number of identities every rate is trivially 1).
    ``rank5`` is the rate at rank min(5, n_identities). ``per_probe_rank`` is
    the 1-based rank of each probe's true identity, ties counted against the probe.
    """

    ranks: np.ndarray
    rank1: float
    rank5: float
    per_probe_rank: np.ndarray
    n_identities: int
    n_probes: int
    template: str

    def summary(self) -> ClosedSetResult:
        """The typed summary (``eval.json``'s ``closed_set``; the per-probe ranks are left out)."""
        return ClosedSetResult(
            ranks=self.ranks.tolist(),
            rank1=self.rank1,
            rank5=self.rank5,
            n_identities=self.n_identities,
            n_probes=self.n_probes,
            template=self.template,
        )


def _missing_error(missing: np.ndarray, probe_labels: np.ndarray, gallery: Templates) -> ValueError:
    names = list(dict.fromkeys(probe_labels[missing].tolist()))
    return ValueError(
        f"{int(missing.sum())} probes ({len(names)} identities, e.g. {names[:5]}) are not in "
        "the gallery, but closed-set identification needs every probe identity enrolled "
        f"(probe_labels dtype {probe_labels.dtype}, gallery_labels dtype "
        f"{gallery.identities.dtype}); remove those probes, or evaluate them as unknown "
        "probes with open_set_report"
    )


def cmc(
    probe_emb: ArrayLike,
    probe_labels: ArrayLike,
    gallery_emb: ArrayLike,
    gallery_labels: ArrayLike,
    max_rank: int = 20,
    template: str = "max",
    chunk: int = 4096,
    rejected: ArrayLike | None = None,
) -> CMCResult:
    """Closed-set CMC curve of probes searched against a gallery.

    A gallery identity may have several images: ``template="max"`` scores it by
    its best-matching image, ``"mean"`` by the cosine to the re-normalised mean
    of its images. The rank of a probe is 1 + the number of other identities
    scoring >= its true identity, so a tie never flatters the model. Every probe
    identity must be in the gallery (ValueError listing some that are not).

    ``rejected`` flags probes turned away before any search (no face found in the photo):
    they are never identified, at any rank (their rank is ``n_identities + 1``), and their
    rows of ``probe_emb`` are not read.
    """
    max_rank = check_positive_int(max_rank, "max_rank")
    chunk = check_positive_int(chunk, "chunk")
    gallery = Templates(gallery_emb, gallery_labels, template)
    p, y, rej = check_probes(probe_emb, probe_labels, rejected, "probe")
    true_idx = gallery.lookup(y)
    missing = true_idx < 0
    if missing.any():
        raise _missing_error(missing, y, gallery)
    rank = np.full(len(y), len(gallery) + 1, dtype=np.int64)
    if p is not None:
        rank[~rej] = search_gallery(gallery, p, true_idx[~rej], chunk)[2]
    k = np.arange(1, min(max_rank, len(gallery)) + 1)
    rates = np.mean(rank[:, None] <= k[None, :], axis=0)
    return CMCResult(
        ranks=rates,
        rank1=float(np.mean(rank <= 1)),
        rank5=float(np.mean(rank <= 5)),
        per_probe_rank=rank,
        n_identities=len(gallery),
        n_probes=len(y),
        template=template,
    )
