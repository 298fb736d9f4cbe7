"""Faces found and cut in worker processes that live as long as a server: one photo per task, many at once.

A server gets photos one request at a time, from many clients at once. Detectors are CPU-bound and
not thread-safe (dlib, OpenCV), so threads cannot share one; :class:`AlignPool` keeps ``workers``
processes, each with its own copy of the aligner (rebuilt from its constructor arguments, see
:class:`~facemetric.data.align.Aligner`), and gives each photo to an idle one. Workers start at once
and build their detectors before the first request (:meth:`AlignPool.warm`), use one thread each (they
are the parallelism), and leave when the process that started them dies, even by ``kill -9``.

A photo without a face raises :class:`~facemetric.core.faces.NoFaceError` where the result is waited
for, as the aligner would in this process. A worker that crashes (a detector's segfault) is replaced:
the pool is rebuilt and the photo tried once more, then refused.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import pickle
import sys
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import numpy as np
from PIL import Image

from facemetric.core.faces import Detection, NoFaceError
from facemetric.data.align.base import Aligner
from facemetric.data.batch_align import available_cpus

log = logging.getLogger("facemetric")

WATCH_SECONDS = 1.0  # how often a worker checks that the process that started it is alive

_ALIGNER: Aligner | None = None  # the worker process's own aligner


def _watch_parent(parent: int) -> None:
    """Leave when the parent process (the server) is gone, even by ``kill -9``: its children are re-parented."""
    while True:
        time.sleep(WATCH_SECONDS)
        if os.getppid() != parent:
            os._exit(0)


def _init_worker(pickled: bytes) -> None:
    global _ALIGNER
    os.environ["OMP_NUM_THREADS"] = "1"  # one thread per worker: the workers are the parallelism
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True, name="watch-parent").start()
    _ALIGNER = pickle.loads(pickled)  # imports the detector's modules and builds it afresh in this process
    if "cv2" in sys.modules:
        sys.modules["cv2"].setNumThreads(1)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


def _cut(image: Image.Image) -> tuple[np.ndarray, Detection]:
    assert _ALIGNER is not None, "worker not initialised"
    return _ALIGNER(image)


def _warm() -> int:
    """Build the worker's detector (a blank photo: no face expected) so the first request does not wait."""
    with contextlib.suppress(NoFaceError):
        _cut(Image.new("RGB", (64, 64)))
    return os.getpid()


class AlignPool:
    """``workers`` processes (None: the CPUs this process may use) that cut photos with copies of ``aligner``."""

    def __init__(self, aligner: Aligner, workers: int | None = None) -> None:
        self.aligner = aligner
        self.workers = max(1, available_cpus() if workers is None else workers)
        self._pickled = pickle.dumps(aligner)  # refuses an aligner that cannot be rebuilt, here and not in a worker
        # spawned, not forked: the server has threads (a fork could copy a held lock), and a spawned worker is the
        # server's own child, so the server's death re-parents it, which its watch sees
        self._context = multiprocessing.get_context("spawn")
        self._lock = threading.Lock()
        self._executor = self._start()

    def _start(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            self.workers, mp_context=self._context, initializer=_init_worker, initargs=(self._pickled,)
        )

    def warm(self) -> list[int]:
        """Start every worker and build its detector; the workers' process ids. A pool a crash broke (seen
        only now: a worker can die after the last photo was cut) is started again first."""
        executor = self._current()
        try:
            return [f.result() for f in [executor.submit(_warm) for _ in range(self.workers)]]
        except BrokenProcessPool:
            self._replace(executor)
            return [f.result() for f in [self._current().submit(_warm) for _ in range(self.workers)]]

    def cut(self, image: Image.Image) -> tuple[np.ndarray, Detection]:
        """(crop, detection) of ``image``, cut in a worker; :class:`NoFaceError` when it holds no face."""
        result = self.cut_many([image])[0]
        if isinstance(result, NoFaceError):
            raise result
        return result

    def cut_many(self, images: list[Image.Image]) -> list[tuple[np.ndarray, Detection] | NoFaceError]:
        """(crop, detection) of each image, or the :class:`NoFaceError` saying why it has none; the images are
        cut at the same time by idle workers. A photo whose worker died is tried once more in new workers."""
        executor = self._current()
        futures = [self._submit(executor, image) for image in images]
        results: list[tuple[np.ndarray, Detection] | NoFaceError] = []
        for future, image in zip(futures, images):
            try:
                try:
                    results.append(future.result())
                except BrokenProcessPool:
                    self._replace(executor)
                    results.append(self._current().submit(_cut, image).result())  # a second crash refuses it
            except NoFaceError as exc:
                results.append(exc)
        return results

    def _current(self) -> ProcessPoolExecutor:
        with self._lock:
            return self._executor

    def _submit(self, executor: ProcessPoolExecutor, image: Image.Image) -> Future[tuple[np.ndarray, Detection]]:
        try:
            return executor.submit(_cut, image)
        except BrokenProcessPool:  # broken by an earlier photo: new workers take this one
            self._replace(executor)
            return self._current().submit(_cut, image)

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        """New workers for a pool a crash broke (once, whichever thread sees it first)."""
        with self._lock:
            if self._executor is broken:
                log.warning("a face-detection worker died; starting the %d workers again", self.workers)
                broken.shutdown(wait=False, cancel_futures=True)
                self._executor = self._start()

    def close(self) -> None:
        with self._lock:
            self._executor.shutdown(wait=True, cancel_futures=True)
