"""Where each patch of an HPatches :class:`~facemetric.data.hpatches.PatchSet` is, and the verification pairs.

:class:`PatchIndex` arranges the rows of a patch set by point (one 3-D point of one sequence) and
image: ``rows[p, j]`` is the patch of point ``p`` in image ``IMAGES[j]`` (``ref``, ``e1`` ... ``t5``).
Points are sorted by sequence, so the points of a sequence are a contiguous range.

Verification pairs (:func:`sample_verification_pairs`) follow hpatches-benchmark's generator
(``python/utils/tasks.py``, ``gen_verif``; read from its source):

* a **positive** is one point seen in two different images among ``ref`` and the level's five
  targets, image ids 0 (ref) and 1..5; about a third of the pairs hold the reference patch. The same
  (point, image ids) are evaluated at every level, ids k mapped to ``e``k, ``h``k or ``t``k, so the
  levels differ by their jitter only. (The benchmark draws the two ids from 0..4, never the fifth
  target; here all six images take part.) The positives are distinct: drawn without replacement from
  the 15 image pairs of every point.
* its **intra** negative keeps the positive's first patch and replaces the second by another point
  of the same sequence in the same image; its **inter** negative takes a point of another sequence
  (the benchmark may draw the same sequence by chance; here never). A negative pair drawn twice is
  drawn again; a positive without a possible negative (a sequence of one point, a release of one
  sequence) is left out of that negative kind's lists.
* **balanced** lists hold one negative per positive; **imbalanced** ones ``imbalance`` (default 5)
  negatives per positive. The benchmark's imbalanced lists are its 1M negatives with the first 0.2M
  of its 1M positives: also 1 : 5. (It scores its balanced lists by ROC AUC and the imbalanced ones by
  AP; here both by AP, the imbalanced AP being its headline.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facemetric.core.errors import FacemetricError
from facemetric.data.hpatches import IMAGES, LEVELS, PatchSet

IMAGE_PAIRS = np.array([(a, b) for a in range(6) for b in range(a + 1, 6)])  # the 15 pairs of image ids 0..5
KIND_OF_PREFIX = {"i_": "illum", "v_": "view"}


class PatchProtocolError(FacemetricError, ValueError):
    """The patch set or the descriptors do not fit the HPatches protocol; the message says what is wrong."""


@dataclass
class PatchIndex:
    """The rows of a patch set by point and image, with each point's sequence and kind."""

    rows: np.ndarray  # (P, 16): row of point p's patch in image IMAGES[j]
    sequence: np.ndarray  # (P,) index into ``names`` (points sorted by sequence)
    names: list[str]  # sequence names, sorted
    start: np.ndarray  # (S,) first point of each sequence
    size: np.ndarray  # (S,) points of each sequence
    kind: np.ndarray  # (P,) "illum", "view" or "" (a sequence named otherwise)
    patch_index: np.ndarray  # (P,) the point's index within its sequence

    @classmethod
    def of(cls, patches: PatchSet) -> PatchIndex:
        """Index ``patches``; :class:`PatchProtocolError` unless every point has exactly one patch per image."""
        names, seq = np.unique(np.asarray(patches.sequences).astype(str), return_inverse=True)
        where = {name: j for j, name in enumerate(IMAGES)}
        unknown = sorted(set(np.asarray(patches.image_names).astype(str).tolist()) - set(where))
        if unknown:
            raise PatchProtocolError(f"image names {unknown[:5]} are not HPatches images ({', '.join(IMAGES)})")
        image = np.array([where[n] for n in np.asarray(patches.image_names).astype(str).tolist()], np.int64)
        index = np.asarray(patches.patch_index, np.int64)
        keys, point = np.unique(seq.astype(np.int64) * (int(index.max(initial=0)) + 1) + index, return_inverse=True)
        cells = point * len(IMAGES) + image
        if len(np.unique(cells)) != len(cells):
            raise PatchProtocolError("a point has two patches in one image: each (sequence, index, image) is one patch")
        rows = np.full((len(keys), len(IMAGES)), -1, np.int64)
        rows.reshape(-1)[cells] = np.arange(len(cells))
        if (rows < 0).any():
            p, j = np.argwhere(rows < 0)[0]
            row = rows[p][rows[p] >= 0][0]
            raise PatchProtocolError(
                f"point {index[row]} of sequence {names[seq[row]]} has no patch in image {IMAGES[j]}: every point "
                f"needs all {len(IMAGES)} images ({', '.join(IMAGES)})"
            )
        sequence = seq[rows[:, 0]]
        size = np.bincount(sequence, minlength=len(names))
        kinds = np.array([KIND_OF_PREFIX.get(str(n)[:2], "") for n in names])
        return cls(
            rows, sequence, [str(n) for n in names], np.cumsum(size) - size, size, kinds[sequence], index[rows[:, 0]]
        )

    def __len__(self) -> int:
        return len(self.rows)

    def level_rows(self, level: str) -> np.ndarray:
        """(P, 6) rows of each point in ``ref`` and the level's five images (``level``: e, h or t)."""
        if level not in LEVELS:
            raise ValueError(f"level must be one of {', '.join(LEVELS)}, got {level!r}")
        return self.rows[:, [IMAGES.index(name) for name in ("ref", *(f"{level}{k}" for k in range(1, 6)))]]


@dataclass
class VerificationPairs:
    """Positive pairs (point, image1) - (point, image2) and, for each, its intra and inter negative's
    other point (paired with image2), -1 where it has none. Image ids: 0 ref, k the level's k-th target."""

    point: np.ndarray
    image1: np.ndarray
    image2: np.ndarray
    intra: np.ndarray
    inter: np.ndarray

    def __len__(self) -> int:
        return len(self.point)

    def lists(self, negatives: str, imbalance: int) -> dict[str, tuple[np.ndarray, ...]]:
        """The ``balanced`` and ``imbalanced`` lists with ``negatives`` (intra or inter): each as
        (point1, image1, point2, image2, same), negatives first (so a tie counts against the descriptor)."""
        other = getattr(self, negatives)
        keep = np.flatnonzero(other >= 0)
        n_pos = {"balanced": len(keep), "imbalanced": len(keep) // imbalance}
        n_neg = {"balanced": len(keep), "imbalanced": n_pos["imbalanced"] * imbalance}
        out: dict[str, tuple[np.ndarray, ...]] = {}
        for name in ("balanced", "imbalanced"):
            neg, pos = keep[: n_neg[name]], keep[: n_pos[name]]
            out[name] = (
                np.concatenate([self.point[neg], self.point[pos]]),
                np.concatenate([self.image1[neg], self.image1[pos]]),
                np.concatenate([other[neg], self.point[pos]]),
                np.concatenate([self.image2[neg], self.image2[pos]]),
                np.concatenate([np.zeros(len(neg), bool), np.ones(len(pos), bool)]),
            )
        return out


def _partners(index: PatchIndex, point: np.ndarray, intra: bool, rng: np.random.Generator) -> np.ndarray:
    """Another point for each of ``point``: uniformly of the same sequence (``intra``) or of the others; -1 if none."""
    seq = index.sequence[point]
    start, size = index.start[seq], index.size[seq]
    if intra:
        room = size - 1
        offset = point - start + 1 + rng.integers(0, np.maximum(room, 1))
        other = start + offset % np.maximum(size, 1)
    else:  # the points of the other sequences follow this sequence's, cyclically
        room = len(index) - size
        other = (start + size + rng.integers(0, np.maximum(room, 1))) % len(index)
    return np.where(room > 0, other, -1)


def _negatives(pairs: VerificationPairs, index: PatchIndex, intra: bool, rng: np.random.Generator) -> np.ndarray:
    """Each positive's negative partner: no negative pair twice (a repeat is drawn again, up to 20 times)."""
    other = _partners(index, pairs.point, intra, rng)
    side = 6 * len(index)
    for _ in range(20):
        a = pairs.point * 6 + pairs.image1
        b = np.where(other >= 0, other * 6 + pairs.image2, -1)
        key = np.minimum(a, b) * side + np.maximum(a, b)
        _, first = np.unique(key, return_index=True)
        repeat = np.ones(len(key), bool)
        repeat[first] = False
        repeat &= other >= 0
        if not repeat.any():
            return other
        other[repeat] = _partners(index, pairs.point[repeat], intra, rng)
    other[repeat] = -1
    return other


def sample_verification_pairs(index: PatchIndex, max_positives: int, seed: int = 0) -> VerificationPairs:
    """Up to ``max_positives`` distinct positive pairs (all when the points have fewer) with their
    intra- and inter-sequence negatives, in a seeded random order."""
    rng = np.random.default_rng(seed)
    total = len(index) * len(IMAGE_PAIRS)
    chosen = rng.permutation(total) if max_positives >= total else rng.choice(total, max_positives, replace=False)
    point, combo = np.divmod(chosen.astype(np.int64), len(IMAGE_PAIRS))
    flip = rng.random(len(chosen)) < 0.5  # either image may be the one the negative keeps
    image1 = np.where(flip, IMAGE_PAIRS[combo, 1], IMAGE_PAIRS[combo, 0])
    image2 = np.where(flip, IMAGE_PAIRS[combo, 0], IMAGE_PAIRS[combo, 1])
    pairs = VerificationPairs(point, image1, image2, np.empty(0, np.int64), np.empty(0, np.int64))
    pairs.intra = _negatives(pairs, index, True, rng)
    pairs.inter = _negatives(pairs, index, False, rng)
    return pairs
