"""The verification protocol built from any identity dataset: genuine and impostor pairs in folds.

One builder, used everywhere pairs are made: training validation, ``facemetric report`` on a run,
``facemetric protocol pairs`` and the demo all draw their pairs with :func:`build_pair_protocol`
(:func:`held_out_pair_protocol` sizes it for a set of held-out people), so the accuracy logged while
training and the report's accuracy on the same people come from the same pairs and fold rule.

* :func:`build_pair_protocol`: a balanced list of genuine and impostor pairs in ``k`` folds
  whose *identities* are disjoint (a person appears in one fold only), as in LFW's View 2, so the
  k-fold threshold is always chosen on other people than the ones it is tested on. Genuine pairs
  are spread over the identities (water-filling: a person with 500 photos does not supply half of
  them); impostor pairs draw an identity pair uniformly, then one image of each.

It is deterministic for a seed and works on item indices; :mod:`facemetric.eval.verification.files`
writes and reads it as a file (:mod:`facemetric.eval.verification.lfw_pairs`: LFW's ``pairs.txt``
format). The open-set split is identification's (:mod:`facemetric.eval.identification.protocol`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

from facemetric.eval.errors import ProtocolError
from facemetric.eval.primitives import as_labels

_ENUMERATE_LIMIT = 20_000  # identities with more image pairs than this are sampled, not enumerated


@dataclass
class PairProtocol:
    """Pairs of item indices ``(i[k], j[k])``, ``same[k]`` 1 for genuine, and their ``fold[k]`` (0-based).

    Every fold holds ``pairs_per_class`` genuine and as many impostor pairs, genuine ones first.
    """

    i: np.ndarray
    j: np.ndarray
    same: np.ndarray
    fold: np.ndarray
    n_folds: int
    pairs_per_class: int
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.i)


def _identity_folds(y: np.ndarray, n_folds: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Identities dealt into folds: equal head counts (within one), image counts evened out by dealing
    the people largest first in snake order (0..F-1, F-1..0, ...); ties in size are shuffled."""
    names, counts = np.unique(y, return_counts=True)
    order = rng.permutation(len(names))
    order = order[np.argsort(-counts[order], kind="stable")]
    rounds = np.arange(len(order)) // n_folds
    within = np.arange(len(order)) % n_folds
    fold_of = np.where(rounds % 2 == 0, within, n_folds - 1 - within)
    return [names[np.sort(order[fold_of == f])] for f in range(n_folds)]


def _water_fill(capacity: np.ndarray, total: int) -> np.ndarray:
    """Split ``total`` over buckets as evenly as their ``capacity`` allows (sum = min(total, capacity.sum()))."""
    take = np.zeros(len(capacity), dtype=np.int64)
    left = min(int(total), int(capacity.sum()))
    open_ = capacity > 0
    while left > 0 and open_.any():
        share = max(1, left // int(open_.sum()))
        for k in np.flatnonzero(open_):
            add = min(share, int(capacity[k] - take[k]), left)
            take[k] += add
            left -= add
            if take[k] == capacity[k]:
                open_[k] = False
            if left == 0:
                break
    return take


def _distinct_pairs(m: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` distinct unordered pairs (a < b) of 0..m-1, uniformly."""
    total = m * (m - 1) // 2
    if total <= _ENUMERATE_LIMIT:
        a, b = np.triu_indices(m, k=1)
        pick = rng.choice(total, size=count, replace=False)
        return np.stack([a[pick], b[pick]], axis=1)
    seen: set[tuple[int, int]] = set()
    while len(seen) < count:
        a, b = rng.integers(0, m, size=2)
        if a != b:
            seen.add((int(min(a, b)), int(max(a, b))))
    return np.array(sorted(seen), dtype=np.int64)


def _genuine(members: dict, people: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    sizes = np.array([len(members[p]) for p in people], dtype=np.int64)
    take = _water_fill(sizes * (sizes - 1) // 2, n)
    out = [members[p][_distinct_pairs(len(members[p]), int(t), rng)] for p, t in zip(people, take) if t]
    return np.concatenate(out) if out else np.zeros((0, 2), dtype=np.int64)


def _impostors(members: dict, people: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` distinct impostor image pairs: an identity pair uniformly, then one image of each."""
    seen: set[tuple[int, int]] = set()
    out: list[tuple[int, int]] = []
    attempts = 0
    while len(out) < n:
        attempts += 1
        if attempts > 50 * n + 1000:
            raise ProtocolError(f"could not draw {n} distinct impostor pairs from {len(people)} identities")
        a, b = rng.choice(len(people), size=2, replace=False)
        x = int(rng.choice(members[people[a]]))
        z = int(rng.choice(members[people[b]]))
        key = (min(x, z), max(x, z))
        if key not in seen:
            seen.add(key)
            out.append(key)
    return np.array(out, dtype=np.int64).reshape(-1, 2)


def build_pair_protocol(
    labels: ArrayLike, n_folds: int = 10, pairs_per_class: int = 300, seed: int = 0
) -> PairProtocol:
    """A balanced verification protocol: per fold ``pairs_per_class`` genuine + as many impostor pairs.

    Identities are disjoint across folds. When some fold cannot supply ``pairs_per_class``
    distinct genuine pairs (too few people with two or more images), every fold gets the number
    the poorest fold can supply, so the folds stay equal (the LFW format needs that); the
    reduction is logged and kept in ``notes``.
    """
    y = as_labels(labels)
    if isinstance(n_folds, bool) or not isinstance(n_folds, (int, np.integer)) or n_folds < 2:
        raise ProtocolError(f"n_folds must be an integer >= 2, got {n_folds!r}")
    if isinstance(pairs_per_class, bool) or not isinstance(pairs_per_class, (int, np.integer)) or pairs_per_class < 1:
        raise ProtocolError(f"pairs_per_class must be a positive integer, got {pairs_per_class!r}")
    names = np.unique(y)
    if len(names) < 2 * n_folds:
        raise ProtocolError(
            f"{len(names)} identities cannot make {n_folds} identity-disjoint folds with impostor pairs "
            f"(each fold needs 2 or more people); use fewer folds (n_folds <= {max(1, len(names) // 2)})"
        )
    rng = np.random.default_rng(seed)
    folds = _identity_folds(y, int(n_folds), rng)
    members = {name: np.flatnonzero(y == name) for name in names}
    capacity = []
    for people in folds:
        sizes = np.array([len(members[p]) for p in people], dtype=np.int64)
        genuine_cap = int((sizes * (sizes - 1) // 2).sum())
        impostor_cap = int((sizes.sum() ** 2 - (sizes**2).sum()) // 2)
        capacity.append(min(genuine_cap, impostor_cap // 2))  # never ask for nearly every impostor pair
    n = min(int(pairs_per_class), *capacity)
    notes = []
    if n == 0:
        raise ProtocolError(
            "some fold has no identity with two or more images, so no genuine pair; the dataset needs more "
            "people with several photos, or fewer folds"
        )
    if n < pairs_per_class:
        notes.append(
            f"{pairs_per_class} pairs per class asked, {n} per fold possible (the poorest fold's "
            "distinct genuine pairs, or half its impostor pairs); every fold uses that"
        )
    parts = []
    for f, people in enumerate(folds):
        g = _genuine(members, people, n, rng)
        imp = _impostors(members, people, n, rng)
        for pairs, same in ((g, 1), (imp, 0)):
            parts.append((pairs, np.full(len(pairs), same, np.int8), np.full(len(pairs), f, np.int64)))
    pairs = np.concatenate([p for p, _, _ in parts])
    return PairProtocol(
        pairs[:, 0],
        pairs[:, 1],
        np.concatenate([s for _, s, _ in parts]),
        np.concatenate([f for _, _, f in parts]),
        int(n_folds),
        n,
        notes,
    )


MIN_HELD_OUT = 4  # identities: two identity-disjoint folds of two people each


def fold_count(n_identities: int) -> int:
    """Folds for ``n_identities`` held-out people: 10 (LFW's) when there are 20 or more, else one per two people."""
    return max(2, min(10, n_identities // 2))


def held_out_pair_protocol(labels: ArrayLike, max_pairs: int = 3000, seed: int = 0) -> PairProtocol:
    """The verification protocol of a set of held-out people: :func:`build_pair_protocol` with up to
    10 identity-disjoint folds (:func:`fold_count`) and up to ``max_pairs`` genuine pairs in all
    (fewer when the people cannot supply them; see the protocol's notes)."""
    n = len(np.unique(as_labels(labels)))
    if n < MIN_HELD_OUT:
        raise ProtocolError(
            f"{n} held-out identities are too few for identity-disjoint verification folds: at least "
            f"{MIN_HELD_OUT} are needed (data.val_identities)"
        )
    folds = fold_count(n)
    return build_pair_protocol(labels, folds, max(1, max_pairs // folds), seed=seed)
