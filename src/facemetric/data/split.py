"""Identity-disjoint train/validation split: no person appears on both sides."""

from __future__ import annotations

import numpy as np

from facemetric.data.sources import DatasetError


def split_identities(
    labels: np.ndarray,
    val_identities: int | float,
    seed: int = 0,
    min_val_images: int = 2,
    groups: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Return (train_indices, val_indices) of ``labels`` with disjoint identities.

    ``val_identities`` is a count (int >= 1) or a fraction (0 < float < 1) of the eligible
    identities: those with at least ``min_val_images`` images, since a person with one photo
    gives no genuine pair. Validation identities are drawn among them with ``seed``.

    ``groups`` (one entry per label value, e.g. the HPatches sequence of each point) holds out whole
    groups instead: ``val_identities`` then counts groups (those with an eligible identity), and
    every identity of a chosen group is held out, so no group is on both sides.
    """
    labels = np.asarray(labels)
    if groups is not None:
        return _split_groups(labels, np.asarray(groups), val_identities, seed, min_val_images)
    ids, counts = np.unique(labels, return_counts=True)
    eligible = ids[counts >= min_val_images]
    n_val = _held_out_count(val_identities, len(eligible))
    if n_val == 0:
        return np.arange(len(labels)), np.zeros(0, dtype=np.int64)
    if n_val > len(eligible) or n_val >= len(ids):
        raise DatasetError(
            f"cannot hold out {n_val} validation identities: {len(ids)} identities in all, "
            f"{len(eligible)} with >= {min_val_images} images; lower data.val_identities"
        )
    rng = np.random.default_rng(seed)
    val_ids = rng.choice(eligible, size=n_val, replace=False)
    is_val = np.isin(labels, val_ids)
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


def _held_out_count(val_identities: int | float, eligible: int) -> int:
    """How many of ``eligible`` a count or fraction ``val_identities`` holds out."""
    if isinstance(val_identities, float) and not isinstance(val_identities, bool) and 0 < val_identities < 1:
        return max(1, int(round(val_identities * eligible)))
    if float(val_identities) == int(val_identities) and int(val_identities) >= 0:
        return int(val_identities)
    raise DatasetError(f"data.val_identities must be a count >= 0 or a fraction in (0, 1), got {val_identities!r}")


def _split_groups(
    labels: np.ndarray, groups: np.ndarray, val_groups: int | float, seed: int, min_val_images: int
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`split_identities` by whole groups (``groups[label]`` is the group of each identity)."""
    ids, counts = np.unique(labels, return_counts=True)
    eligible = np.unique(groups[ids[counts >= min_val_images]])
    everyone = np.unique(groups[ids])
    n_val = _held_out_count(val_groups, len(eligible))
    if n_val == 0:
        return np.arange(len(labels)), np.zeros(0, dtype=np.int64)
    if n_val > len(eligible) or n_val >= len(everyone):
        raise DatasetError(
            f"cannot hold out {n_val} validation groups (data.val_group): {len(everyone)} groups in all, "
            f"{len(eligible)} with an identity of >= {min_val_images} images; lower data.val_identities"
        )
    chosen = np.random.default_rng(seed).choice(eligible, size=n_val, replace=False)
    is_val = np.isin(groups[labels], chosen)
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


def split_images(labels: np.ndarray, val_images: int | float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Return (train_indices, dev_indices) of ``labels``: the same identities, different images.

    Closed-set classification is measured on images of the training people that training never
    saw. ``val_images`` is a count (int >= 1) or a fraction (0 < float < 1) of each identity's
    images held out; an identity always keeps at least one training image, so a person with a
    single photo gives none (a fraction rounds, and holds out at least one image of a person with
    two or more). Drawn with ``seed``.
    """
    labels = np.asarray(labels)
    fraction = isinstance(val_images, float) and 0 < val_images < 1
    if not fraction and not (float(val_images) == int(val_images) and int(val_images) >= 0):
        raise DatasetError(f"data.val_images must be a count >= 0 or a fraction in (0, 1), got {val_images!r}")
    rng = np.random.default_rng(seed)
    dev: list[np.ndarray] = []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        want = max(1, int(round(float(val_images) * len(members)))) if fraction else int(val_images)
        dev.append(members[: min(want, len(members) - 1)])
    held = np.sort(np.concatenate(dev)) if dev else np.zeros(0, dtype=np.int64)
    return np.setdiff1d(np.arange(len(labels)), held), held
