"""An embedder for a server: faces cut in worker processes, concurrent requests embedded in one model call.

A server answering one request at a time pays a whole network call per face (a batch of one is the
slowest per face: 13 ms for ``dlib-resnet`` on 2 cores, 4.7 ms each in a batch of 8) and runs its
detector on one core. :class:`BatchingEmbedder` wraps any embedder and is safe to call from many threads:

* faces are found and cut in an :class:`~facemetric.data.align_pool.AlignPool` (``workers``
  processes, each with its own detector), several requests at once;
* the crops of concurrent requests go to one thread that runs the network: it takes every crop
  waiting (at most ``max_batch``), waits up to ``window`` seconds for more while the batch is not
  full, embeds them in one call and hands each request its own rows.

The vectors are the wrapped model's own (same fingerprint; a row of a batch equals the crop embedded
alone up to float rounding). An embedder that cuts photos without a detector (a fixed central
crop) cuts them in the calling thread, which is cheap.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from facemetric.core.embedder import Embedder, FaceCrops
from facemetric.core.faces import Detection
from facemetric.data.align_pool import AlignPool

MAX_BATCH = 16  # crops per model call: beyond it the time per face hardly falls, and the wait grows
WINDOW = 0.004  # seconds the model thread waits for more crops when the batch is not full


class _Job:
    """Crops of one caller waiting for the model, and the future their rows go to."""

    def __init__(self, crops: np.ndarray, flip: bool) -> None:
        self.crops, self.flip = crops, flip
        self.future: Future[np.ndarray] = Future()


class BatchingEmbedder(Embedder):
    """``inner`` made safe for many threads, with detection in ``workers`` processes (None: one per CPU; 0: in
    the calling thread) and network calls over the crops of concurrent callers (module docstring)."""

    thread_safe = True

    def __init__(
        self, inner: Embedder, workers: int | None = None, max_batch: int = MAX_BATCH, window: float = WINDOW
    ) -> None:
        if max_batch < 1 or window < 0:
            raise ValueError(f"max_batch must be >= 1 and window >= 0, got {max_batch} and {window}")
        self.inner = inner
        self.name, self.reference, self.fingerprint = inner.name, inner.reference, inner.fingerprint
        self.dim, self.spec, self.crop_workers = inner.dim, inner.spec, inner.crop_workers
        self.max_batch, self.window = max_batch, window
        aligner = getattr(inner, "aligner", None)
        self.pool = AlignPool(aligner, workers) if aligner is not None and workers != 0 else None
        self._crop_lock = threading.Lock()  # the inner model's own detector, when no pool cuts
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self.batches: deque[int] = deque(maxlen=1000)  # crops of the latest model calls: what batching did
        self._thread = threading.Thread(target=self._run, daemon=True, name="facemetric-batcher")
        self._thread.start()

    def __getattr__(self, name: str) -> Any:  # declarations of the wrapped model (licence, score_spread ...)
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def warm(self) -> None:
        """Start the detection workers and build their detectors before the first request."""
        if self.pool is not None:
            self.pool.warm()

    # ------------------------------------------------------------------ cutting

    def crop_photo(self, image: Image.Image) -> tuple[np.ndarray, Detection]:
        if self.pool is not None:
            return self.pool.cut(image)
        with self._crop_lock:
            return self.inner.crop_photo(image)

    def cut_photos(self, photos: Iterable[tuple[int, Image.Image]]) -> FaceCrops:
        """All photos cut at once by idle workers (an enrolment's several photos in parallel)."""
        if self.pool is None:
            return super().cut_photos(photos)
        listed = list(photos)
        results = self.pool.cut_many([image for _, image in listed])
        return self.gather_crops((k, result) for (k, _), result in zip(listed, results))

    def crop_files(self, paths: Sequence[str | Path], progress: bool = False, workers: int | None = None) -> FaceCrops:
        with self._crop_lock:
            return self.inner.crop_files(paths, progress, workers)

    # ------------------------------------------------------------------ the network

    def embed_crops(self, crops: Any, batch_size: int = 256, flip: bool = False, progress: bool = False) -> np.ndarray:
        """The wrapped model's embeddings of ``crops``, computed by the model thread with other callers' crops."""
        crops = np.asarray(crops)
        if len(crops) == 0:
            return np.zeros((0, self.dim), np.float32)
        job = _Job(crops, flip)
        self._jobs.put(job)
        return job.future.result()

    def _take(self) -> list[_Job] | None:
        """The next batch: the first job waited for, then every job waiting, up to :attr:`max_batch` crops
        (waiting up to :attr:`window` for more while short of it); None when closed."""
        first = self._jobs.get()
        if first is None:
            return None
        jobs, size = [first], len(first.crops)
        deadline = time.perf_counter() + self.window
        while size < self.max_batch:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    break
                try:
                    job = self._jobs.get(timeout=remaining)
                except queue.Empty:
                    break
            if job is None:
                self._jobs.put(None)  # close after this batch
                break
            jobs.append(job)
            size += len(job.crops)
        return jobs

    def _run(self) -> None:
        while (jobs := self._take()) is not None:
            for flip in (False, True):  # one model call per kind of request
                group = [job for job in jobs if job.flip is flip]
                if group:
                    self._embed(group, flip)

    def _embed(self, jobs: list[_Job], flip: bool) -> None:
        try:
            crops = np.concatenate([job.crops for job in jobs])
            rows = self.inner.embed_crops(crops, batch_size=max(len(crops), 1), flip=flip)
        except BaseException as exc:  # every caller of the batch gets the error; the thread goes on
            for job in jobs:
                job.future.set_exception(exc)
            return
        self.batches.append(len(crops))
        start = 0
        for job in jobs:
            job.future.set_result(rows[start : start + len(job.crops)])
            start += len(job.crops)

    def close(self) -> None:
        """Stop the model thread (after the batches waiting) and the detection workers."""
        self._jobs.put(None)
        self._thread.join()
        if self.pool is not None:
            self.pool.close()
