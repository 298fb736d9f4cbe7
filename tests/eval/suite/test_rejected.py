"""Photos turned away for want of a face (``--no-face reject``) in the metrics: hand-computed cases.

A turned-away pair is a non-match (score -1), a turned-away known probe is never identified, a
turned-away unknown probe never raises a false alarm but counts in the false-alarm rate, and the
embeddings of turned-away items are never read (they are NaN here).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from facemetric.core.matching import UNKNOWN
from facemetric.eval.identification.closed_set import cmc
from facemetric.eval.identification.open_set import dir_at_far, open_set_report
from facemetric.eval.suite.embeddings import REJECTED_SCORE, PairsInput, evaluate_embeddings


def unit(*degrees: float) -> np.ndarray:
    r = np.deg2rad(np.array(degrees, dtype=np.float64))
    return np.stack([np.cos(r), np.sin(r)], axis=1).astype(np.float32)


NAN = np.full((1, 2), np.nan, np.float32)  # the row of a turned-away probe: must never be read


def test_dir_at_far_counts_turned_away_unknowns_without_alarms() -> None:
    known, correct = [0.9, 0.8, 0.7], [True, True, False]
    curve = dir_at_far(known, correct, [0.85, 0.5], fars=(0.1, 0.25, 0.5, 1.0), unknown_rejected=2)
    assert curve["n_unknown"] == 4 and curve["far_resolution"] == 0.25
    # 0.1: no alarm allowed (above 0.85); 0.25 of 4: one alarm (0.85); 0.5 and 1.0: both scored unknowns alarm
    assert curve["threshold"][0] == pytest.approx(0.85) and curve["threshold"][0] > 0.85
    assert curve["threshold"][1:] == [0.85, 0.5, 0.5]
    assert curve["achieved_far"] == [0.0, 0.25, 0.5, 0.5]  # the turned-away ones never alarm
    assert curve["dir"] == pytest.approx([1 / 3, 1 / 3, 2 / 3, 2 / 3])
    without = dir_at_far(known, correct, [0.85, 0.5], fars=(0.25,))
    assert without["n_unknown"] == 2 and without["achieved_far"] == [0.0]  # 0.25 of 2: no alarm allowed
    every = dir_at_far(known, correct, [], fars=(0.1,), unknown_rejected=3)  # every unknown turned away
    assert every["achieved_far"] == [0.0] and every["dir"] == pytest.approx([2 / 3]) and every["n_unknown"] == 3


def test_cmc_never_identifies_a_turned_away_probe() -> None:
    gallery, labels = unit(0, 90, 180), np.array(["A", "B", "C"])
    probes = np.concatenate([unit(10), NAN, unit(100)])
    result = cmc(probes, ["A", "B", "B"], gallery, labels, rejected=[False, True, False])
    assert result.per_probe_rank.tolist() == [1, 4, 1]  # rank n_identities + 1: not found at any rank
    assert result.ranks.tolist() == pytest.approx([2 / 3, 2 / 3, 2 / 3]) and result.n_probes == 3
    with pytest.raises(ValueError, match="not unit length|NaN"):
        cmc(probes, ["A", "B", "B"], gallery, labels)  # without the flag the row is read


def test_open_set_report_counts_turned_away_test_probes() -> None:
    gallery, labels = unit(0, 90), np.array(["A", "B"])
    val, val_labels = unit(5, 85, 45, 200), np.array(["A", "B", "X", "Y"])  # unknowns 45 (cos .707) and 200
    # test: A (found), B (turned away), unknown Z at 40 degrees (top cos .766: an alarm), unknown W (turned away)
    test = np.concatenate([unit(3), NAN, unit(40), NAN])
    test_labels = np.array(["A", "B", "Z", "W"])
    report = open_set_report(
        gallery, labels, val, val_labels, test, test_labels, target_far=0.5, test_rejected=[0, 1, 0, 1]
    ).model_dump()
    t = report["threshold"]["value"]
    assert t == pytest.approx(math.cos(math.radians(45)), abs=1e-6)  # 1 of 2 validation unknowns may alarm
    test_part = report["test"]
    assert (test_part["n_known"], test_part["n_unknown"]) == (2, 2)
    assert test_part["dir"] == 0.5 and test_part["rank1"] == 0.5  # B turned away: not identified
    assert test_part["false_alarm_rate"] == 0.5  # Z alarms, W (turned away) does not
    curve = test_part["dir_at_far"]
    assert curve["n_unknown"] == 2 and curve["achieved_far"][-1] <= 0.1 + 1e-12


def test_suite_scores_turned_away_pairs_minus_one_and_leaves_them_out_elsewhere() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(6, 16))
    names = np.repeat([f"p{k}" for k in range(6)], 4)
    emb = centres[np.repeat(np.arange(6), 4)] + 0.2 * rng.normal(size=(24, 16))
    emb = (emb / np.linalg.norm(emb, axis=1, keepdims=True)).astype(np.float32)
    rejected = np.zeros(24, bool)
    rejected[[1, 10]] = True  # p0's test probe, p2's validation probe
    emb[rejected] = np.nan  # never read
    images = np.zeros((24, 8, 8, 3), np.uint8)
    i = np.array([0, 0, 4, 8, 8, 12, 16, 20, 0, 4, 8, 12, 16, 20, 1, 2])
    j = np.array([1, 2, 5, 9, 10, 13, 17, 21, 4, 8, 12, 16, 20, 0, 5, 6])
    same = (names[i] == names[j]).astype(np.int8)
    fold = np.arange(16) % 2
    subset = np.array(
        ["gallery", "test_known", "val_known", "val_known"] * 4 + ["val_unknown", "test_unknown"] * 4, dtype=object
    ).astype(str)
    paths = [f"{n}/{k}.jpg" for k, n in enumerate(names)]
    result = evaluate_embeddings(
        emb,
        images,
        paths,
        names,
        pairs=PairsInput(i, j, same, fold, "test"),
        open_set=subset,
        retrieval=True,
        rejected=rejected,
    )
    scores = result.scores["scores"]
    turned = rejected[i] | rejected[j]
    assert turned.sum() == 3 and np.all(scores[turned] == REJECTED_SCORE)
    assert np.allclose(scores[~turned], np.einsum("nd,nd->n", emb[i[~turned]], emb[j[~turned]]), atol=1e-6)
    assert result.summary.verification.num_positive + result.summary.verification.num_negative == 16
    assert len(result.embeddings["embeddings"]) == 22 and np.isfinite(result.embeddings["embeddings"]).all()
    assert result.summary.retrieval.num_queries == 22
    ids, decisions = result.decisions
    assert dict(zip(ids, decisions))[paths[1]] == UNKNOWN  # a test probe without a face: rejected
    assert result.summary.identification.closed_set.n_probes == 4  # p0's turned-away probe included
    assert result.summary.identification.closed_set.rank1 <= 0.75  # ... and never identified
    assert result.summary.identification.open_set.validation.n_known == 7  # p2's turned-away probe left out
