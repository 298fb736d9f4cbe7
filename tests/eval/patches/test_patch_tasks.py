"""HPatches' three task metrics on hand-made descriptors with known answers, in both AP conventions (the step one
against scikit-learn's AP)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from facemetric.eval.patches.metrics import matching_ap, retrieval_ap, verification_ap, verification_auc


def test_verification_ap_by_hand_and_against_sklearn() -> None:
    a = np.zeros((4, 2))
    b = np.array([[0.1, 0.0], [0.2, 0.0], [0.3, 0.0], [0.4, 0.0]])  # distances 0.1 < 0.2 < 0.3 < 0.4
    # ranked: same, different, same, different -> step AP = (1/1 + 2/3) / 2
    assert verification_ap(a, b, [1, 0, 1, 0], "step") == pytest.approx((1 + 2 / 3) / 2)
    # trapezoid from (recall 0, precision 1): (1 + 1) / 2 / 2 + (1/2 + 2/3) / 2 / 2
    assert verification_ap(a, b, [1, 0, 1, 0]) == pytest.approx(0.5 + (1 / 2 + 2 / 3) / 4)
    # ROC: the positive ranked second passes one negative of two: AUC 1/2 x 1 + 1/2 x 1/2... = 3/4
    assert verification_auc(a, b, [1, 0, 1, 0]) == pytest.approx(0.75)
    rng = np.random.default_rng(0)
    x, z, y = rng.normal(size=(50, 8)), rng.normal(size=(50, 8)), rng.integers(0, 2, 50)
    expected = average_precision_score(y, -np.linalg.norm(x - z, axis=1))
    assert verification_ap(x, z, y, "step") == pytest.approx(expected)


def test_matching_ap_counts_a_wrong_match_as_a_lost_positive() -> None:
    ref = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    assert matching_ap(ref, ref + 0.1) == pytest.approx(1.0)
    # target 1 is far from everything: reference 1's nearest is target 0 (d 10.0, wrong)
    target = np.array([[0.0, 0.1], [50.0, 50.0], [0.0, 11.0]])
    # matches ranked: ref0 (d 0.1, right), ref2 (d 1.0, right), ref1 (d 10.0, wrong) -> (1 + 1) / 3
    assert matching_ap(ref, target) == pytest.approx(2 / 3)
    # the wrong match ranked first instead
    target[0] = [9.95, 0.0]  # reference 1 now matches target 0 at 0.05 (wrong); reference 0 still at 9.95 (right)
    # ranked: ref1 (0.05, wrong), ref2 (1.0, right), ref0 (9.95, right) -> step (1/2 + 2/3) / 3
    assert matching_ap(ref, target, "step") == pytest.approx((1 / 2 + 2 / 3) / 3)
    # trapezoid: recall steps of 1/3 from precision ~0 to 1/2, then 1/2 to 2/3
    assert matching_ap(ref, target) == pytest.approx((1 / 2) / 6 + (1 / 2 + 2 / 3) / 6)


def test_retrieval_ap_per_query_then_mean() -> None:
    queries = np.array([[0.0], [10.0]])
    pool = np.array([[0.5], [1.0], [9.0], [20.0]])
    pool_labels = np.array(["a", "b", "b", "a"])
    # query a at 0: ranked 0.5(a) 1.0(b) 9.0(b) 20.0(a) -> (1 + 2/4) / 2 = 0.75
    # query b at 10: distances 9.5, 9.0, 1.0, 10.0 -> ranked 9.0(b) 1.0(b) 0.5(a) 20.0(a) -> AP 1
    assert retrieval_ap(queries, ["a", "b"], pool, pool_labels, "step") == pytest.approx((0.75 + 1.0) / 2)
    # trapezoid, query a: 1/2 x 1 + 1/2 x (1/3 + 1/2) / 2
    assert retrieval_ap(queries, ["a", "b"], pool, pool_labels) == pytest.approx((0.5 + (1 / 3 + 1 / 2) / 4 + 1) / 2)
    with pytest.raises(ValueError, match="do not fit"):
        retrieval_ap(queries, ["a"], pool, pool_labels)
