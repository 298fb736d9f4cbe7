"""Where each patch of an HPatches :class:`~facemetric.data.hpatches.PatchSet` is, and the task lists.

:class:`PatchIndex` arranges the rows of a patch set by point (one 3-D point of one sequence) and
image: ``rows[p, j]`` is the patch of point ``p`` in image ``IMAGES[j]`` (``ref``, ``e1`` ... ``t5``).
Points are sorted by sequence, so the points of a sequence are a contiguous range.

:class:`TaskLists` holds what hpatches-benchmark's ``tasks/`` files hold: the verification lists
(positives, intra- and inter-sequence negatives, row k of each built on positive k) and the retrieval
queries and distractors (points, in list order). An image id is 0 for ``ref`` and k for the level's
k-th target, so one list serves the three levels. :func:`draw_task_lists` draws them as the benchmark's
generators do (``python/utils/tasks.py`` at commit e0c993c, ``gen_verif`` and ``gen_retrieval``, read
from its source), with a seeded generator of its own instead of ``np.random.seed(42)``:

* **verification**: a sequence is drawn first (uniformly among the given ones), then two distinct
  points of it and two distinct image ids among 0..4 (``ref``, targets 1..4: the benchmark never uses
  the fifth target). The positive pairs the first point in both images, the intra negative the two
  points, the inter negative the first point with a uniform point of a sequence drawn again
  (the same sequence by chance included). Pairs may repeat, as in the benchmark.
* **retrieval**: 4 x ``queries`` (sequence, point) draws and 10 x ``distractors`` ones, sequence first;
  flat points (reference patch grey-level standard deviation not above ``min_std`` on the 65 px
  patch) dropped, repeats dropped (the first kept), the first ``queries`` kept; the query points are
  taken out of the distractors, the first ``distractors`` kept.

On a small release the queries are capped at half the usable points, so that some are left as
distractors (the benchmark's 5,000 queries and 20,000 distractors come from tens of thousands of
points).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facemetric.core.errors import FacemetricError
from facemetric.data.hpatches import IMAGES, LEVELS, PatchSet

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
class PairList:
    """Patch pairs (point1 in image1, point2 in image2); image ids 0 (ref) and 1..5 (the level's targets)."""

    point1: np.ndarray
    image1: np.ndarray
    point2: np.ndarray
    image2: np.ndarray

    def __len__(self) -> int:
        return len(self.point1)


@dataclass
class TaskLists:
    """The verification lists and the retrieval queries and distractors of one group of sequences."""

    positives: PairList
    intra: PairList
    inter: PairList
    queries: np.ndarray  # points whose reference patch is a query
    distractors: np.ndarray  # points whose reference patch is a distractor, in list order


def _uniform_point(index: PatchIndex, seq: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A uniform point of each sequence in ``seq`` (sequence indices into ``index.names``)."""
    return index.start[seq] + np.floor(rng.random(len(seq)) * index.size[seq]).astype(np.int64)


def _first_unique(points: np.ndarray) -> np.ndarray:
    """``points`` without repeats, each kept where it first appears."""
    _, first = np.unique(points, return_index=True)
    return points[np.sort(first)]


def draw_task_lists(
    index: PatchIndex,
    sequences: np.ndarray,
    flat: np.ndarray,
    rng: np.random.Generator,
    pairs: int,
    queries: int,
    distractors: int,
) -> TaskLists:
    """Lists over ``sequences`` (indices into ``index.names``) drawn as the benchmark's generators do (see the
    module docstring): ``pairs`` positives (and as many negatives of each kind), up to ``queries`` queries and
    ``distractors`` distractors among the points not ``flat``."""
    sequences = np.asarray(sequences, np.int64)
    paired = sequences[index.size[sequences] >= 2]
    if not len(paired):
        raise PatchProtocolError("verification needs a sequence of at least two points (for intra negatives)")
    seq = rng.choice(paired, pairs)
    size = index.size[seq]
    first = np.floor(rng.random(pairs) * size).astype(np.int64)
    second = (first + 1 + np.floor(rng.random(pairs) * (size - 1)).astype(np.int64)) % size
    p1, p2 = index.start[seq] + first, index.start[seq] + second
    t1 = rng.integers(0, 5, pairs)
    t2 = (t1 + 1 + rng.integers(0, 4, pairs)) % 5
    other = _uniform_point(index, rng.choice(sequences, pairs), rng)
    in_groups = np.isin(index.sequence, sequences)
    usable = int((in_groups & ~flat).sum())
    n_queries = min(queries, usable // 2)
    drawn = _uniform_point(index, rng.choice(sequences, 4 * n_queries), rng)
    query = _first_unique(drawn[~flat[drawn]])[:n_queries]
    drawn = _uniform_point(index, rng.choice(sequences, 10 * distractors), rng)
    pool = _first_unique(drawn[~flat[drawn]])
    pool = pool[~np.isin(pool, query)][:distractors]
    return TaskLists(PairList(p1, t1, p1, t2), PairList(p1, t1, p2, t2), PairList(p1, t1, other, t2), query, pool)
