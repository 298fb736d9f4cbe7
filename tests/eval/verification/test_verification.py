from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from facemetric.eval.verification.metrics import (
    best_threshold,
    kfold_accuracy,
    roc_metrics,
    verification_report,
)

# Hand-computed case, pairs sorted by descending score:
#   score  0.9 0.8 0.7 0.7 0.6 0.4
#   label    1   1   1   0   1   0        (P = 4 positives, N = 2 negatives)
# ROC points (threshold: TP, FP -> FPR, FNR):
#   0.9: 1,0 -> 0,   3/4
#   0.8: 2,0 -> 0,   1/2   FPR - FNR = -1/2
#   0.7: 3,1 -> 1/2, 1/4   FPR - FNR = +1/4   (tie: pos and neg enter together)
#   0.6: 4,1 -> 1/2, 0
#   0.4: 4,2 -> 1,   0
# EER: on the segment 0.8 -> 0.7, t = (1/2) / (1/2 + 1/4) = 2/3,
#   FPR = 0 + 2/3 * 1/2 = 1/3 and FNR = 1/2 - 2/3 * 1/4 = 1/3 -> EER = 1/3,
#   threshold = 0.8 + 2/3 * (0.7 - 0.8) = 0.7333...
# AUC: positive-beats-negative counts 0.9: 2, 0.8: 2, 0.7: 1 + 0.5 (tie), 0.6: 1
#   -> 6.5 / 8 = 0.8125.
# TAR@FAR: FAR <= 1e-3 allows 0 false accepts -> best TPR with FP = 0 is 2/4;
#   FAR <= 0.5 allows 1 false accept -> TPR 4/4.
# Best threshold (accept if score >= t), correct predictions out of 6:
#   0.4 (accept all): 4, 0.5: 5, 0.65: 4, 0.75: 4, 0.85: 3, above 0.9: 2
#   -> unique best 0.5 with accuracy 5/6.
HAND_SCORES = [0.9, 0.8, 0.7, 0.7, 0.6, 0.4]
HAND_LABELS = [1, 1, 1, 0, 1, 0]


def test_roc_metrics_hand_computed():
    m = roc_metrics(HAND_SCORES, HAND_LABELS, fars=(1e-3, 0.5))
    assert m["auc"] == pytest.approx(0.8125)
    assert m["eer"] == pytest.approx(1 / 3)
    assert m["eer_threshold"] == pytest.approx(0.8 - 0.1 * 2 / 3)
    assert m["tar_at_far"] == {"1e-03": pytest.approx(0.5), "5e-01": pytest.approx(1.0)}
    assert m["num_positive"] == 4
    assert m["num_negative"] == 2


def test_eer_exactly_at_an_operating_point():
    # desc: 1 1 0 1 0 0 -> at threshold 0.7: FPR = 1/3, FNR = 1/3 exactly.
    m = roc_metrics([0.9, 0.8, 0.7, 0.6, 0.4, 0.2], [1, 1, 0, 1, 0, 0])
    assert m["eer"] == pytest.approx(1 / 3)
    assert m["eer_threshold"] == pytest.approx(0.7)
    assert m["auc"] == pytest.approx(8 / 9)


def test_eer_when_all_scores_tie():
    # The only operating points are "accept nothing" and "accept all": EER 0.5.
    m = roc_metrics([0.3] * 4, [1, 0, 1, 0])
    assert m["eer"] == pytest.approx(0.5)
    assert m["eer_threshold"] == pytest.approx(0.3)
    assert m["auc"] == pytest.approx(0.5)


def test_auc_matches_sklearn_on_random_data():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, size=500)
    scores = rng.normal(size=500) + labels
    assert roc_metrics(scores, labels)["auc"] == pytest.approx(roc_auc_score(labels, scores))


def _brute_force_rates(scores, labels):
    """(FPR, FNR) for every threshold in the scores plus one above them all."""
    thresholds = np.append(np.unique(scores), np.inf)
    fpr = np.array([np.mean(scores[labels == 0] >= t) for t in thresholds])
    fnr = np.array([np.mean(scores[labels == 1] < t) for t in thresholds])
    return fpr, fnr


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_eer_against_brute_force_sweep(seed):
    rng = np.random.default_rng(seed)
    n = 300
    labels = (rng.random(n) < 0.3).astype(int)
    # Rounded scores create ties between positives and negatives.
    scores = np.round(rng.normal(size=n) + 1.5 * labels, 1)
    fpr, fnr = _brute_force_rates(scores, labels)
    # FPR rises and FNR falls as the threshold drops, so the crossing value
    # lies between the best "worse of the two" and the worst "better of the two".
    upper = np.min(np.maximum(fpr, fnr))
    lower = np.max(np.minimum(fpr, fnr))
    eer = roc_metrics(scores, labels)["eer"]
    assert lower - 1e-12 <= eer <= upper + 1e-12
    assert upper - lower < 0.1  # the bracket is tight enough to mean something


def test_tar_at_far_with_one_false_accept_allowed():
    # 1000 negatives in [0, 1): FAR 1e-3 allows exactly one false accept, so the
    # threshold may sit just below the highest negative (0.999).
    neg = np.arange(1000) / 1000
    pos = np.array([1.5, 0.9985, 0.9975, 0.5])
    scores = np.concatenate([pos, neg])
    labels = np.concatenate([np.ones(4, int), np.zeros(1000, int)])
    tar = roc_metrics(scores, labels, fars=(1e-3, 2e-3))["tar_at_far"]
    assert tar["1e-03"] == pytest.approx(2 / 4)  # 1.5 and 0.9985 beat 0.998
    assert tar["2e-03"] == pytest.approx(3 / 4)  # 0.9975 beats 0.997


def test_best_threshold_hand_computed():
    assert best_threshold(HAND_SCORES, HAND_LABELS) == pytest.approx(0.5)


def test_best_threshold_extremes():
    # All positives: accept everything, threshold at the smallest score.
    assert best_threshold([0.2, 0.5, 0.9], [1, 1, 1]) == pytest.approx(0.2)
    # All negatives: reject everything, threshold above the largest score.
    t = best_threshold([0.2, 0.5, 0.9], [0, 0, 0])
    assert t > 0.9 and not np.any(np.array([0.2, 0.5, 0.9]) >= t)


def test_best_threshold_matches_brute_force():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, size=200)
    scores = np.round(rng.normal(size=200) + labels, 1)
    t = best_threshold(scores, labels)
    acc = np.mean((scores >= t) == (labels == 1))
    brute = max(np.mean((scores >= c) == (labels == 1)) for c in np.append(scores, np.inf))
    assert acc == pytest.approx(brute)


def test_kfold_perfectly_separable_is_one():
    rng = np.random.default_rng(0)
    labels = np.repeat([1, 0], 300)
    scores = np.where(labels == 1, rng.uniform(0.6, 1.0, 600), rng.uniform(-1.0, 0.4, 600))
    res = kfold_accuracy(scores, labels)
    assert res["mean"] == 1.0
    assert res["std"] == 0.0
    assert res["per_fold"] == [1.0] * 10
    assert all(0.4 <= t <= 0.6 for t in res["thresholds"])
    assert res["folds_from_file"] is False


def test_kfold_random_scores_near_chance():
    rng = np.random.default_rng(0)
    labels = np.repeat([1, 0], 3000)
    scores = rng.normal(size=6000)
    assert kfold_accuracy(scores, labels)["mean"] == pytest.approx(0.5, abs=0.03)


def test_kfold_threshold_never_uses_held_out_fold():
    # Fold 0: pos 0.6 0.7, neg 0.1 0.2 -> on its own it prefers t = 0.4.
    # Fold 1: pos 0.3 0.35, neg 0.0 0.05 -> on its own it prefers t = 0.175.
    # Each fold must be scored with the OTHER fold's threshold:
    #   fold 0 with t = 0.175: 0.6 0.7 accepted, 0.1 rejected, 0.2 accepted -> 3/4
    #   fold 1 with t = 0.4:   0.0 0.05 rejected, 0.3 0.35 rejected       -> 2/4
    # A leaky implementation would score 1.0 on both.
    scores = [0.6, 0.7, 0.1, 0.2, 0.3, 0.35, 0.0, 0.05]
    labels = [1, 1, 0, 0, 1, 1, 0, 0]
    folds = [0, 0, 0, 0, 1, 1, 1, 1]
    res = kfold_accuracy(scores, labels, folds=folds)
    assert res["thresholds"] == [pytest.approx(0.175), pytest.approx(0.4)]
    assert res["per_fold"] == [pytest.approx(0.75), pytest.approx(0.5)]
    assert res["mean"] == pytest.approx(0.625)
    assert res["std"] == pytest.approx(0.125)
    assert res["folds_from_file"] is True


def test_kfold_generated_folds_are_stratified_and_deterministic():
    rng = np.random.default_rng(5)
    labels = np.array([1] * 70 + [0] * 130)
    scores = rng.normal(size=200) + labels
    a = kfold_accuracy(scores, labels, n_folds=10, seed=7)
    b = kfold_accuracy(scores, labels, n_folds=10, seed=7)
    c = kfold_accuracy(scores, labels, n_folds=10, seed=8)
    assert a == b
    assert a["per_fold"] != c["per_fold"]
    # Equal-size stratified folds: 7 positives and 13 negatives each, so every
    # per-fold accuracy is a multiple of 1/20.
    assert len(a["per_fold"]) == 10
    assert all(abs(acc * 20 - round(acc * 20)) < 1e-9 for acc in a["per_fold"])


@pytest.mark.parametrize(
    ("scores", "labels", "kwargs", "match"),
    [
        ([0.1, 0.2, 0.3], [1, 0], {}, "same length"),
        ([0.1, 0.2, 0.3, 0.4], [1, 0, 2, 0], {}, "labels must be 0"),
        ([0.1, 0.2, 0.3, 0.4], [1, 1, 1, 1], {}, "both classes"),
        ([0.1, 0.2, 0.3, 0.4], [0, 0, 0, 0], {}, "both classes"),
        ([0.1, 0.2, 0.3, 0.4], [1, 0, 1, 0], {"n_folds": 1}, "at least 2 folds"),
        ([0.1, 0.2, 0.3, 0.4], [1, 0, 1, 0], {"n_folds": 5}, "more than the 4 pairs"),
        ([0.1, 0.2, 0.3, 0.4], [1, 0, 1, 0], {"folds": [3, 3, 3, 3]}, "at least 2 folds"),
        ([0.1, 0.2, 0.3, 0.4], [1, 0, 1, 0], {"folds": [0, 1, 0]}, "one fold id per pair"),
        ([0.1, np.nan, 0.3, 0.4], [1, 0, 1, 0], {}, "NaN"),
        ([], [], {}, "empty"),
    ],
)
def test_kfold_input_validation(scores, labels, kwargs, match):
    with pytest.raises(ValueError, match=match):
        kfold_accuracy(scores, labels, **kwargs)


def test_roc_metrics_validates_inputs():
    with pytest.raises(ValueError, match="both classes"):
        roc_metrics([0.1, 0.2], [1, 1])
    with pytest.raises(ValueError, match="same length"):
        roc_metrics([0.1, 0.2], [1])


def test_verification_report_is_json_serialisable():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.array([1, 0], dtype=np.int64), 100)
    scores = (rng.normal(size=200) + 2 * labels).astype(np.float32)
    report = verification_report(scores, labels).model_dump()
    assert json.loads(json.dumps(report)) == report
    assert {
        "accuracy",
        "accuracy_std",
        "auc",
        "eer",
        "eer_threshold",
        "tar_at_far",
        "num_positive",
        "num_negative",
    } <= report.keys()
    assert report["num_positive"] == 100 and report["num_negative"] == 100
    assert report["n_folds"] == 10 and report["folds_from_file"] is False
    assert 0.8 < report["accuracy"] <= 1.0
    for value in report.values():
        assert type(value) in (float, int, bool, dict, list)
    assert len(report["per_fold"]) == len(report["fold_thresholds"]) == 10
    assert report["accuracy"] == pytest.approx(np.mean(report["per_fold"]))


def _brute_force_roc(scores, labels):
    """(FPR, TPR) accepting score >= t for every distinct score, highest first."""
    thresholds = np.unique(scores)[::-1]
    pos, neg = scores[labels == 1], scores[labels == 0]
    return (np.array([np.mean(neg >= t) for t in thresholds]), np.array([np.mean(pos >= t) for t in thresholds]))


def _brute_force_auc(scores, labels):
    pos, neg = scores[labels == 1][:, None], scores[labels == 0][None, :]
    return float(np.mean((pos > neg) + 0.5 * (pos == neg)))


@pytest.mark.parametrize("tied", [False, True])
def test_curves_and_auc_equal_brute_force_to_1e9(tied):
    from facemetric.eval.verification.metrics import curves

    rng = np.random.default_rng(7)
    labels = (rng.random(800) < 0.4).astype(int)
    scores = rng.normal(size=800) + labels
    if tied:
        scores = np.round(scores, 0)  # a handful of distinct values: heavy ties across classes
    c = curves(scores, labels, max_points=None).model_dump()
    fpr, tpr = _brute_force_roc(scores, labels)
    # curves() starts with sklearn's "accept nothing" point, then one point per distinct score
    assert np.allclose(c["roc_fpr"][1:], fpr, atol=1e-9) and np.allclose(c["roc_tpr"][1:], tpr, atol=1e-9)
    assert c["roc_fpr"][0] == 0 and c["roc_tpr"][0] == 0
    # each operating point's threshold reproduces its TPR (accept score >= threshold)
    assert np.allclose(c["roc_tpr"][1:], [np.mean(scores[labels == 1] >= t) for t in c["roc_threshold"][1:]], atol=1e-9)
    det_fpr, det_fnr = np.asarray(c["det_fpr"]), np.asarray(c["det_fnr"])
    assert np.all(np.diff(det_fpr) <= 1e-12) and np.all(np.diff(det_fnr) >= -1e-12)  # a monotone trade-off
    auc = roc_metrics(scores, labels)["auc"]
    assert abs(auc - _brute_force_auc(scores, labels)) < 1e-9
    assert abs(auc - roc_auc_score(labels, scores)) < 1e-9
    thin = curves(scores, labels, max_points=5).model_dump()
    assert len(thin["roc_fpr"]) <= 5 and thin["roc_fpr"][0] == 0 and thin["roc_fpr"][-1] == 1


def test_kfold_hand_made_two_folds():
    # fold 0: scores 0.9(1) 0.6(0) 0.4(1) 0.1(0); fold 1: 0.8(1) 0.7(0) 0.3(1) 0.2(0)
    # fold 0 is scored with the best threshold of fold 1: candidates 0.2 -> 2/4, 0.25 -> 3/4, 0.5 -> 3/4,
    #   0.75 -> 3/4, above -> 2/4; ties go to the smallest: 0.25. On fold 0: 0.9 ok, 0.6 wrong, 0.4 ok, 0.1 ok -> 3/4
    # fold 1 with fold 0's best: candidates 0.1 -> 2/4, 0.25 -> 3/4, 0.5 -> 3/4, 0.75 -> 3/4 -> 0.25.
    #   On fold 1: 0.8 ok, 0.7 wrong, 0.3 ok, 0.2 ok -> 3/4
    scores = np.array([0.9, 0.6, 0.4, 0.1, 0.8, 0.7, 0.3, 0.2])
    labels = np.array([1, 0, 1, 0, 1, 0, 1, 0])
    folds = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    result = kfold_accuracy(scores, labels, folds=folds)
    assert result["per_fold"] == pytest.approx([0.75, 0.75])
    assert result["mean"] == pytest.approx(0.75) and result["std"] == pytest.approx(0.0)


def test_report_flags_the_optimistic_accuracy():
    scores = np.array([0.9, 0.6, 0.4, 0.1, 0.8, 0.7, 0.3, 0.2])
    labels = np.array([1, 0, 1, 0, 1, 0, 1, 0])
    report = verification_report(scores, labels, folds=np.array([0, 0, 0, 0, 1, 1, 1, 1])).model_dump()
    # best threshold on all 8 pairs: 0.25 -> 6/8 correct (0.6 and 0.7 are false accepts)
    assert report["optimistic"]["accuracy"] == pytest.approx(0.75)
    assert "optimistic" in report["optimistic"]["note"]
