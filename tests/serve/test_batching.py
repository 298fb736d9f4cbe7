"""The server's batching embedder: concurrent callers get their own rows, faces are cut in worker processes,
errors reach the caller that caused them, and a crashed worker is replaced."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facemetric.core.faces import NoFaceError
from facemetric.data.align.center import CenterAligner
from facemetric.embedders import load_embedder
from facemetric.serve.batching import BatchingEmbedder

pytestmark = pytest.mark.slow


@pytest.fixture
def inner(tiny_checkpoint: Path):  # type: ignore[no-untyped-def]
    """The tiny checkpoint, cutting photos with a (picklable) central-crop aligner so the pool has work."""
    model = load_embedder(str(tiny_checkpoint))
    model.aligner = CenterAligner(size=model.spec.height, fraction=0.9)
    return model


def _photos(synthetic_faces: Path, count: int) -> list[Image.Image]:
    return [Image.open(p).convert("RGB") for p in sorted(synthetic_faces.rglob("*.png"))[:count]]


def _together(count: int, work) -> list:  # type: ignore[no-untyped-def, type-arg]
    """``work(k)`` in ``count`` threads released at the same moment; the results in order of k."""
    results: list = [None] * count  # type: ignore[type-arg]
    barrier = threading.Barrier(count)

    def run(k: int) -> None:
        barrier.wait()
        results[k] = work(k)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_concurrent_crops_are_embedded_in_one_call_each_caller_getting_its_rows(inner, synthetic_faces: Path) -> None:  # type: ignore[no-untyped-def]
    crops = inner.cut_photos(enumerate(_photos(synthetic_faces, 8))).images
    expected = inner.embed_crops(crops)
    batching = BatchingEmbedder(inner, workers=0, max_batch=8, window=5.0)  # waits until 8 crops are there
    try:
        rows = _together(8, lambda k: batching.embed_crops(crops[k : k + 1]))
        assert list(batching.batches) == [8]  # one model call for the eight callers
        np.testing.assert_allclose(np.concatenate(rows), expected, atol=1e-5)
        # a caller with several crops gets its block back, in order, beside another caller
        two = _together(2, lambda k: batching.embed_crops(crops[4 * k : 4 * k + 4]))
        np.testing.assert_allclose(np.concatenate(two), expected, atol=1e-5)
    finally:
        batching.close()


def test_photos_are_cut_in_worker_processes_with_the_models_own_crops(inner, synthetic_faces: Path) -> None:  # type: ignore[no-untyped-def]
    photos = _photos(synthetic_faces, 12)
    batching = BatchingEmbedder(inner, workers=2, window=0.01)
    try:
        workers = batching.pool.warm()
        assert len(set(workers)) >= 1 and os.getpid() not in workers
        answers = _together(len(photos), lambda k: batching.embed_photo(photos[k]))
        for photo, (vector, detection) in zip(photos, answers):
            own_vector, own_detection = inner.embed_photo(photo)
            np.testing.assert_allclose(vector, own_vector, atol=1e-5)
            assert detection.to_dict() == own_detection.to_dict()
        batch = batching.embed_photos(photos[:3])  # an enrolment's photos: cut at once, one call
        np.testing.assert_allclose(batch.embeddings, inner.embed_photos(photos[:3]).embeddings, atol=1e-5)
        assert batching.fingerprint == inner.fingerprint and batching.thread_safe
    finally:
        batching.close()


def test_a_model_error_reaches_every_caller_of_its_batch_and_the_thread_goes_on(inner) -> None:  # type: ignore[no-untyped-def]
    batching = BatchingEmbedder(inner, workers=0)
    try:
        wrong = np.zeros((1, 5, 5, 3), np.uint8)  # not the model's crop size
        with pytest.raises(RuntimeError):
            batching.embed_crops(wrong)
        good = np.zeros((2, inner.spec.height, inner.spec.width, 3), np.uint8)
        np.testing.assert_allclose(batching.embed_crops(good), inner.embed_crops(good), atol=1e-5)
    finally:
        batching.close()


def test_no_face_is_refused_and_a_killed_worker_is_replaced(shared_data: Path) -> None:
    pytest.importorskip("dlib")
    model = load_embedder("dlib-resnet")
    photo = Image.open(sorted((shared_data / "orl").rglob("*.pgm"))[0]).convert("RGB")
    own_vector, _ = model.embed_photo(photo)
    batching = BatchingEmbedder(model, workers=2)
    try:
        workers = batching.pool.warm()
        with pytest.raises(NoFaceError):
            batching.embed_photo(Image.new("RGB", (200, 200), (128, 128, 128)))
        os.kill(workers[0], signal.SIGKILL)  # a detector crash
        vector, detection = batching.embed_photo(photo)  # new workers take the photo
        np.testing.assert_allclose(vector, own_vector, atol=1e-4)
        assert detection.found and detection.pose is not None
        assert workers[0] not in batching.pool.warm()
    finally:
        batching.close()
