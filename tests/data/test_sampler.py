from __future__ import annotations

import numpy as np
import pytest

from facemetric.data.sampler import PKSampler
from facemetric.data.split import split_identities


def _labels(counts: list[int]) -> np.ndarray:
    return np.concatenate([np.full(c, i) for i, c in enumerate(counts)])


def test_pk_structure_and_determinism() -> None:
    labels = _labels([5, 6, 4, 8, 5, 7])
    s = PKSampler(labels, p=3, k=4, seed=1)
    assert s.batches_per_epoch == len(labels) // 12
    for batch in s.epoch(0):
        ids = labels[batch].reshape(3, 4)
        assert (ids == ids[:, :1]).all() and len(set(ids[:, 0])) == 3  # P distinct identities, K each
        for row in batch.reshape(3, 4):
            assert len(set(row)) == 4  # enough images: no repeats
    assert all(np.array_equal(a, b) for a, b in zip(s.epoch(2), PKSampler(labels, 3, 4, seed=1).epoch(2)))
    assert not all(np.array_equal(a, b) for a, b in zip(s.epoch(0), s.epoch(1)))


def test_short_identities_repeat_or_drop() -> None:
    labels = _labels([2, 6, 1, 6, 3])
    rep = PKSampler(labels, p=2, k=4, short_policy="repeat", batches_per_epoch=50)
    assert (rep.report.short_repeated, rep.report.dropped_identities, rep.report.dropped_images) == (2, 1, 1)
    seen = np.concatenate(rep.epoch(0))
    assert 2 not in labels[seen] and 0 in labels[seen]  # single-image identity never used
    for batch in rep.epoch(0):
        for row in batch.reshape(2, 4):
            members = set(np.flatnonzero(labels == labels[row[0]]))
            if len(members) < 4:
                assert members <= set(row)  # a short identity shows every image it has
    drop = PKSampler(labels, p=2, k=4, short_policy="drop")
    assert (drop.report.identities_used, drop.report.dropped_identities) == (2, 3)
    assert "dropped 3 identities" in drop.report.describe(4)


def test_sampler_errors() -> None:
    with pytest.raises(ValueError, match="at least 2 identities"):
        PKSampler(_labels([5, 1]), p=2, k=2)
    with pytest.raises(ValueError, match="lower sampler.p"):
        PKSampler(_labels([5, 5, 5]), p=4, k=2)
    with pytest.raises(ValueError, match="short_policy"):
        PKSampler(_labels([5, 5]), p=2, k=2, short_policy="pad")


def test_split_is_identity_disjoint() -> None:
    labels = _labels([3, 1, 4, 5, 2, 6, 1, 3, 3, 2])
    tr, va = split_identities(labels, 3, seed=0)
    assert sorted(np.concatenate([tr, va])) == list(range(len(labels)))
    assert not set(labels[tr]) & set(labels[va]) and len(set(labels[va])) == 3
    assert 1 not in labels[va] and 6 not in labels[va]  # single-image identities stay in training
    assert np.array_equal(va, split_identities(labels, 3, seed=0)[1])
    assert not np.array_equal(va, split_identities(labels, 3, seed=5)[1])
    assert len(set(labels[split_identities(labels, 0.2)[1]])) == 2
    with pytest.raises(ValueError, match="cannot hold out"):
        split_identities(labels, 9)
