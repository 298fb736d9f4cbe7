"""Setting a gallery's thresholds at a false-accept rate from labelled embeddings of real people.

* identify: each photo's best score against the gallery *without its own identity* (a search by
  someone not enrolled): the threshold lets at most ``far`` of those searches name someone (FRVT's FPIR);
* verify: each photo's score against every enrolled identity that is not its own: at most ``far`` of
  those comparisons are accepted.

People in the data who are enrolled act as strangers to everyone else; the enrolled photos themselves
should not be in the data (they would match their own identity, which is excluded, so they only add
impostor searches). Each threshold is kept with the quantiles of its impostor scores
(:class:`~facemetric.gallery.thresholds.StoredThreshold`), for every later answer's ``far_at_score``.
"""

from __future__ import annotations

import time

import numpy as np

from facemetric.eval.primitives import calibrate_threshold
from facemetric.gallery.interface import GalleryError, SearchIndex
from facemetric.gallery.thresholds import StoredThreshold


def calibrate_index(
    index: SearchIndex, vectors: np.ndarray, identities: list[str], far: float, source: str, template: str
) -> tuple[StoredThreshold, StoredThreshold]:
    """The identify and the verify threshold of the gallery ``index`` searches (scoring by ``template``), at
    false-accept rate ``far``, from ``vectors`` of the people ``identities`` (``source``: where they came from)."""
    if len(index) < 2:
        raise GalleryError("calibration needs a gallery of at least 2 enrolled people: enrol first")
    top_scores, pair_scores = [], []
    names = np.asarray(identities)
    for vector, own in zip(vectors, names):
        matches = index.search(vector, len(index), template)
        others = [m.score for m in matches if m.name != own]
        if others:
            top_scores.append(max(others))
            pair_scores.extend(others)
    if not top_scores:
        raise GalleryError("no usable calibration photo (every one was of the only enrolled person)")
    n_people = len(set(names.tolist()))
    stored = {}
    for kind, scores in (("identify", top_scores), ("verify", pair_scores)):
        impostors = np.array(scores)
        threshold = calibrate_threshold(
            impostors,
            far,
            source=f"{source}: {len(scores)} impostor "
            f"{'searches' if kind == 'identify' else 'comparisons'} of {n_people} people",
        )
        threshold = threshold.model_copy(
            update={
                "template": template,
                "gallery_identities": len(index),
                "calibrated": time.strftime("%Y-%m-%dT%H:%M:%S"),
            }
        )
        stored[kind] = StoredThreshold.of(threshold, impostors)
    return stored["identify"], stored["verify"]
