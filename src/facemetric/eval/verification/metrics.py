"""Face-verification metrics: ROC/EER/TAR@FAR and LFW-style k-fold accuracy.

Every function here is a pure function of a score array and a label array:
``scores`` are similarities (higher = more likely the same person) and
``labels`` are 1 for same-person pairs and 0 for different-person pairs.
What other modules read is typed (:mod:`facemetric.eval.verification.result`):
:func:`verification_report`, :func:`curves` and :func:`far_calibration`; the
building blocks :func:`roc_metrics` and :func:`kfold_accuracy` return plain
Python numbers in a dict.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.metrics import det_curve, roc_auc_score, roc_curve

from facemetric.eval.primitives import calibrate_threshold
from facemetric.eval.verification.result import Curves, FarCalibration, VerificationMetrics


def _check_inputs(
    scores: ArrayLike, labels: ArrayLike, *, need_both_classes: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(scores, labels)`` as 1-D float / int arrays, or raise ValueError."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels)
    if s.ndim != 1 or y.ndim != 1:
        raise ValueError(f"scores and labels must be 1-D, got shapes {s.shape} and {y.shape}")
    if len(s) != len(y):
        raise ValueError(f"scores and labels must have the same length, got {len(s)} scores and {len(y)} labels")
    if len(s) == 0:
        raise ValueError("scores and labels are empty")
    if not np.all(np.isfinite(s)):
        raise ValueError(f"scores contain {int(np.sum(~np.isfinite(s)))} NaN/inf values")
    bad = ~np.isin(y, (0, 1))
    if np.any(bad):
        raise ValueError(
            "labels must be 0 (different person) or 1 (same person), found "
            f"{sorted(set(np.asarray(y[bad]).tolist()))[:5]}"
        )
    y = y.astype(np.int64)
    if need_both_classes:
        n_pos = int(y.sum())
        if n_pos == 0 or n_pos == len(y):
            raise ValueError(
                f"labels need both classes (same and different pairs), got {n_pos} same and {len(y) - n_pos} different"
            )
    return s, y


def _far_key(far: float) -> str:
    """Format a FAR as the dictionary key used in results, e.g. 1e-3 -> '1e-03'."""
    return f"{far:.0e}"


def roc_metrics(scores: ArrayLike, labels: ArrayLike, fars: Sequence[float] = (1e-3, 1e-2)) -> dict[str, Any]:
    """ROC summary of a verification run: AUC, EER and TAR at fixed FARs.

    ``eer`` is the equal error rate: the ROC operating points are joined by
    straight lines and the EER is where FPR equals FNR = 1 - TPR on that
    polyline. ``eer_threshold`` is the score threshold interpolated the same
    way between the two operating points that bracket the crossing (when the
    upper point is sklearn's "accept nothing" point at +inf, the lower point's
    threshold is used).

    ``tar_at_far[key]`` (key ``f"{far:.0e}"``, e.g. ``"1e-03"``) is the TPR of
    the operating point with the largest TPR whose FPR <= far, i.e. at most
    ``floor(far * num_negative)`` false accepts. With few negatives this is
    coarse: with 1100 negatives FAR=1e-3 allows exactly one false accept and
    with fewer than 1000 negatives it allows none, so the value is set by the
    single highest-scoring negative pair(s).
    """
    s, y = _check_inputs(scores, labels)
    num_pos = int(y.sum())
    num_neg = len(y) - num_pos
    fpr, tpr, thr = roc_curve(y, s, drop_intermediate=False)

    fnr = 1.0 - tpr
    diff = fpr - fnr  # -1 at the "accept nothing" point, +1 at "accept all"
    i = int(np.argmax(diff >= 0))  # first point with FPR >= FNR; i >= 1
    d0, d1 = diff[i - 1], diff[i]
    t = 1.0 if d1 == 0 else d0 / (d0 - d1)
    eer = fpr[i - 1] + t * (fpr[i] - fpr[i - 1])
    upper_thr = thr[i - 1] if np.isfinite(thr[i - 1]) else thr[i]
    eer_threshold = upper_thr + t * (thr[i] - upper_thr)

    false_accepts = np.rint(fpr * num_neg)
    tar_at_far = {}
    for far in fars:
        allowed = false_accepts <= far * num_neg + 1e-9
        tar_at_far[_far_key(far)] = float(tpr[allowed].max())

    return {
        "auc": float(roc_auc_score(y, s)),
        "eer": float(eer),
        "eer_threshold": float(eer_threshold),
        "tar_at_far": tar_at_far,
        "num_positive": num_pos,
        "num_negative": num_neg,
    }


def curves(scores: ArrayLike, labels: ArrayLike, max_points: int | None = 2000) -> Curves:
    """ROC (FPR, TPR, threshold) and DET (FPR, FNR) operating points, for plots and reports.

    Every distinct score is an operating point (sklearn's ``roc_curve`` without dropping any,
    and ``det_curve``); with ``max_points`` the points are thinned evenly, always keeping both
    ends, so a report stays small. The "accept nothing" point's infinite threshold is reported
    as the largest score.
    """
    s, y = _check_inputs(scores, labels)
    fpr, tpr, thr = roc_curve(y, s, drop_intermediate=False)
    thr = np.where(np.isfinite(thr), thr, s.max())
    det_fpr, det_fnr, _ = det_curve(y, s)
    roc_keep, det_keep = np.arange(len(fpr)), np.arange(len(det_fpr))
    if max_points and len(fpr) > max_points:
        roc_keep = np.unique(np.linspace(0, len(fpr) - 1, max_points).round().astype(int))
    if max_points and len(det_fpr) > max_points:
        det_keep = np.unique(np.linspace(0, len(det_fpr) - 1, max_points).round().astype(int))
    return Curves(
        roc_fpr=fpr[roc_keep].tolist(),
        roc_tpr=tpr[roc_keep].tolist(),
        roc_threshold=thr[roc_keep].tolist(),
        det_fpr=det_fpr[det_keep].tolist(),
        det_fnr=det_fnr[det_keep].tolist(),
    )


def best_threshold(scores: ArrayLike, labels: ArrayLike) -> float:
    """Threshold with the highest accuracy when predicting "same" for score >= threshold.

    Candidates are the smallest score (accept all), the midpoints between
    consecutive distinct scores, and the next float above the largest score
    (reject all). Accuracy for every candidate comes from one sort plus
    cumulative sums, so this is O(n log n). Ties go to the smallest threshold.
    """
    s, y = _check_inputs(scores, labels, need_both_classes=False)
    uniq, inverse = np.unique(s, return_inverse=True)
    pos_per_value = np.bincount(inverse, weights=y, minlength=len(uniq))
    neg_per_value = np.bincount(inverse, weights=1 - y, minlength=len(uniq))
    # Candidate j rejects the j smallest distinct values (j = 0 .. len(uniq)).
    rejected_pos = np.concatenate(([0.0], np.cumsum(pos_per_value)))
    rejected_neg = np.concatenate(([0.0], np.cumsum(neg_per_value)))
    correct = rejected_neg + (y.sum() - rejected_pos)
    candidates = np.concatenate(([uniq[0]], (uniq[:-1] + uniq[1:]) / 2.0, [np.nextafter(uniq[-1], np.inf)]))
    return float(candidates[int(np.argmax(correct))])


def _stratified_folds(labels: np.ndarray, n_folds: int, seed: int) -> np.ndarray:
    """Fold id per pair: each class is shuffled with ``seed`` and dealt round-robin.

    The negatives continue the round-robin where the positives stopped, so
    fold sizes differ by at most one overall and per class.
    """
    rng = np.random.default_rng(seed)
    folds = np.empty(len(labels), dtype=np.int64)
    pos = rng.permutation(np.flatnonzero(labels == 1))
    neg = rng.permutation(np.flatnonzero(labels == 0))
    folds[pos] = np.arange(len(pos)) % n_folds
    folds[neg] = (np.arange(len(neg)) + len(pos)) % n_folds
    return folds


def kfold_accuracy(
    scores: ArrayLike,
    labels: ArrayLike,
    folds: ArrayLike | None = None,
    n_folds: int = 10,
    seed: int = 0,
) -> dict[str, Any]:
    """LFW-protocol accuracy: per fold, pick the threshold on the other folds, test on it.

    ``folds`` gives a fold id per pair (e.g. from an LFW pairs file with a
    ``folds N`` header); without it, ``n_folds`` stratified folds are drawn
    deterministically from ``seed``. Returns the mean and (population) std of
    the held-out accuracies, the per-fold accuracies and thresholds in
    ascending fold-id order, and whether the folds came from the caller.
    """
    s, y = _check_inputs(scores, labels)
    if folds is None:
        if isinstance(n_folds, bool) or not isinstance(n_folds, (int, np.integer)):
            raise ValueError(f"n_folds must be an integer, got {n_folds!r}")
        if n_folds < 2:
            raise ValueError(f"need at least 2 folds, got n_folds={n_folds}")
        if n_folds > len(y):
            raise ValueError(f"n_folds={n_folds} is more than the {len(y)} pairs; every fold needs at least one pair")
        fold_ids = _stratified_folds(y, int(n_folds), seed)
    else:
        f = np.asarray(folds)
        if f.ndim != 1 or len(f) != len(y):
            raise ValueError(f"folds must give one fold id per pair: got shape {f.shape} for {len(y)} pairs")
        if not np.issubdtype(f.dtype, np.integer):
            raise ValueError(f"fold ids must be integers, got dtype {f.dtype}")
        fold_ids = f.astype(np.int64)
        if len(np.unique(fold_ids)) < 2:
            raise ValueError(f"need at least 2 folds, but all pairs are in fold {fold_ids[0]}")

    per_fold: list[float] = []
    thresholds: list[float] = []
    for fold in np.unique(fold_ids):
        test = fold_ids == fold
        threshold = best_threshold(s[~test], y[~test])
        per_fold.append(float(np.mean((s[test] >= threshold) == (y[test] == 1))))
        thresholds.append(threshold)
    return {
        "mean": float(np.mean(per_fold)),
        "std": float(np.std(per_fold)),
        "per_fold": per_fold,
        "thresholds": thresholds,
        "folds_from_file": folds is not None,
    }


def verification_report(
    scores: ArrayLike,
    labels: ArrayLike,
    folds: ArrayLike | None = None,
    n_folds: int = 10,
) -> VerificationMetrics:
    """All verification numbers for one run.

    ``accuracy``/``accuracy_std`` are the k-fold mean and std from
    :func:`kfold_accuracy` (``folds_from_file`` and ``n_folds`` say which
    folds were used), merged with everything from :func:`roc_metrics`.
    ``optimistic`` is the accuracy at the best threshold chosen on all the pairs
    scored, flagged as such: it shows how much the k-fold protocol's honesty costs.
    """
    kfold = kfold_accuracy(scores, labels, folds=folds, n_folds=n_folds)
    s, y = _check_inputs(scores, labels)
    t = best_threshold(s, y)
    return VerificationMetrics(
        accuracy=kfold["mean"],
        accuracy_std=kfold["std"],
        n_folds=len(kfold["per_fold"]),
        folds_from_file=kfold["folds_from_file"],
        per_fold=kfold["per_fold"],
        fold_thresholds=kfold["thresholds"],  # each chosen on the other folds
        **roc_metrics(scores, labels),
        # the best threshold on these very pairs: an upper bound, never a test figure
        optimistic={
            "accuracy": float(np.mean((s >= t) == (y == 1))),
            "threshold": t,
            "note": "threshold chosen on the scored pairs themselves (optimistic)",
        },
    )


def far_calibration(
    scores: ArrayLike,
    labels: ArrayLike,
    fars: Sequence[float] = (1e-3, 1e-2, 1e-1),
    folds: ArrayLike | None = None,
    n_folds: int = 10,
    seed: int = 0,
) -> dict[str, FarCalibration]:
    """The threshold for a stated false-accept rate, and whether it holds on pairs it never saw.

    For each target FAR (key ``f"{far:.0e}"``):

    * ``threshold``: calibrated on all the impostor pairs (the value to deploy): the loosest
      threshold at which at most ``floor(far * n_impostors)`` of them are accepted
      (:func:`facemetric.eval.primitives.calibrate_threshold`, ties on the strict side);
    * ``held_out_far`` / ``held_out_tar``: per fold, the threshold is calibrated on the other
      folds' impostors and the fold's pairs are scored with it; the means over folds are what the
      target FAR really delivers on new pairs (an honest check, not the calibration itself);
    * ``below_resolution``: the target is below 1 / n_impostors, too small to be measured here.

    Folds as in :func:`kfold_accuracy` (from the caller, else stratified from ``seed``).
    """
    s, y = _check_inputs(scores, labels)
    fold_ids = np.asarray(folds, dtype=np.int64) if folds is not None else _stratified_folds(y, int(n_folds), seed)
    out: dict[str, FarCalibration] = {}
    for far in fars:
        full = calibrate_threshold(s[y == 0], far, source="all impostor pairs")
        held_far, held_tar = [], []
        for fold in np.unique(fold_ids):
            test, train = fold_ids == fold, fold_ids != fold
            if not (y[train] == 0).any() or not (y[test] == 0).any() or not (y[test] == 1).any():
                continue
            t = calibrate_threshold(s[train & (y == 0)], far).value
            held_far.append(float(np.mean(s[test & (y == 0)] >= t)))
            held_tar.append(float(np.mean(s[test & (y == 1)] >= t)))
        out[_far_key(far)] = FarCalibration(
            target_far=float(far),
            threshold=full.value,
            achieved_far=full.achieved_far,
            tar=float(np.mean(s[y == 1] >= full.value)),
            held_out_far=float(np.mean(held_far)) if held_far else None,
            held_out_tar=float(np.mean(held_tar)) if held_tar else None,
            n_impostors=full.n_impostors,
            below_resolution=full.below_resolution,
        )
    return out
