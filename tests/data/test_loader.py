"""The training stream: worker-count independence, the step -> batch mapping, the ring's flow control."""

from __future__ import annotations

import gc
import pickle

import numpy as np
import pytest
import torch

import facemetric.data.loader as loader_mod
from facemetric.data.augment import AugmentConfig, augment_batch
from facemetric.data.cache import PackedImages
from facemetric.data.loader import BatchRing, RunBatches, _shared, batch_loader
from facemetric.data.sampler import PKSampler

NORM = ((0.45, 0.5, 0.55), (0.25, 0.2, 0.3))
AUG = AugmentConfig(shift=0.1, brightness=0.3, contrast=0.3, saturation=0.2, grayscale=0.2, cutout=0.3)


def _data(tmp_path, n_ids: int = 10, per_id: int = 5, memmap: bool = True) -> PackedImages:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n_ids * per_id, 24, 20, 3), dtype=np.uint8)
    labels = np.repeat(np.arange(n_ids), per_id)
    if memmap:
        np.save(tmp_path / "images.npy", images)
        images = np.load(tmp_path / "images.npy", mmap_mode="r")
    data = PackedImages(images, labels, [f"{i}.png" for i in range(len(labels))], [str(i) for i in range(n_ids)], [])
    return data.subset(np.arange(3, len(labels)))  # a RowView over the memory map, as training uses


def _stream(data: PackedImages, first: int = 0, last: int = 9) -> tuple[RunBatches, PKSampler]:
    sampler = PKSampler(data.labels, 3, 2, seed=4)
    return RunBatches(data, sampler.epoch, sampler.batches_per_epoch, first, last, AUG, NORM, seed=7), sampler


def _collect(stream: RunBatches, workers: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    # copies: a yielded batch is only valid until the next one is requested
    return [(b.images.clone(), b.labels.clone()) for b in batch_loader(stream, workers, 6)]


def test_each_step_is_the_reference_augmentation_of_its_sampler_batch(tmp_path) -> None:
    data = _data(tmp_path)
    stream, sampler = _stream(data)
    steps = sampler.batches_per_epoch
    assert steps < 9  # the stream crosses epoch boundaries
    got = _collect(stream, 0)
    pixels = np.asarray(data.images)
    for g, (images, labels) in enumerate(got):
        rows = sampler.epoch(g // steps)[g % steps]
        want = augment_batch(pixels[rows], AUG, np.random.default_rng([7, g]), *NORM)
        assert torch.equal(labels, torch.as_tensor(data.labels[rows]))
        assert torch.allclose(images, want, atol=1e-6), g


@pytest.mark.parametrize("workers", [1, 2])
def test_identical_with_any_number_of_workers(tmp_path, workers: int) -> None:
    stream, _ = _stream(_data(tmp_path), last=25)  # more batches than ring slots: slots are reused
    inline = _collect(stream, 0)
    parallel = _collect(_stream(_data(tmp_path), last=25)[0], workers)
    assert len(parallel) == len(inline) == 25
    for (a, la), (b, lb) in zip(inline, parallel):
        assert torch.equal(a, b) and torch.equal(la, lb)


def test_a_resumed_stream_continues_the_same_steps(tmp_path) -> None:
    data = _data(tmp_path)
    whole = _collect(_stream(data, 0, 9)[0], 0)
    tail = _collect(_stream(data, 5, 9)[0], 2)
    for (a, _), (b, _) in zip(whole[5:], tail):
        assert torch.equal(a, b)


def test_in_memory_images_and_last_short_batch(tmp_path) -> None:
    data = _data(tmp_path, memmap=False)
    stream, _ = _stream(data, 0, 4)
    assert [len(b) for b, _ in _collect(stream, 1)] == [6, 6, 6, 6]
    with pytest.raises(ValueError, match="first must be"):
        _stream(data, 5, 4)


def test_ring_slot_waits_for_the_consumer(monkeypatch) -> None:
    ring = BatchRing(3, 2, (2, 2, 1))
    assert ring.claim(2).shape == (2, 1, 2, 2)  # batches 0..2 fit the three slots
    monkeypatch.setattr(loader_mod, "WAIT_LIMIT_S", 0.02)
    with pytest.raises(RuntimeError, match="no free ring slot"):
        ring.claim(3)  # slot 0 still holds batch 0
    ring.released.fill_(1)  # the consumer moved past batch 0
    assert ring.claim(3).data_ptr() == ring.buffers[0].data_ptr()


def test_one_iteration_at_a_time(tmp_path) -> None:
    loader = batch_loader(_stream(_data(tmp_path))[0], 0, 6)
    first = iter(loader)
    next(first)
    with pytest.raises(RuntimeError, match="already being iterated"):
        next(iter(loader))
    first.close()
    assert len(list(loader)) == 9


def test_shared_memory_outlives_its_mapping_object() -> None:
    t = _shared((4, 5), torch.float32)
    gc.collect()
    t.fill_(2.5)
    assert float(t.sum()) == 50.0


def test_spawned_workers_reopen_the_memory_map_instead_of_copying(tmp_path) -> None:
    stream, _ = _stream(_data(tmp_path))
    state = stream.__getstate__()
    assert state["source"][:2] == ("memmap", str(tmp_path / "images.npy"))
    assert len(pickle.dumps(stream)) < 20_000  # 2,400 bytes of pixels per image would make it far larger
    clone = pickle.loads(pickle.dumps(stream))
    assert np.array_equal(np.asarray(clone.source), np.asarray(stream.source))
    assert np.array_equal(clone.picked(3), stream.picked(3))
