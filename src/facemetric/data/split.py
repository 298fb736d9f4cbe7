"""Identity-disjoint train/validation split: no person appears on both sides."""

from __future__ import annotations

import numpy as np


def split_identities(
    labels: np.ndarray, val_identities: int | float, seed: int = 0, min_val_images: int = 2
) -> tuple[np.ndarray, np.ndarray]:
    """Return (train_indices, val_indices) of ``labels`` with disjoint identities.

    ``val_identities`` is a count (int >= 1) or a fraction of all identities (0 < float < 1).
    Validation identities are drawn, with ``seed``, only among identities having at least
    ``min_val_images`` images, because a person with one photo gives no genuine pair.
    """
    labels = np.asarray(labels)
    ids, counts = np.unique(labels, return_counts=True)
    if isinstance(val_identities, float) and not isinstance(val_identities, bool) and 0 < val_identities < 1:
        n_val = max(1, int(round(val_identities * len(ids))))
    elif float(val_identities) == int(val_identities) and int(val_identities) >= 0:
        n_val = int(val_identities)
    else:
        raise ValueError(f"val_identities must be a count >= 0 or a fraction in (0, 1), got {val_identities!r}")
    if n_val == 0:
        return np.arange(len(labels)), np.zeros(0, dtype=np.int64)
    eligible = ids[counts >= min_val_images]
    if n_val > len(eligible) or n_val >= len(ids):
        raise ValueError(
            f"cannot hold out {n_val} validation identities: {len(ids)} identities in all, "
            f"{len(eligible)} with >= {min_val_images} images; lower val_identities"
        )
    rng = np.random.default_rng(seed)
    val_ids = rng.choice(eligible, size=n_val, replace=False)
    is_val = np.isin(labels, val_ids)
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)
