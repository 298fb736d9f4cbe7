"""Decode a manifest once into a packed uint8 array, optionally kept on disk.

Training then reads pixels from memory instead of decoding JPEGs every epoch. Files that
cannot be decoded are left out and listed with their reason in ``bad``; a long job never
dies on one bad file.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from facemetric.core.atomic import atomic_path
from facemetric.core.spec import ImageSpec
from facemetric.data.align import Aligner, aligner_for
from facemetric.data.batch_align import crop_face_files
from facemetric.data.images import ImageDecodeError, load_image
from facemetric.data.sources import Manifest

CACHE_VERSION = 1


class RowView:
    """Rows ``rows`` of a (memory-mapped) array, read only when indexed: a subset without a copy."""

    def __init__(self, base: np.ndarray, rows: np.ndarray) -> None:
        self.base, self.rows = base, np.asarray(rows, dtype=np.int64)
        self.shape = (len(self.rows), *base.shape[1:])
        self.dtype = base.dtype
        self.ndim = base.ndim

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index) -> np.ndarray:
        return np.asarray(self.base[self.rows[index]])

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = np.asarray(self.base[self.rows])
        return out.astype(dtype) if dtype is not None else out


@dataclass
class PackedImages:
    """Decoded images (N, H, W, C) uint8 with integer labels and the paths they came from."""

    images: np.ndarray | RowView  # a RowView over a memory-mapped prepared cache
    labels: np.ndarray
    paths: list[str]
    identity_names: list[str]
    bad: list[tuple[str, str]]
    detections: list[dict[str, Any] | None] = field(default_factory=list)  # per row, when a detector cut it
    source_index: np.ndarray | None = None  # per row, its position in the manifest it was decoded from

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, keep: np.ndarray) -> PackedImages:
        """Rows ``keep``; labels are re-numbered 0..n-1 over the identities that remain.

        A memory-mapped cache stays on disk: the subset is a :class:`RowView`, not a copy.
        """
        keep = np.asarray(keep, dtype=np.int64)
        old = self.labels[keep]
        present, new_labels = np.unique(old, return_inverse=True)
        if isinstance(self.images, RowView):
            images = RowView(self.images.base, self.images.rows[keep])
        elif isinstance(self.images, np.memmap):
            images = RowView(self.images, keep)
        else:
            images = self.images[keep]
        return PackedImages(
            images,
            new_labels.astype(np.int64),
            [self.paths[i] for i in keep],
            [self.identity_names[i] for i in present],
            list(self.bad),
            [self.detections[i] for i in keep] if self.detections else [],
            self.source_index[keep] if self.source_index is not None else None,
        )


def _cache_key(manifest: Manifest, spec: ImageSpec) -> str:
    return manifest.fingerprint(f"v{CACHE_VERSION}|{json.dumps(spec.to_dict(), sort_keys=True)}")[:20]


def decode_manifest(
    manifest: Manifest,
    spec: ImageSpec,
    workers: int | None = None,
    progress: bool = True,
    aligner: Aligner | None = None,
) -> PackedImages:
    """Decode every image of ``manifest``; undecodable files go to ``bad`` with their reason.

    A spec whose ``align`` names a detection backend (``dlib``, ``opencv``: a model trained on a
    ``prepare``d cache) gets every photo's face found and aligned by that backend, as ``prepare``
    did for training (or by ``aligner``, when given); a photo without a face goes to ``bad``, and
    each detection is kept. Detection runs in ``workers`` processes (each with its own copy of the
    aligner; None: ``min(4, CPUs)`` from 32 photos on, else this process; 0 or 1: this process),
    with the same result as in this process (:func:`~facemetric.data.batch_align.crop_face_files`).
    Without a detector, files are decoded in ``workers`` threads (None: ``min(4, CPUs)``).
    """
    aligner = aligner or aligner_for(spec)
    n = len(manifest)
    images = np.zeros((n, spec.height, spec.width, spec.channels), dtype=np.uint8)
    ok = np.zeros(n, dtype=bool)
    bad: list[tuple[str, str]] = []
    detections: list[dict[str, Any] | None] = [None] * n

    if aligner is not None:
        for i, (crop, _, reason, detection) in enumerate(crop_face_files(manifest.paths, aligner, workers, progress)):
            if crop is None:
                bad.append((str(manifest.paths[i]), str(reason)))
            else:
                images[i], detections[i], ok[i] = crop, detection, True
    else:

        def work(i: int) -> str | None:
            try:
                images[i] = load_image(manifest.paths[i], spec)
                return None
            except ImageDecodeError as exc:
                return str(exc)

        threads = workers or min(4, os.cpu_count() or 1)
        with ThreadPoolExecutor(max_workers=threads) as pool:
            results = pool.map(work, range(n), chunksize=64)
            for i, error in enumerate(
                tqdm(
                    results, total=n, desc="decode images", unit="img", disable=None if progress else True, leave=False
                )
            ):
                if error is None:
                    ok[i] = True
                else:
                    bad.append((str(manifest.paths[i]), error))
    keep = np.flatnonzero(ok)
    names = sorted({manifest.identities[i] for i in keep})
    index = {name: k for k, name in enumerate(names)}
    labels = np.array([index[manifest.identities[i]] for i in keep], dtype=np.int64)
    kept = images if len(keep) == n else images[keep]  # fancy indexing would copy every image
    return PackedImages(
        kept,
        labels,
        [str(manifest.paths[i]) for i in keep],
        names,
        bad,
        [detections[i] for i in keep] if aligner is not None else [],
        keep,
    )


def load_packed(
    manifest: Manifest, spec: ImageSpec, cache_dir: str | Path | None = None, progress: bool = True
) -> PackedImages:
    """Decode ``manifest``, reusing ``cache_dir/<key>.npz`` when the same files were decoded before.

    The key covers every path, identity, file size and modification time and the
    :class:`ImageSpec`, so a changed file or setting decodes afresh.
    """
    if cache_dir is None:
        return decode_manifest(manifest, spec, progress=progress)
    cache_dir = Path(cache_dir)
    target = cache_dir / f"{_cache_key(manifest, spec)}.npz"
    if target.exists():
        with np.load(target, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            return PackedImages(
                data["images"], data["labels"], meta["paths"], meta["identity_names"], [tuple(b) for b in meta["bad"]]
            )
    packed = decode_manifest(manifest, spec, progress=progress)
    if not len(packed):  # nothing decoded: nothing worth keeping (the caller refuses the source)
        return packed
    cache_dir.mkdir(parents=True, exist_ok=True)
    meta = json.dumps({"paths": packed.paths, "identity_names": packed.identity_names, "bad": packed.bad})
    with atomic_path(target) as tmp, open(tmp, "wb") as f:  # a file object: np.savez would add .npz to a bare name
        np.savez(f, images=packed.images, labels=packed.labels, meta=np.array(meta))
    return packed
