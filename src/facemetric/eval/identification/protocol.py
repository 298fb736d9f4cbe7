"""The open-set identification protocol built from any identity dataset: a gallery, known and unknown probes.

:func:`build_open_set_split` deals known identities (a gallery of ``gallery_per_identity`` images each,
the rest as probes) and unknown identities (never enrolled), each probe set halved into a validation
part (where the open-set threshold is calibrated) and a test part, the unknown people of validation and
test being different people. Deterministic for a seed; it works on item labels, and
:mod:`facemetric.eval.identification.files` writes and reads it as a CSV (``facemetric protocol open-set``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

from facemetric.eval.errors import ProtocolError
from facemetric.eval.primitives import as_labels

SUBSETS = ("gallery", "val_known", "val_unknown", "test_known", "test_unknown")


@dataclass
class OpenSetSplit:
    """One subset name (of :data:`SUBSETS`) per item, and a count per subset."""

    subset: np.ndarray
    notes: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {s: int(np.sum(self.subset == s)) for s in SUBSETS}


def build_open_set_split(
    labels: ArrayLike, unknown_fraction: float = 0.3, gallery_per_identity: int = 1, seed: int = 0
) -> OpenSetSplit:
    """Split items into gallery / known probes / unknown probes, each probe set into validation and test.

    ``unknown_fraction`` of the identities are never enrolled; half of them (by identity) give the
    validation unknowns, the other half the test unknowns. Each known identity enrols
    ``gallery_per_identity`` random images; its other images are dealt alternately, after a
    shuffle, to validation and test known probes. A known identity with no image to spare is
    enrolled only (a distractor in the gallery).
    """
    y = as_labels(labels)
    if not 0.0 < float(unknown_fraction) < 1.0:
        raise ProtocolError(f"unknown_fraction must be between 0 and 1 (exclusive), got {unknown_fraction!r}")
    if (
        isinstance(gallery_per_identity, bool)
        or not isinstance(gallery_per_identity, (int, np.integer))
        or gallery_per_identity < 1
    ):
        raise ProtocolError(f"gallery_per_identity must be a positive integer, got {gallery_per_identity!r}")
    names = np.unique(y)
    rng = np.random.default_rng(seed)
    order = names[rng.permutation(len(names))]
    n_unknown = max(2, int(round(unknown_fraction * len(names))))
    if len(names) - n_unknown < 1:
        raise ProtocolError(
            f"{len(names)} identities are too few for an open-set split: it needs 2 unknown people "
            "(one for validation, one for test) and at least one known person"
        )
    unknown, known = order[:n_unknown], order[n_unknown:]
    subset = np.empty(len(y), dtype=object)
    for k, name in enumerate(unknown):
        subset[y == name] = "val_unknown" if k % 2 == 0 else "test_unknown"
    no_probe = 0
    for name in known:
        idx = rng.permutation(np.flatnonzero(y == name))
        subset[idx[:gallery_per_identity]] = "gallery"
        rest = idx[gallery_per_identity:]
        no_probe += len(rest) == 0
        start = int(rng.integers(0, 2))  # which half gets an odd one out
        for r, item in enumerate(rest):
            subset[item] = "val_known" if (r + start) % 2 == 0 else "test_known"
    split = OpenSetSplit(subset.astype(str))
    if no_probe:
        split.notes.append(f"{no_probe} known identities have no image beyond the gallery: enrolled, never probed")
    counts = split.counts()
    if counts["test_known"] == 0:
        raise ProtocolError(
            "no known identity has more than gallery_per_identity images, so there is no known probe; "
            "lower gallery_per_identity or add photos"
        )
    return split
