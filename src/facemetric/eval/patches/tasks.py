"""HPatches' task protocols (Balntas et al., CVPR 2017) over a :class:`~facemetric.data.hpatches.PatchSet`.

:func:`evaluate_patch_tasks` takes descriptors row-aligned with a patch set and measures, at each
jitter level (easy, hard, tough) and over all / illumination (``i_*``) / viewpoint (``v_*``)
sequences, the three tasks whose metrics are the pure functions of :mod:`facemetric.eval.patches.metrics`:

* **verification**: the AP of ranking pair lists by distance, for negatives from the same sequence
  (intra) and from others (inter), balanced (1 : 1) and imbalanced (1 : 5) lists; see
  :mod:`facemetric.eval.patches.pairs` for how the pairs are drawn. A pair belongs to the kind of its
  first patch's sequence.
* **matching**: every sequence's reference patches matched to each of the level's five target
  images (:func:`~facemetric.eval.patches.metrics.matching_ap`), averaged over the five targets, then over
  sequences.
* **retrieval**: each query (the reference patch of one of up to ``max_queries`` sampled points)
  ranks its point's five patches in the level's targets among distractors: one patch of each of up
  to ``distractors`` sampled points, in a target image of the level drawn per point (the benchmark
  draws its distractors from the reference image; a target image keeps positives and distractors
  equally jittered). The two samples are drawn independently, so a small release still has
  distractors; a query's own point is never one of them and, as in the benchmark, neither are the
  other points of its sequence (overlapping detections of one scene make near-copies) unless
  ``same_sequence_distractors``. Points whose reference patch is flat (grey-level standard deviation
  below ``min_std``, the benchmark's 10) are neither queries nor distractors. The benchmark averages
  AP over pool sizes 100 ... 20,000; here one pool, its size in the counts.

Pairs and samples are drawn from one seeded generator: the same inputs give the same figures.
Distances are L2 in float64, computed in chunks (no matrix larger than ``CHUNK`` x a sequence's or
the pool's size). Ties count against the descriptor: a negative or distractor at the same distance
as a positive ranks before it, so a descriptor that maps everything to one vector scores low.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from facemetric.data.hpatches import LEVELS, PatchSet
from facemetric.eval.patches.pairs import PatchIndex, PatchProtocolError, VerificationPairs, sample_verification_pairs
from facemetric.eval.patches.result import (
    LEVEL_NAMES,
    KindScores,
    LevelScores,
    PatchCounts,
    PatchSettings,
    PatchTaskResults,
    VerificationScores,
)
from facemetric.eval.primitives import ap_of_ranking

CHUNK = 1024  # rows of a distance block
TIE = 1e-10  # squared distances closer than this are ties
LEVEL_KEYS = tuple(LEVELS)  # e, h, t
KIND_NAMES = ("illum", "view")


def _kind_scores(values: np.ndarray, kinds: np.ndarray) -> KindScores:
    """The mean of ``values`` over all of them and over each kind; None where there are none (or all NaN)."""

    def mean(mask: np.ndarray) -> float | None:
        chosen = values[mask & ~np.isnan(values)]
        return float(chosen.mean()) if len(chosen) else None

    every = np.ones(len(values), bool)
    return KindScores(all=mean(every), illum=mean(kinds == "illum"), view=mean(kinds == "view"))


def _level_scores(per_level: dict[str, KindScores]) -> LevelScores:
    """Scores of the three levels (keyed e, h, t) and their mean (None unless all three are known)."""
    fields = {}
    for kind in ("all", *KIND_NAMES):
        values = [getattr(per_level[key], kind) for key in LEVEL_KEYS]
        fields[kind] = None if any(v is None for v in values) else float(np.mean(values))
    levels = {LEVELS[key]: per_level[key] for key in LEVEL_KEYS}
    return LevelScores(**levels, mean=KindScores(**fields))


def _mean_of(a: LevelScores, b: LevelScores) -> LevelScores:
    """Field by field mean of two score tables (None where either is None)."""

    def both(u: float | None, v: float | None) -> float | None:
        return None if u is None or v is None else (u + v) / 2

    def kinds(x: KindScores, y: KindScores) -> KindScores:
        return KindScores(**{k: both(getattr(x, k), getattr(y, k)) for k in ("all", *KIND_NAMES)})

    return LevelScores(**{name: kinds(getattr(a, name), getattr(b, name)) for name in (*LEVEL_NAMES, "mean")})


def _rowwise_distances(desc: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """L2 distance between rows ``a[k]`` and ``b[k]`` of ``desc``, in chunks."""
    out = np.empty(len(a))
    step = CHUNK * 16
    for s in range(0, len(a), step):
        diff = desc[a[s : s + step]].astype(np.float64) - desc[b[s : s + step]]
        out[s : s + step] = np.sqrt((diff * diff).sum(1))
    return out


def _squared(q: np.ndarray, x: np.ndarray) -> np.ndarray:
    """(len(q), len(x)) squared L2 distances (float64), ties within :data:`TIE` made exact."""
    d2 = (q * q).sum(1)[:, None] + (x * x).sum(1)[None, :] - 2.0 * q @ x.T
    return np.round(np.maximum(d2, 0.0) / TIE) * TIE


def _ranked_ap(distances: np.ndarray, same: np.ndarray) -> float:
    """AP of pairs ranked by distance (stable: equal distances keep the list's order)."""
    order = np.argsort(distances, kind="stable")
    return ap_of_ranking(same[order], int(same.sum()))


def verification_scores(
    desc: np.ndarray, index: PatchIndex, pairs: VerificationPairs, imbalance: int
) -> VerificationScores:
    """Verification AP per list (intra / inter x balanced / imbalanced), level and kind."""
    tables: dict[str, dict[str, KindScores]] = {}
    for key in LEVEL_KEYS:
        rows = index.level_rows(key)
        for negatives in ("intra", "inter"):
            for name, (p1, i1, p2, i2, same) in pairs.lists(negatives, imbalance).items():
                d = _rowwise_distances(desc, rows[p1, i1], rows[p2, i2])
                kinds = index.kind[p1]
                scores = {}
                for kind, mask in (("all", np.ones(len(d), bool)), *((k, kinds == k) for k in KIND_NAMES)):
                    scores[kind] = _ranked_ap(d[mask], same[mask]) if same[mask].any() else None
                tables.setdefault(f"{negatives}_{name}", {})[key] = KindScores(**scores)
    lists = {name: _level_scores(per_level) for name, per_level in tables.items()}
    return VerificationScores(
        **lists,
        balanced=_mean_of(lists["intra_balanced"], lists["inter_balanced"]),
        imbalanced=_mean_of(lists["intra_imbalanced"], lists["inter_imbalanced"]),
    )


def _nearest(ref: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each row of ``ref``: the index of its nearest row of ``target`` and the distance, in chunks."""
    nearest, dist = np.empty(len(ref), np.int64), np.empty(len(ref))
    for s in range(0, len(ref), CHUNK):
        d2 = _squared(ref[s : s + CHUNK], target)
        nearest[s : s + CHUNK] = np.argmin(d2, axis=1)
        dist[s : s + CHUNK] = np.sqrt(d2[np.arange(len(d2)), nearest[s : s + CHUNK]])
    return nearest, dist


def sequence_matching_ap(ref: np.ndarray, target: np.ndarray) -> float:
    """:func:`~facemetric.eval.patches.metrics.matching_ap` computed in chunks (the same figure without an N x N
    matrix)."""
    nearest, dist = _nearest(ref, target)
    correct = nearest == np.arange(len(ref))
    return ap_of_ranking(correct[np.argsort(dist, kind="stable")], len(ref))


def matching_scores(desc: np.ndarray, index: PatchIndex) -> tuple[LevelScores, int]:
    """Matching mAP per level and kind (mean over each sequence's five targets, then over sequences), and
    the number of (sequence, target) pairs matched."""
    per_level = {}
    kinds = index.kind[index.start]
    for key in LEVEL_KEYS:
        rows = index.level_rows(key)
        aps = np.empty(len(index.names))
        for s, (start, size) in enumerate(zip(index.start, index.size)):
            block = rows[start : start + size]
            ref = desc[block[:, 0]].astype(np.float64)
            aps[s] = np.mean([sequence_matching_ap(ref, desc[block[:, k]].astype(np.float64)) for k in range(1, 6)])
        per_level[key] = _kind_scores(aps, kinds)
    return _level_scores(per_level), 5 * len(index.names) * len(LEVEL_KEYS)


def _query_aps(q: np.ndarray, positives: np.ndarray, pool: np.ndarray, masked: np.ndarray) -> np.ndarray:
    """AP of each query (rows of ``q``) ranking its ``positives`` (n, 5, D) among ``pool`` (m, D) but the
    ``masked`` (n, m) ones; a distractor at a positive's distance ranks before it."""
    pos = positives - q[:, None, :]
    d_pos = np.sort(np.round((pos * pos).sum(2) / TIE) * TIE, axis=1)  # (n, 5)
    d_pool = np.where(masked, np.inf, _squared(q, pool))  # (n, m)
    before = (d_pool[:, None, :] <= d_pos[:, :, None]).sum(2)  # distractors ranked before each positive
    rank = np.arange(1, positives.shape[1] + 1)[None, :] + before
    return (np.arange(1, positives.shape[1] + 1)[None, :] / rank).mean(1)


def flat_points(patches: PatchSet, index: PatchIndex, min_std: float) -> np.ndarray:
    """Points whose reference patch has a grey-level standard deviation below ``min_std``."""
    flat = np.zeros(len(index), bool)
    if min_std <= 0:
        return flat
    for s in range(0, len(index), CHUNK * 8):
        ref = np.asarray(patches.images[index.rows[s : s + CHUNK * 8, 0]], np.float32)
        flat[s : s + CHUNK * 8] = ref.reshape(len(ref), -1).std(1) < min_std
    return flat


def retrieval_scores(
    desc: np.ndarray,
    index: PatchIndex,
    usable: np.ndarray,
    rng: np.random.Generator,
    max_queries: int,
    distractors: int,
    same_sequence: bool,
) -> tuple[LevelScores, int, int]:
    """Retrieval mAP per level and kind, the number of queries and of distractors."""
    candidates = np.flatnonzero(usable)
    queries = np.sort(rng.choice(candidates, min(max_queries, len(candidates)), replace=False))
    pool = np.sort(rng.choice(candidates, min(distractors, len(candidates)), replace=False))
    image = rng.integers(1, 6, len(pool))  # each distractor's target image, the same at every level
    per_level = {}
    for key in LEVEL_KEYS:
        rows = index.level_rows(key)
        x = desc[rows[pool, image]].astype(np.float64)
        aps = np.empty(len(queries))
        for s in range(0, len(queries), CHUNK // 4):
            chunk = queries[s : s + CHUNK // 4]
            if same_sequence:  # only the query's own point is not a distractor
                masked = chunk[:, None] == pool[None, :]
            else:
                masked = index.sequence[chunk][:, None] == index.sequence[pool][None, :]
            q = desc[rows[chunk, 0]].astype(np.float64)
            aps[s : s + len(chunk)] = _query_aps(q, desc[rows[chunk, 1:]].astype(np.float64), x, masked)
        per_level[key] = _kind_scores(aps, index.kind[queries])
    return _level_scores(per_level), len(queries), len(pool)


def evaluate_patch_tasks(
    descriptors: np.ndarray,
    patches: PatchSet,
    *,
    seed: int = 0,
    max_pairs: int = 50_000,
    imbalance: int = 5,
    max_queries: int = 1000,
    distractors: int = 5000,
    min_std: float = 10.0,
    same_sequence_distractors: bool = False,
    progress: Callable[[str], None] | None = None,
) -> PatchTaskResults:
    """HPatches verification, matching and retrieval mAP of ``descriptors`` (row k describes patch k of ``patches``).

    ``max_pairs`` caps each verification list (a balanced list holds ``max_pairs / 2`` positives),
    ``max_queries`` and ``distractors`` the retrieval sample; ``min_std`` is the grey-level standard
    deviation below which a reference patch is too flat for retrieval; ``progress`` is told each task.
    """
    desc = np.asarray(descriptors)
    if desc.ndim != 2 or len(desc) != len(patches):
        raise PatchProtocolError(f"descriptors {desc.shape} do not fit {len(patches)} patches: give (N, D), one a row")
    if imbalance < 1 or max_pairs < 2 or max_queries < 1 or distractors < 0:
        raise PatchProtocolError("imbalance, max_pairs (>= 2), max_queries must be positive, distractors >= 0")
    say = progress or (lambda _: None)
    index = PatchIndex.of(patches)
    rng = np.random.default_rng(seed)
    say("verification")
    pairs = sample_verification_pairs(index, max_pairs // 2, int(rng.integers(2**31)))
    verification = verification_scores(desc, index, pairs, imbalance)
    say("matching")
    matching, matched = matching_scores(desc, index)
    say("retrieval")
    flat = flat_points(patches, index, min_std)
    retrieval, n_queries, n_pool = retrieval_scores(
        desc, index, ~flat, rng, max_queries, distractors, same_sequence_distractors
    )
    kinds = index.kind[index.start]
    counts = PatchCounts(
        sequences=len(index.names),
        illum_sequences=int((kinds == "illum").sum()),
        view_sequences=int((kinds == "view").sum()),
        points=len(index),
        patches=len(patches),
        descriptor_dim=int(desc.shape[1]),
        verification_positives=len(pairs),
        verification_negatives_intra=int((pairs.intra >= 0).sum()),
        verification_negatives_inter=int((pairs.inter >= 0).sum()),
        matching_pairs=matched,
        retrieval_queries=n_queries,
        retrieval_distractors=n_pool,
        retrieval_flat_points=int(flat.sum()),
    )
    settings = PatchSettings(
        seed=seed,
        max_pairs=max_pairs,
        imbalance=imbalance,
        max_queries=max_queries,
        distractors=distractors,
        min_std=min_std,
        same_sequence_distractors=same_sequence_distractors,
    )
    return PatchTaskResults(
        verification=verification, matching=matching, retrieval=retrieval, counts=counts, settings=settings
    )
