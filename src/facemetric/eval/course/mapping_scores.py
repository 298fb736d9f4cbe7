"""The known-or-nobody mapping's pure functions on scores: accuracy at a threshold, the threshold a rule
picks on dev, and the cross-validated accuracy that says what to expect on unseen photos.

Each probe has its top score against the enrolled identities (-inf for a photo that could not be
embedded), whether that top identity is its own (``top_correct``) and whether the person is enrolled at
all (``is_known``). A probe is accepted, mapped to its top identity, when its top score reaches the
threshold; otherwise it is answered with the no-match label. The threshold is chosen on dev
(:func:`best_accuracy_threshold`, or :func:`fmr_threshold` for a stated false-match rate), so dev
accuracy at it is optimistic: :func:`cross_validated_accuracy` says what to expect on unseen photos.
They are checked on hand-made scores in the tests.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from facemetric.eval.primitives import calibrate_threshold

RULES = ("accuracy", "fmr")
COSINE_MIN = -1.0  # the lowest score a pair of unit embeddings can have
COSINE_MAX = 1.0


def _as_scores(top_scores: ArrayLike, top_correct: ArrayLike, is_known: ArrayLike) -> tuple[np.ndarray, ...]:
    """Check and convert: scores float64 (-inf = a probe not scored), flags boolean, equal lengths."""
    s = np.asarray(top_scores, dtype=np.float64)
    c = np.asarray(top_correct, dtype=bool)
    k = np.asarray(is_known, dtype=bool)
    if s.ndim != 1 or c.shape != s.shape or k.shape != s.shape:
        raise ValueError(
            f"top_scores, top_correct and is_known must be 1-D of one length, got {s.shape}, {c.shape}, {k.shape}"
        )
    if np.isnan(s).any() or (s == np.inf).any():
        raise ValueError("top_scores holds NaN or +inf; use -inf only for a probe that could not be scored")
    return s, c, k


def mapping_correct(top_scores: ArrayLike, top_correct: ArrayLike, is_known: ArrayLike, threshold: float) -> np.ndarray:
    """Whether each probe is mapped correctly at ``threshold``.

    A probe is accepted (mapped to its top identity) when its top score >= ``threshold``; it is then
    right when it is a known person whose top identity is theirs (``top_correct``). A rejected probe
    (mapped to nobody) is right when it is not a known person. A score of -inf marks a probe that
    could not be embedded: always rejected.
    """
    s, c, k = _as_scores(top_scores, top_correct, is_known)
    return np.where(s >= threshold, k & c, ~k)


def mapping_accuracy(top_scores: ArrayLike, top_correct: ArrayLike, is_known: ArrayLike, threshold: float) -> float:
    """Fraction of probes mapped correctly at ``threshold`` (see :func:`mapping_correct`)."""
    right = mapping_correct(top_scores, top_correct, is_known, threshold)
    if not len(right):
        raise ValueError("no probe to measure accuracy on")
    return float(right.mean())


def _between(low: float, high: float) -> float:
    """A threshold ``t`` with ``low < t <= high`` (-inf/+inf for an open end): the midpoint of a finite
    interval, halfway to the cosine bound (-1 / 1) below the lowest or above the highest score."""
    if math.isinf(low) and math.isinf(high):
        return 0.0
    if math.isinf(low):
        return (min(COSINE_MIN, high) + high) / 2  # <= high: accepts every score >= high
    if math.isinf(high):
        t = (low + max(COSINE_MAX, low)) / 2
        return t if t > low else float(np.nextafter(low, np.inf))
    t = (low + high) / 2
    return t if t > low else high  # two adjacent floats: the midpoint rounds onto ``low``


def best_accuracy_threshold(top_scores: ArrayLike, top_correct: ArrayLike, is_known: ArrayLike) -> tuple[float, float]:
    """The threshold maximising mapping accuracy, and that accuracy: ``(threshold, accuracy)``.

    Every distinct decision is tried: accept nobody, everybody, or everybody scoring at least
    each distinct top score, i.e. the thresholds between consecutive distinct scores (and below
    the lowest, above the highest). The scores are sorted once and the accuracy of every cut
    comes from running sums, so the search is O(n log n).

    Ties: cuts that reach the best accuracy form runs of neighbouring cuts; the lowest run wins
    (fewer people turned away), and the threshold is the midpoint of that run's whole score
    interval, the value farthest from a score that would change a decision. Below the lowest
    score the midpoint is taken with -1 (the lowest cosine), above the highest with 1. Probes
    scored -inf (not embedded) are rejected at any threshold; with no scored probe at all every
    threshold is equivalent and 0.0 is returned.
    """
    s, c, k = _as_scores(top_scores, top_correct, is_known)
    if not len(s):
        raise ValueError("no probe to calibrate a threshold on")
    scored = np.isfinite(s)
    always_right = int(np.sum(~k & ~scored))  # not embedded: rejected, right for a person nobody knows
    values, group = np.unique(s[scored], return_inverse=True)  # ascending distinct scores
    accept_right = np.bincount(group, weights=(k & c)[scored], minlength=len(values))
    reject_right = np.bincount(group, weights=(~k)[scored], minlength=len(values))
    # cut j (0..m) accepts the groups j..m-1 and rejects 0..j-1
    rejected_right = np.concatenate([[0.0], np.cumsum(reject_right)])
    accepted_right = np.concatenate([np.cumsum(accept_right[::-1])[::-1], [0.0]])
    right = rejected_right + accepted_right + always_right
    best = right.max()
    j1 = int(np.argmax(right >= best - 0.5))  # counts are whole numbers
    j2 = j1
    while j2 + 1 < len(right) and right[j2 + 1] >= best - 0.5:
        j2 += 1
    low = float(values[j1 - 1]) if j1 > 0 else -math.inf  # cut j's thresholds: (values[j-1], values[j]]
    high = float(values[j2]) if j2 < len(values) else math.inf
    return _between(low, high), float(best / len(s))


def fmr_threshold(no_match_scores: ArrayLike, target_fmr: float) -> float:
    """The lowest threshold (among the scores) accepting at most ``target_fmr`` of the no-match probes.

    With n no-match probes at most k = floor(target_fmr * n) may score >= the threshold; it is the
    k-th highest score, moved up past ties, or the next float above the highest with k = 0
    (:func:`~facemetric.eval.primitives.calibrate_threshold`'s rule). Scores of -inf (probes
    not embedded) count in n and are never accepted; with none scored the threshold is -1.
    """
    s = np.asarray(no_match_scores, dtype=np.float64)
    if s.ndim != 1 or not len(s):
        raise ValueError(
            "the fmr rule needs the top scores of no-match probes (people not enrolled), got none: "
            "use rule='accuracy' or a dev set with no-match photos"
        )
    if not 0.0 <= float(target_fmr) <= 1.0:
        raise ValueError(f"target_fmr must be a rate in [0, 1], got {target_fmr!r}")
    scored = s[np.isfinite(s)]
    if not len(scored):
        return COSINE_MIN
    allowed = math.floor(float(target_fmr) * len(s) + 1e-9)
    far = min(1.0, allowed / len(scored))  # the same count k, as a rate of the scored probes
    return calibrate_threshold(scored, far, source="dev no-match probes").value


def calibrate(
    top_scores: ArrayLike,
    top_correct: ArrayLike,
    is_known: ArrayLike,
    rule: str = "accuracy",
    target_fmr: float = 0.01,
) -> float:
    """The threshold ``rule`` picks on these probes: ``"accuracy"`` (:func:`best_accuracy_threshold`)
    or ``"fmr"`` (:func:`fmr_threshold` on the no-match probes)."""
    s, c, k = _as_scores(top_scores, top_correct, is_known)
    if rule == "accuracy":
        return best_accuracy_threshold(s, c, k)[0]
    if rule == "fmr":
        return fmr_threshold(s[~k], target_fmr)
    raise ValueError(f"rule must be one of {RULES}, got {rule!r}")


def fold_assignment(is_known: ArrayLike, folds: int, seed: int = 0) -> np.ndarray:
    """Fold number (0..folds-1) of each probe, stratified by known vs no-match.

    The known probes in a seeded random order, then the no-match probes in theirs, are dealt to
    the folds in turn, so each fold gets its share of both; with ``folds`` = the number of probes
    it is leave-one-out, whatever the seed.
    """
    k = np.asarray(is_known, dtype=bool)
    if folds < 2 or folds > len(k):
        raise ValueError(f"folds must be between 2 and the number of probes ({len(k)}), got {folds}")
    rng = np.random.default_rng(seed)
    order = np.concatenate([rng.permutation(np.flatnonzero(k)), rng.permutation(np.flatnonzero(~k))])
    fold = np.empty(len(k), dtype=np.int64)
    fold[order] = np.arange(len(k)) % folds
    return fold


def cross_validated_accuracy(
    top_scores: ArrayLike,
    top_correct: ArrayLike,
    is_known: ArrayLike,
    folds: int = 5,
    seed: int = 0,
    rule: str = "accuracy",
    target_fmr: float = 0.01,
) -> float:
    """Mapping accuracy with the threshold chosen on other probes: k-fold, pooled.

    Each fold's probes are mapped at the threshold :func:`calibrate` picks on the other folds;
    the result is the fraction of all probes mapped correctly that way. It estimates the accuracy
    on unseen photos, which the accuracy at a threshold chosen on the same probes overstates.
    Folds come from :func:`fold_assignment` (stratified, seeded).
    """
    s, c, k = _as_scores(top_scores, top_correct, is_known)
    fold = fold_assignment(k, folds, seed)
    right = np.zeros(len(s), dtype=bool)
    for f in range(folds):
        held = fold == f
        t = calibrate(s[~held], c[~held], k[~held], rule, target_fmr)
        right[held] = mapping_correct(s[held], c[held], k[held], t)
    return float(right.mean())


def decide_labels(top_labels: Sequence[str], top_scores: ArrayLike, threshold: float, no_match_label: str) -> list[str]:
    """Each probe's answer: its top identity when its score >= ``threshold``, else ``no_match_label``
    (always for a score of -inf: a probe not embedded)."""
    scores = np.asarray(top_scores, dtype=np.float64)
    return [str(label) if s >= threshold else no_match_label for label, s in zip(top_labels, scores.tolist())]
