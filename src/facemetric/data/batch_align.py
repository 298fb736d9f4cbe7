"""Face detection + alignment of many photos, in worker processes: what batch jobs cut faces with.

:func:`crop_face_files` runs :func:`~facemetric.data.align.crop_face_file` on every photo of a list
and yields the results in the list's order, whatever the number of processes, so a batch cut by
``workers=2`` is identical to one cut in this process (same crops, same detection records, same
failures). Detectors are CPU-bound and not thread-safe (dlib, OpenCV), so the work goes to
processes: each builds its own aligner from the one given (an :class:`Aligner` pickles as its
class and constructor arguments), forked on Linux, and takes the photos in chunks (``imap`` with a
chunk size) so that the cost of passing work around stays small beside a detection (about 20 ms
for HOG on a 500 px photo, seconds for the CNN).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from facemetric.data.align import Aligner, crop_face_file

log = logging.getLogger("facemetric")

AUTO_MIN_PHOTOS = 32  # fewer photos than this are cut in this process: starting workers would not pay
AUTO_MAX_WORKERS = 4
MAX_CHUNK = 16  # photos a worker takes at once: large enough to amortise the messages, small enough to balance

CropResult = tuple[np.ndarray | None, str | None, str | None, dict[str, Any] | None]  # as crop_face_file returns


def available_cpus() -> int:
    """CPUs this process may run on (its affinity where the platform says, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def detection_workers(photos: int, workers: int | None = None) -> int:
    """How many processes cut ``photos`` photos: ``workers`` when given (0 or 1: this process alone),
    else ``min(4, CPUs)`` from :data:`AUTO_MIN_PHOTOS` photos on and 1 below; never more than photos."""
    if workers is None:
        workers = min(AUTO_MAX_WORKERS, available_cpus()) if photos >= AUTO_MIN_PHOTOS else 1
    if workers < 0:
        raise ValueError(f"workers must be >= 0 (0 or 1: detect in this process), got {workers}")
    return max(1, min(workers, photos))


def chunk_size(photos: int, workers: int) -> int:
    """Photos per task: about four tasks per worker (for balance), at most :data:`MAX_CHUNK`."""
    return max(1, min(MAX_CHUNK, photos // (4 * workers)))


_ALIGNER: Aligner | None = None  # the worker process's own aligner


def _init_worker(pickled: bytes) -> None:
    global _ALIGNER
    _ALIGNER = pickle.loads(pickled)  # builds the detector objects afresh in this process


def _crop(path: str) -> CropResult:
    assert _ALIGNER is not None, "worker not initialised"
    return crop_face_file(path, _ALIGNER)


def _pickled(aligner: Aligner) -> bytes | None:
    """The aligner as bytes a worker rebuilds it from, or None (with a warning) when it cannot be."""
    try:
        return pickle.dumps(aligner)
    except Exception as exc:  # a user's aligner that keeps no copy of its settings: cut in this process
        log.warning("detecting faces in this process only: %s (%s)", type(exc).__name__, exc)
        return None


def crop_face_files(
    paths: Sequence[str | Path], aligner: Aligner, workers: int | None = None, progress: bool = True
) -> Iterator[CropResult]:
    """(crop, skip kind, reason, detection record) of each photo of ``paths``, in order, as they are done.

    ``workers`` processes share the work (None: automatic, see :func:`detection_workers`; 0 or 1:
    this process, with ``aligner`` itself). Unreadable files and photos without a face are results
    like the others (``crop`` None), never exceptions.
    """
    files = [str(p) for p in paths]
    count = detection_workers(len(files), workers)
    pickled = _pickled(aligner) if count > 1 else None
    with tqdm(
        total=len(files),
        desc=f"detect faces ({aligner.name})",
        unit="img",
        disable=None if progress else True,
        leave=False,
    ) as bar:
        if pickled is None:
            for path in files:
                yield crop_face_file(path, aligner)
                bar.update()
            return
        context = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
        with context.Pool(count, initializer=_init_worker, initargs=(pickled,)) as pool:
            for result in pool.imap(_crop, files, chunk_size(len(files), count)):
                yield result
                bar.update()
