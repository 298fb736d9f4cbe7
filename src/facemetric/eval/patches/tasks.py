"""HPatches' task protocols (Balntas et al., CVPR 2017) over a :class:`~facemetric.data.hpatches.PatchSet`, as
hpatches-benchmark's Python evaluation code (``python/utils/tasks.py`` at commit e0c993c) defines them.

:func:`evaluate_patch_tasks` takes descriptors row-aligned with a patch set and measures, at each
jitter level (easy, hard, tough) and over all / illumination (``i_*``) / viewpoint (``v_*``)
sequences, the three tasks. Each column has its own lists (:class:`~facemetric.eval.patches.pairs.TaskLists`):
the benchmark's own (``lists``, e.g. read by :func:`~facemetric.eval.patches.task_files.read_task_lists`
from its ``tasks/`` folder: ``full``, ``illum``, ``view``) or drawn as its generators draw them
(:func:`~facemetric.eval.patches.pairs.draw_task_lists`) over the column's sequences only, so the
illum and view columns are the benchmark's illum and view splits.

* **verification**: pairs ranked by distance, negatives first in the list (a tie counts against the
  descriptor). Balanced lists (every positive, every negative) are scored by ROC AUC as the benchmark
  does (``balanced="ap"``: by AP instead); imbalanced lists (every negative, the first 1 / ``imbalance``
  of the positives) by AP. Intra- and inter-sequence negatives apart, and their mean.
* **matching**: every sequence's reference patches matched to each of the level's five target
  images (:func:`~facemetric.eval.patches.metrics.matching_ap`), the mean over sequences and targets.
* **retrieval**: :mod:`facemetric.eval.patches.retrieval`: AP per pool size and over the whole list.

AP is the Python code's trapezoid by default, the MATLAB code's step with ``ap="step"``
(:mod:`facemetric.eval.patches.metrics`). Lists are drawn from one seeded generator: the same inputs
give the same figures. Distances are L2 in float64, computed in chunks.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from facemetric.data.hpatches import LEVELS, PatchSet
from facemetric.eval.patches.metrics import check_convention, ranked_ap, roc_auc
from facemetric.eval.patches.pairs import PairList, PatchIndex, PatchProtocolError, TaskLists, draw_task_lists
from facemetric.eval.patches.result import (
    LEVEL_NAMES,
    KindScores,
    LevelScores,
    PatchCounts,
    PatchSettings,
    PatchTaskResults,
    VerificationScores,
)
from facemetric.eval.patches.retrieval import POOL_SIZES, query_aps, squared

CHUNK = 1024  # rows of a distance block
LEVEL_KEYS = tuple(LEVELS)  # e, h, t
COLUMNS = ("all", "illum", "view")
Lists = dict[str, TaskLists | None]


def _level_scores(per_level: dict[str, KindScores]) -> LevelScores:
    """Scores of the three levels (keyed e, h, t) and their mean (None unless all three are known)."""
    fields = {}
    for kind in COLUMNS:
        values = [getattr(per_level[key], kind) for key in LEVEL_KEYS]
        fields[kind] = None if any(v is None for v in values) else float(np.mean(values))
    levels = {LEVELS[key]: per_level[key] for key in LEVEL_KEYS}
    return LevelScores(**levels, mean=KindScores(**fields))


def _mean_of(a: LevelScores, b: LevelScores) -> LevelScores:
    """Field by field mean of two score tables (None where either is None)."""

    def both(u: float | None, v: float | None) -> float | None:
        return None if u is None or v is None else (u + v) / 2

    def kinds(x: KindScores, y: KindScores) -> KindScores:
        return KindScores(**{k: both(getattr(x, k), getattr(y, k)) for k in COLUMNS})

    return LevelScores(**{name: kinds(getattr(a, name), getattr(b, name)) for name in (*LEVEL_NAMES, "mean")})


def _pair_distances(desc: np.ndarray, rows: np.ndarray, pairs: PairList) -> np.ndarray:
    """L2 distance of each pair of ``pairs`` at one level (``rows``: a point's rows in ref and the five targets)."""
    a, b = rows[pairs.point1, pairs.image1], rows[pairs.point2, pairs.image2]
    out = np.empty(len(a))
    step = CHUNK * 16
    for s in range(0, len(a), step):
        diff = desc[a[s : s + step]].astype(np.float64) - desc[b[s : s + step]]
        out[s : s + step] = np.sqrt((diff * diff).sum(1))
    return out


def _ranked(d_neg: np.ndarray, d_pos: np.ndarray) -> np.ndarray:
    """The truth of negatives then positives, ranked by distance (ties keep that order)."""
    y = np.concatenate([np.zeros(len(d_neg), bool), np.ones(len(d_pos), bool)])
    return y[np.argsort(np.concatenate([d_neg, d_pos]), kind="stable")]


def verification_scores(
    desc: np.ndarray, index: PatchIndex, lists: Lists, imbalance: int, ap: str, balanced: str
) -> VerificationScores:
    """Verification per list (intra / inter x balanced / imbalanced), level and column."""
    names = [f"{negatives}_{n}" for negatives in ("intra", "inter") for n in ("balanced", "imbalanced")]
    tables: dict[str, dict[str, dict[str, float | None]]] = {name: {key: {} for key in LEVEL_KEYS} for name in names}
    for key in LEVEL_KEYS:
        rows = index.level_rows(key)
        for column in COLUMNS:
            own = lists[column]
            if own is None:
                for name in names:
                    tables[name][key][column] = None
                continue
            d_pos = _pair_distances(desc, rows, own.positives)
            n_some = len(d_pos) // imbalance
            for negatives in ("intra", "inter"):
                d_neg = _pair_distances(desc, rows, getattr(own, negatives))
                full = _ranked(d_neg, d_pos)
                balanced_value = roc_auc(full) if balanced == "auc" else ranked_ap(full, len(d_pos), ap)
                tables[f"{negatives}_balanced"][key][column] = balanced_value
                tables[f"{negatives}_imbalanced"][key][column] = ranked_ap(_ranked(d_neg, d_pos[:n_some]), n_some, ap)
    scores = {
        name: _level_scores({key: KindScores(**per_level[key]) for key in LEVEL_KEYS})
        for name, per_level in tables.items()
    }
    return VerificationScores(
        **scores,
        balanced=_mean_of(scores["intra_balanced"], scores["inter_balanced"]),
        imbalanced=_mean_of(scores["intra_imbalanced"], scores["inter_imbalanced"]),
    )


def sequence_matching_ap(ref: np.ndarray, target: np.ndarray, convention: str = "trapezoid") -> float:
    """:func:`~facemetric.eval.patches.metrics.matching_ap` computed in chunks (no N x N matrix)."""
    nearest, dist = np.empty(len(ref), np.int64), np.empty(len(ref))
    for s in range(0, len(ref), CHUNK):
        d2 = squared(ref[s : s + CHUNK], target)
        nearest[s : s + CHUNK] = np.argmin(d2, axis=1)
        dist[s : s + CHUNK] = d2[np.arange(len(d2)), nearest[s : s + CHUNK]]
    correct = nearest == np.arange(len(ref))
    return ranked_ap(correct[np.argsort(dist, kind="stable")], len(ref), convention)


def _columns(values: np.ndarray, kinds: np.ndarray) -> KindScores:
    """The mean of ``values`` over all of them and over each kind; None where there are none."""

    def mean(mask: np.ndarray) -> float | None:
        return float(values[mask].mean()) if mask.any() else None

    return KindScores(all=mean(np.ones(len(values), bool)), illum=mean(kinds == "illum"), view=mean(kinds == "view"))


def matching_scores(desc: np.ndarray, index: PatchIndex, ap: str) -> tuple[LevelScores, int]:
    """Matching mAP per level and column (mean over each sequence's five targets, then over sequences), and the
    number of (sequence, target) pairs matched."""
    per_level = {}
    kinds = index.kind[index.start]
    for key in LEVEL_KEYS:
        rows = index.level_rows(key)
        aps = np.empty(len(index.names))
        for s, (start, size) in enumerate(zip(index.start, index.size)):
            block = rows[start : start + size]
            ref = desc[block[:, 0]].astype(np.float64)
            targets = [desc[block[:, k]].astype(np.float64) for k in range(1, 6)]
            aps[s] = np.mean([sequence_matching_ap(ref, t, ap) for t in targets])
        per_level[key] = _columns(aps, kinds)
    return _level_scores(per_level), 5 * len(index.names) * len(LEVEL_KEYS)


def retrieval_scores(
    desc: np.ndarray,
    index: PatchIndex,
    lists: Lists,
    ap: str,
    distractor_image: str,
    same_sequence: bool,
    rng: np.random.Generator,
) -> tuple[LevelScores, dict[int, LevelScores]]:
    """Retrieval mAP per level and column over the whole distractor list, and per pool size."""
    cutoffs = [k - 5 for k in POOL_SIZES]
    cells: dict[int, dict[str, dict[str, float | None]]] = {
        k: {key: {} for key in LEVEL_KEYS} for k in (*POOL_SIZES, 0)
    }
    for column in COLUMNS:
        own = lists[column]
        image = None if own is None else rng.integers(1, 6, len(own.distractors))
        for key in LEVEL_KEYS:
            if own is None or not len(own.queries):
                for k in cells:
                    cells[k][key][column] = None
                continue
            rows = index.level_rows(key)
            q, pool = own.queries, own.distractors
            x = desc[rows[pool, 0 if distractor_image == "reference" else image]].astype(np.float64)
            # a distractor of the query's own group (sequence; point with same_sequence) is left out of its ranking
            group = np.arange(len(index)) if same_sequence else index.sequence
            aps = query_aps(
                desc[rows[q, 0]].astype(np.float64),
                desc[rows[q, 1:]].astype(np.float64),
                x,
                group[q],
                group[pool],
                cutoffs,
                ap,
            ).mean(0)
            for k, value in zip((*POOL_SIZES, 0), aps):
                cells[k][key][column] = float(value)
    tables = {k: _level_scores({key: KindScores(**cells[k][key]) for key in LEVEL_KEYS}) for k in cells}
    return tables.pop(0), tables


def flat_points(patches: PatchSet, index: PatchIndex, min_std: float) -> np.ndarray:
    """Points whose reference patch has a grey-level standard deviation not above ``min_std`` (the benchmark keeps
    ``std > 10``, measured on the 65 px patch: give the patches at 65 px, or pass ``flat`` to the evaluation)."""
    flat = np.zeros(len(index), bool)
    for s in range(0, len(index), CHUNK * 8):
        ref = np.asarray(patches.images[index.rows[s : s + CHUNK * 8, 0]], np.float64)
        flat[s : s + CHUNK * 8] = ref.reshape(len(ref), -1).std(1) <= min_std
    return flat


def draw_lists(
    index: PatchIndex, flat: np.ndarray, rng: np.random.Generator, pairs: int, queries: int, distractors: int
) -> Lists:
    """Lists of every column drawn over its own sequences (all, illum, view); None for a column without any."""
    seq_kind = index.kind[index.start]
    groups = {"all": np.ones(len(index.names), bool), "illum": seq_kind == "illum", "view": seq_kind == "view"}
    out: Lists = {}
    for column, chosen in groups.items():
        sequences = np.flatnonzero(chosen)
        out[column] = (
            draw_task_lists(index, sequences, flat, rng, pairs, queries, distractors) if len(sequences) else None
        )
    return out


def evaluate_patch_tasks(
    descriptors: np.ndarray,
    patches: PatchSet,
    *,
    seed: int = 0,
    pairs: int = 100_000,
    imbalance: int = 5,
    max_queries: int = 5000,
    distractors: int = 20_000,
    min_std: float = 10.0,
    flat: np.ndarray | None = None,
    lists: Lists | None = None,
    lists_source: str = "drawn",
    ap: str = "trapezoid",
    balanced: str = "auc",
    distractor_image: str = "reference",
    same_sequence_distractors: bool = False,
    progress: Callable[[str], None] | None = None,
) -> PatchTaskResults:
    """HPatches verification, matching and retrieval of ``descriptors`` (row k describes patch k of ``patches``).

    ``lists`` gives each column's lists (keys all, illum, view; None: no figure); without it they are drawn:
    ``pairs`` positives (and as many negatives of each kind), up to ``max_queries`` queries and ``distractors``
    distractors, among points not ``flat`` (default: reference patch std <= ``min_std`` in ``patches``).
    ``ap`` (trapezoid, step), ``balanced`` (auc, ap), ``distractor_image`` (reference, target) and
    ``same_sequence_distractors`` choose the conventions (see the module docstring); ``progress`` is told each task.
    """
    desc = np.asarray(descriptors)
    if desc.ndim != 2 or len(desc) != len(patches):
        raise PatchProtocolError(f"descriptors {desc.shape} do not fit {len(patches)} patches: give (N, D), one a row")
    if imbalance < 1 or pairs < 1 or max_queries < 1 or distractors < 0:
        raise PatchProtocolError("imbalance, pairs and max_queries must be positive, distractors >= 0")
    check_convention(ap)
    if balanced not in ("auc", "ap") or distractor_image not in ("reference", "target"):
        raise PatchProtocolError(
            f"balanced must be auc or ap, got {balanced!r}; distractor_image reference or target, got "
            f"{distractor_image!r}"
        )
    say = progress or (lambda _: None)
    index = PatchIndex.of(patches)
    rng = np.random.default_rng(seed)
    flat = flat_points(patches, index, min_std) if flat is None else np.asarray(flat, bool)
    if len(flat) != len(index):
        raise PatchProtocolError(f"flat has {len(flat)} entries for {len(index)} points: give one per point")
    if lists is None:
        lists = draw_lists(index, flat, rng, pairs, max_queries, distractors)
    missing = [c for c in COLUMNS if c not in lists]
    if missing or lists["all"] is None:
        raise PatchProtocolError("lists must give columns all, illum and view (None where absent), 'all' not None")
    say("verification")
    verification = verification_scores(desc, index, lists, imbalance, ap, balanced)
    say("matching")
    matching, matched = matching_scores(desc, index, ap)
    say("retrieval")
    retrieval, pools = retrieval_scores(desc, index, lists, ap, distractor_image, same_sequence_distractors, rng)
    kinds = index.kind[index.start]
    main = lists["all"]
    counts = PatchCounts(
        sequences=len(index.names),
        illum_sequences=int((kinds == "illum").sum()),
        view_sequences=int((kinds == "view").sum()),
        points=len(index),
        patches=len(patches),
        descriptor_dim=int(desc.shape[1]),
        verification_positives=len(main.positives),
        verification_negatives_intra=len(main.intra),
        verification_negatives_inter=len(main.inter),
        matching_pairs=matched,
        retrieval_queries=len(main.queries),
        retrieval_distractors=len(main.distractors),
        retrieval_flat_points=int(flat.sum()),
    )
    settings = PatchSettings(
        seed=seed,
        lists=lists_source,
        pairs=pairs,
        imbalance=imbalance,
        max_queries=max_queries,
        distractors=distractors,
        min_std=min_std,
        ap=ap,
        balanced=balanced,
        distractor_image=distractor_image,
        same_sequence_distractors=same_sequence_distractors,
    )
    return PatchTaskResults(
        verification=verification,
        matching=matching,
        retrieval=retrieval,
        retrieval_pools=pools,
        counts=counts,
        settings=settings,
    )
