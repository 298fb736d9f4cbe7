"""The CMU 11-785 HW2P2 course layout as a split of item labels: classification and 1-to-many verification.

The course gives students two tasks on disjoint people: *classification* (``train`` / ``dev``
images of the same people, ``test`` images to label with one of those people) and
*verification* as 1-to-many search with rejection (a ``known`` gallery of enrolled people,
``unknown_dev`` probes whose answers are given for tuning the rejection threshold, and
``unknown_test`` probes to answer: an enrolled person's name or "no correspondence").

:func:`build_course_split` assigns every item one of :data:`COURSE_SUBSETS` by these rules
(the documented proportions; deterministic for a ``seed``):

1. Identities are shuffled with ``np.random.default_rng(seed)``. The first
   ``round(verification_fraction * n_people)`` of them (at least 3: two absent people and one
   known person) are *verification people*; every other person with at least
   ``min_class_images`` images is a *classification person*, and a person with fewer images is a
   verification person too (a good stranger or distractor). Classification and verification
   people are disjoint, so a verification score measures how the embedding generalises to new
   people. Verification people keep their shuffled order.
2. Each classification person's images are shuffled; ``round(dev_fraction * n)`` go to ``dev``
   and ``round(test_fraction * n)`` to ``test`` (each at least 1), the rest to ``train`` (at least
   1: when dev + test would leave none, the larger of the two gives one back until one is left).
   ``round`` is Python's (halves to even).
3. The first ``round(absent_fraction * n_verification)`` verification people (at least 2, and at
   most all but one) are *absent*: never enrolled. They are dealt by person, alternately, to
   ``unknown_dev`` (the first) and ``unknown_test``, so the rejection threshold is never tuned on
   the strangers it is tested on.
4. Every other verification person is *known*: ``known_per_identity`` random images are enrolled
   (``known``), the remaining images are shuffled and dealt alternately to ``unknown_dev`` and
   ``unknown_test``, from a random start per person (so an odd one out is not always dev's). A
   known person with no image left is a known-only distractor in the gallery.

A dataset that cannot make the layout (fewer than 2 classification people, fewer than 3
verification people, no known probe in ``unknown_dev`` or in ``unknown_test``) raises
:class:`~facemetric.eval.errors.ProtocolError` saying what is missing. The split works on
labels only; :mod:`facemetric.eval.course.layout` writes it as the course's folders.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

from facemetric.eval.errors import ProtocolError

COURSE_SUBSETS = ("train", "dev", "test", "known", "unknown_dev", "unknown_test")
MIN_VERIFICATION_PEOPLE = 3  # two absent people (one per unknown set) and one known person


@dataclass
class CourseSplit:
    """One subset name (of :data:`COURSE_SUBSETS`) per item, and who plays which part.

    ``classes``: the classification people; ``known``: the enrolled verification people;
    ``absent``: the verification people never enrolled (each name in shuffled order).
    """

    subset: np.ndarray
    classes: list[str] = field(default_factory=list)
    known: list[str] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Images per subset, every subset named (0 when empty)."""
        return {s: int(np.sum(self.subset == s)) for s in COURSE_SUBSETS}


def _fraction(name: str, value: float, low_open: bool = True) -> float:
    v = float(value)
    if not (0.0 < v < 1.0 if low_open else 0.0 <= v < 1.0):
        bounds = "between 0 and 1 (exclusive)" if low_open else "in [0, 1)"
        raise ProtocolError(f"{name} must be {bounds}, got {value!r}")
    return v


def _positive_int(name: str, value: int, least: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
        raise ProtocolError(f"{name} must be an integer >= {least}, got {value!r}")
    return int(value)


def _class_sizes(n: int, dev_fraction: float, test_fraction: float) -> tuple[int, int]:
    """``(dev, test)`` image counts of a classification person with ``n >= 3`` images (rule 2)."""
    dev = max(1, round(dev_fraction * n))
    test = max(1, round(test_fraction * n))
    while n - dev - test < 1:
        if dev >= test:
            dev -= 1
        else:
            test -= 1
    return dev, test


def build_course_split(
    labels: ArrayLike,
    seed: int = 0,
    verification_fraction: float = 0.3,
    dev_fraction: float = 0.15,
    test_fraction: float = 0.15,
    known_per_identity: int = 1,
    absent_fraction: float = 0.3,
    min_class_images: int = 3,
) -> CourseSplit:
    """Split items (one identity name per item in ``labels``) into the course's subsets (module docstring)."""
    y = np.asarray(labels)
    if y.ndim != 1 or len(y) == 0:
        raise ProtocolError(f"labels must be a non-empty 1-D array (one identity per image), got shape {y.shape}")
    y = y.astype(str)
    _fraction("verification_fraction", verification_fraction)
    dev_f = _fraction("dev_fraction", dev_fraction)
    test_f = _fraction("test_fraction", test_fraction)
    if dev_f + test_f >= 1.0:
        raise ProtocolError(f"dev_fraction + test_fraction must be below 1 (train needs images), got {dev_f + test_f}")
    _fraction("absent_fraction", absent_fraction)
    per_known = _positive_int("known_per_identity", known_per_identity)
    min_images = _positive_int("min_class_images", min_class_images, least=3)

    names, sizes = np.unique(y, return_counts=True)
    size_of = dict(zip(names.tolist(), sizes.tolist()))
    rng = np.random.default_rng(seed)
    order = [str(n) for n in names[rng.permutation(len(names))]]
    n_drawn = min(len(order), max(MIN_VERIFICATION_PEOPLE, round(float(verification_fraction) * len(order))))
    drawn = set(order[:n_drawn])
    small = {p for p in order[n_drawn:] if size_of[p] < min_images}
    verification = [p for p in order if p in drawn or p in small]
    classes = [p for p in order if p not in drawn and p not in small]
    notes: list[str] = []
    if small:
        notes.append(
            f"{len(small)} people with fewer than {min_images} images joined the verification people "
            "(too few for train, dev and test)"
        )
    if len(classes) < 2:
        raise ProtocolError(
            f"{len(names)} people give {len(classes)} classification people with {min_images}+ images after "
            f"{n_drawn} went to verification; classification needs at least 2: add people, lower "
            "verification_fraction or min_class_images"
        )
    if len(verification) < MIN_VERIFICATION_PEOPLE:
        raise ProtocolError(
            f"{len(verification)} verification people are too few: the layout needs {MIN_VERIFICATION_PEOPLE} "
            "(an absent person for unknown_dev, one for unknown_test, and one known person)"
        )

    members = {p: np.flatnonzero(y == p) for p in order}
    subset = np.empty(len(y), dtype=object)
    for p in classes:
        idx = rng.permutation(members[p])
        dev, test = _class_sizes(len(idx), dev_f, test_f)
        subset[idx[:dev]] = "dev"
        subset[idx[dev : dev + test]] = "test"
        subset[idx[dev + test :]] = "train"

    n_absent = min(len(verification) - 1, max(2, round(float(absent_fraction) * len(verification))))
    absent, known = verification[:n_absent], verification[n_absent:]
    for k, p in enumerate(absent):
        subset[members[p]] = "unknown_dev" if k % 2 == 0 else "unknown_test"
    enrolled_only = 0
    for p in known:
        idx = rng.permutation(members[p])
        subset[idx[:per_known]] = "known"
        rest = idx[per_known:]
        enrolled_only += len(rest) == 0
        start = int(rng.integers(0, 2))
        for r, item in enumerate(rest):
            subset[item] = "unknown_dev" if (r + start) % 2 == 0 else "unknown_test"
    if enrolled_only:
        notes.append(
            f"{enrolled_only} known people have no image beyond their {per_known} enrolled: gallery "
            "distractors, never probed"
        )
    split = CourseSplit(subset.astype(str), classes, known, absent, notes)
    for part in ("unknown_dev", "unknown_test"):
        probed = set(y[split.subset == part].tolist()) & set(known)
        if not probed:
            raise ProtocolError(
                f"no known person has an image for {part} beyond the {per_known} enrolled, so {part} has no "
                "probe of an enrolled person; lower known_per_identity, raise verification_fraction or use "
                "people with more images"
            )
    return split
