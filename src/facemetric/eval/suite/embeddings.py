"""The evaluation suite on one set of embedded images: verification, identification, retrieval.

:func:`evaluate_embeddings` takes the embeddings of a set of images with their paths and
identities, plus which protocols to run on them (pairs of item indices, an open-set subset per
item, retrieval over all items), and returns an :class:`EvalResult`: the JSON summary and the
arrays a report needs (pair scores, the worst errors' crops, a sample of embeddings, the
open-set decisions). Each task's figures come from its own package (``facemetric.eval.verification``,
``identification``, ``retrieval``); :func:`facemetric.eval.suite.folder.write_eval_dir` writes the result to
a folder.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from facemetric.core.matching import UNKNOWN
from facemetric.eval.identification.closed_set import cmc
from facemetric.eval.identification.open_set import decide, open_set_report
from facemetric.eval.identification.result import IdentificationResult
from facemetric.eval.identification.search import top_matches
from facemetric.eval.primitives import cosine_scores
from facemetric.eval.retrieval.metrics import retrieval_metrics
from facemetric.eval.suite.document import EvalSummary
from facemetric.eval.verification.metrics import curves, far_calibration, verification_report
from facemetric.eval.verification.result import ErrorCounts, OperatingThreshold, VerificationResult

FARS = (1e-3, 1e-2, 1e-1)
REJECTED_SCORE = -1.0  # the score of a pair with a photo turned away for want of a face: the lowest cosine


@dataclass
class PairsInput:
    """Verification pairs as item indices; ``fold`` None draws stratified folds."""

    i: np.ndarray
    j: np.ndarray
    same: np.ndarray
    fold: np.ndarray | None
    source: str


@dataclass
class EvalResult:
    """What one evaluation produced (see :mod:`facemetric.eval.suite.folder` for the files)."""

    summary: EvalSummary
    scores: dict[str, np.ndarray] | None = None
    errors: dict[str, np.ndarray] | None = None
    embeddings: dict[str, np.ndarray] | None = None
    decisions: tuple[list[str], list[str]] | None = None
    notes: list[str] = field(default_factory=list)
    # one record per photo a detector cut (its path, then the Detection's fields: box, landmarks, pose ...)
    detections: list[dict] | None = None


def operating_threshold(fold_thresholds: Sequence[float]) -> OperatingThreshold:
    """The threshold a report's histograms and error gallery use: the median k-fold threshold
    (each chosen on training folds), so it is not fitted to all the pairs it is shown on."""
    return OperatingThreshold(
        value=float(np.median(fold_thresholds)),
        rule=f"median of the {len(fold_thresholds)} k-fold thresholds (each chosen on the other folds)",
    )


def worst_errors(scores: np.ndarray, same: np.ndarray, threshold: float, per_kind: int = 8) -> dict[str, np.ndarray]:
    """Indices of the worst false accepts (highest impostor scores >= threshold) and false rejects
    (lowest genuine scores < threshold), at most ``per_kind`` each, worst first."""
    fa = np.flatnonzero((same == 0) & (scores >= threshold))
    fr = np.flatnonzero((same == 1) & (scores < threshold))
    fa = fa[np.argsort(-scores[fa], kind="stable")][:per_kind]
    fr = fr[np.argsort(scores[fr], kind="stable")][:per_kind]
    return {"false_accept": fa, "false_reject": fr}


def _verification(
    emb: np.ndarray,
    images: Any,
    paths: list[str],
    pairs: PairsInput,
    fars: Sequence[float],
    rejected: np.ndarray | None = None,
) -> tuple[VerificationResult, dict[str, np.ndarray], dict[str, np.ndarray]]:
    scores = cosine_scores(emb, pairs.i, pairs.j)
    if rejected is not None:  # a pair with a photo turned away is a non-match: the lowest possible score
        scores[rejected[pairs.i] | rejected[pairs.j]] = REJECTED_SCORE
    same = np.asarray(pairs.same, dtype=np.int8)
    metrics = verification_report(scores, same, folds=pairs.fold)
    threshold = operating_threshold(metrics.fold_thresholds)
    t = threshold.value
    worst = worst_errors(scores, same, t)
    report = VerificationResult(
        **dict(metrics),
        source=pairs.source,
        threshold=threshold,
        curves=curves(scores, same),
        far_calibration=far_calibration(scores, same, fars, folds=pairs.fold),
        errors=ErrorCounts(
            false_accepts=int(np.sum((same == 0) & (scores >= t))),
            false_rejects=int(np.sum((same == 1) & (scores < t))),
        ),
    )
    p1 = np.array([paths[k] for k in pairs.i])
    p2 = np.array([paths[k] for k in pairs.j])
    fold = pairs.fold if pairs.fold is not None else np.full(len(scores), -1, np.int64)
    score_arrays: dict[str, np.ndarray] = {
        "scores": scores.astype(np.float32),
        "same": same,
        "fold": fold,
        "path1": p1,
        "path2": p2,
    }
    chosen = np.concatenate([worst["false_accept"], worst["false_reject"]]).astype(np.int64)
    kinds = ["false_accept"] * len(worst["false_accept"]) + ["false_reject"] * len(worst["false_reject"])
    shape = tuple(np.asarray(images[0:1]).shape[1:]) if len(paths) else (0, 0, 1)
    errors: dict[str, np.ndarray] = {
        "kind": np.array(kinds, dtype=str),
        "score": scores[chosen].astype(np.float32),
        "path1": p1[chosen],
        "path2": p2[chosen],
        "image1": np.stack([images[int(pairs.i[c])] for c in chosen])
        if len(chosen)
        else np.zeros((0, *shape), np.uint8),
        "image2": np.stack([images[int(pairs.j[c])] for c in chosen])
        if len(chosen)
        else np.zeros((0, *shape), np.uint8),
    }
    return report, score_arrays, errors


def _identification(
    emb: np.ndarray,
    identities: np.ndarray,
    subset: np.ndarray,
    paths: list[str],
    far: float,
    fars: Sequence[float],
    rejected: np.ndarray | None = None,
) -> tuple[IdentificationResult, tuple[list[str], list[str]]]:
    turned_away = rejected if rejected is not None else np.zeros(len(subset), bool)
    g = (subset == "gallery") & ~turned_away  # a gallery photo without a face is not enrolled
    val = np.isin(subset, ("val_known", "val_unknown")) & ~turned_away  # nor used for calibration
    test = np.isin(subset, ("test_known", "test_unknown"))  # a test probe without a face is rejected
    open_set = open_set_report(
        emb[g],
        identities[g],
        emb[val],
        identities[val],
        emb[test],
        identities[test],
        target_far=far,
        fars=fars,
        test_rejected=turned_away[test] if rejected is not None else None,
    )
    known = subset == "test_known"
    if rejected is not None:  # a person whose every gallery photo was turned away is not enrolled: not in CMC
        known &= np.isin(identities, identities[g])
    closed = cmc(
        emb[known],
        identities[known],
        emb[g],
        identities[g],
        rejected=turned_away[known] if rejected is not None else None,
    ).summary()
    searched = test & ~turned_away
    decisions = [UNKNOWN] * int(test.sum())
    if searched.any():
        top_labels, top_scores = top_matches(emb[searched], emb[g], identities[g])
        answers = iter(decide(top_labels, top_scores, open_set.threshold))
        decisions = [UNKNOWN if turned_away[k] else next(answers) for k in np.flatnonzero(test)]
    probe_ids = [paths[k] for k in np.flatnonzero(test)]
    result = IdentificationResult(closed_set=closed, open_set=open_set, decisions_csv="decisions.csv")
    return result, (probe_ids, decisions)


def _embedding_sample(
    emb: np.ndarray, identities: np.ndarray, limit: int = 3000, seed: int = 0
) -> dict[str, np.ndarray]:
    keep = np.arange(len(emb))
    if len(keep) > limit:
        keep = np.sort(np.random.default_rng(seed).choice(len(emb), size=limit, replace=False))
    return {"embeddings": emb[keep].astype(np.float32), "identities": identities[keep].astype(str)}


def evaluate_embeddings(
    emb: np.ndarray,
    images: Any,
    paths: list[str],
    identities: Sequence[str],
    *,
    pairs: PairsInput | None = None,
    open_set: np.ndarray | None = None,
    retrieval: bool = False,
    far: float = 1e-2,
    fars: Sequence[float] = FARS,
    rejected: np.ndarray | None = None,
) -> EvalResult:
    """Run the asked protocols on embedded items (``images`` only feeds the error gallery).

    ``rejected`` flags items turned away for want of a face (``facemetric eval --no-face reject``;
    their rows of ``emb`` are not used), as a deployed system that refuses such photos: a pair with
    one is scored :data:`REJECTED_SCORE` (-1, a non-match at every threshold above it); an open-set
    gallery photo is not enrolled (a person left without one is unknown to the system, and out of
    the CMC), a validation probe is left out of calibration, a test probe is rejected (decision
    ``no correspondence``: a known one is not identified, an unknown one raises no false alarm);
    retrieval and the embedding sample leave them out.
    """
    names = np.asarray(identities).astype(str)
    if pairs is None and open_set is None and not retrieval:
        raise ValueError("nothing to evaluate: give pairs, an open-set split, or retrieval=True")
    if rejected is not None:
        rejected = np.asarray(rejected, dtype=bool)
        if rejected.shape != (len(names),):
            raise ValueError(f"rejected must give one flag per item ({len(names)}), got shape {rejected.shape}")
        if not rejected.any():
            rejected = None
    kept = np.flatnonzero(~rejected) if rejected is not None else slice(None)
    result = EvalResult(summary=EvalSummary(), embeddings=_embedding_sample(emb[kept], names[kept]))
    if pairs is not None:
        result.summary.verification, result.scores, result.errors = _verification(
            emb, images, paths, pairs, fars, rejected
        )
    if open_set is not None:
        if UNKNOWN in set(names.tolist()):
            raise ValueError(f"an identity is named {UNKNOWN!r}, the open-set decision for unknown people; rename it")
        result.summary.identification, result.decisions = _identification(
            emb, names, np.asarray(open_set), paths, far, fars, rejected
        )
    if retrieval:
        result.summary.retrieval = retrieval_metrics(emb[kept], names[kept])
    return result
