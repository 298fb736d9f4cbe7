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

import hashlib
import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from tqdm import tqdm

from facemetric.eval.primitives import calibrate_threshold
from facemetric.gallery.interface import GalleryError, SearchIndex
from facemetric.gallery.photos import Photo, PhotoError
from facemetric.gallery.schemas import CalibrationPhotos
from facemetric.gallery.thresholds import StoredThreshold

log = logging.getLogger("facemetric")


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


def embed_labelled(
    embed: Callable[[Photo], np.ndarray], enrolled: set[str], source: str | Path, layout: str, progress: bool
) -> tuple[list[np.ndarray], list[str], CalibrationPhotos]:
    """The embeddings and people of a labelled dataset (folder per person, CSV, flat files) to calibrate on:
    photos already enrolled (content hash in ``enrolled``) are left out, they are the templates; photos without a
    usable face are skipped and counted. :class:`GalleryError` when none is usable."""
    from facemetric.data.sources import scan_source

    manifest = scan_source(source, layout)
    vectors, names, skipped, templates = [], [], [], 0
    labelled = list(zip(manifest.paths, manifest.identities))
    for path, identity in tqdm(
        labelled, desc="calibrate", unit="photo", disable=None if progress else True, leave=False
    ):
        try:
            photo = Photo.from_path(path)
            if hashlib.sha256(photo.data).hexdigest() in enrolled:
                templates += 1
                continue
            vectors.append(embed(photo))
            names.append(identity)
        except PhotoError as exc:
            skipped.append(str(exc))
    example = f", e.g. {skipped[0]}" if skipped else ""
    if not vectors:
        raise GalleryError(
            f"{source}: no usable calibration photo ({len(skipped)} skipped{example}; {templates} enrolled)"
        )
    if skipped:
        log.warning("calibration: %d photo(s) skipped%s", len(skipped), example)
    return vectors, names, CalibrationPhotos(used=len(vectors), skipped=len(skipped), enrolled_left_out=templates)
