"""Photo files turned into enrolments in bulk, for importing a labelled dataset into a gallery.

The embedder cuts the faces of a whole block of files at once (``crop_files``, in worker processes) and
embeds them in batches; a file that cannot be used (unreadable, over the pixel limit, no face) becomes
None with its reason added to the skipped list, so one bad photo never stops an import.
"""

from __future__ import annotations

import hashlib
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import numpy as np

from facemetric.core.embedder import Embedder
from facemetric.gallery.interface import Enrolment
from facemetric.gallery.kept_faces import face_chip
from facemetric.gallery.photos import Photo, PhotoError


def enrolments_of_files(
    embedder: Embedder,
    paths: list[Path],
    skipped: list[str],
    *,
    max_pixels: int,
    keep_faces: bool,
    embed_lock: AbstractContextManager[Any],
    progress: bool,
    workers: int | None,
) -> list[Enrolment | None]:
    """One enrolment per photo file (None where it cannot be used, its reason added to ``skipped``), with
    the face kept when ``keep_faces``; the embedder is used under ``embed_lock`` only."""
    photos: list[Photo | None] = []
    for path in paths:
        try:
            photo = Photo.from_path(path)
            photo.check_pixels(max_pixels)
        except PhotoError as exc:
            skipped.append(str(exc))
            photo = None
        photos.append(photo)
    usable = [k for k, photo in enumerate(photos) if photo is not None]
    with embed_lock:
        crops = embedder.crop_files([paths[k] for k in usable], progress, workers)
        vectors = embedder.embed_crops(crops.images) if len(crops) else np.zeros((0, embedder.dim))
    skipped.extend(f"{paths[usable[position]]}: {reason}" for position, reason in crops.failures)
    out: list[Enrolment | None] = [None] * len(paths)
    for row, (position, detection) in enumerate(zip(crops.index.tolist(), crops.detections)):
        k = usable[position]
        photo = photos[k]
        assert photo is not None
        vector = np.asarray(vectors[row], np.float32)
        record = detection.to_dict()
        face = face_chip(photo.decode(max_pixels), record) if keep_faces else None
        out[k] = Enrolment(hashlib.sha256(photo.data).hexdigest(), photo.source, record, vector, face)
    return out
