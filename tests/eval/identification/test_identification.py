from __future__ import annotations

import json
import math

import numpy as np
import pytest

from facemetric.core.results import CalibratedThreshold
from facemetric.eval.identification.closed_set import cmc
from facemetric.eval.identification.files import write_decisions_csv
from facemetric.eval.identification.open_set import decide, dir_at_far, open_set_report
from facemetric.eval.identification.search import top_matches
from facemetric.eval.primitives import calibrate_threshold


def unit(*degrees: float) -> np.ndarray:
    """2-D unit vectors at the given angles (float32, like the project's embeddings)."""
    r = np.deg2rad(np.array(degrees, dtype=np.float64))
    return np.stack([np.cos(r), np.sin(r)], axis=1).astype(np.float32)


def normalise(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


# --------------------------------------------------------------------------- CMC

# Gallery on the unit circle: A has images at 0 and 100 degrees (mean template at
# 50), B one image at 40, C one image at 200. A probe's cosine to an image is the
# cosine of the angle between them, so identities rank by angular distance:
#
#   probe  true  "max" distances A / B / C   rank | "mean" distances A / B / C  rank
#   60     B     40 / 20 / 140               1    | 10 / 20 / 140               2
#   95     A      5 / 55 / 105               1    | 45 / 55 / 105               1
#   180    B     80 / 140 / 20               3    | 130 / 140 / 20              3
#   250    A    110 / 150 / 50               2    | 160 / 150 / 50              3
#
# "max" CMC: rank<=1 2/4, <=2 3/4, <=3 4/4.  "mean" CMC: 1/4, 2/4, 4/4.
GALLERY = unit(0, 100, 40, 200)
GALLERY_LABELS = np.array(["A", "A", "B", "C"])
PROBES = unit(60, 95, 180, 250)
PROBE_LABELS = np.array(["B", "A", "B", "A"])


def test_cmc_hand_computed_max_template():
    r = cmc(PROBES, PROBE_LABELS, GALLERY, GALLERY_LABELS, template="max")
    assert r.per_probe_rank.tolist() == [1, 1, 3, 2]
    # three identities: the curve stops at rank 3 even though max_rank is 20
    assert r.ranks.tolist() == pytest.approx([0.5, 0.75, 1.0])
    assert r.rank1 == pytest.approx(0.5)
    assert r.rank5 == pytest.approx(1.0)  # rank min(5, 3)
    assert r.n_identities == 3 and r.n_probes == 4
    json.dumps(r.summary().model_dump())


def test_cmc_hand_computed_mean_template():
    r = cmc(PROBES, PROBE_LABELS, GALLERY, GALLERY_LABELS, template="mean")
    assert r.per_probe_rank.tolist() == [2, 1, 3, 3]
    assert r.ranks.tolist() == pytest.approx([0.25, 0.5, 1.0])
    assert r.rank1 == pytest.approx(0.25)


def test_cmc_max_rank_truncates_and_chunking_changes_nothing():
    r = cmc(PROBES, PROBE_LABELS, GALLERY, GALLERY_LABELS, max_rank=2, chunk=1)
    assert r.ranks.tolist() == pytest.approx([0.5, 0.75])
    assert r.per_probe_rank.tolist() == [1, 1, 3, 2]
    assert r.rank5 == pytest.approx(1.0)  # from the per-probe ranks, not the truncated curve


def test_top_matches_hand_computed():
    labels, scores = top_matches(PROBES, GALLERY, GALLERY_LABELS)
    assert labels.tolist() == ["B", "A", "C", "C"]
    expected = np.cos(np.deg2rad([20, 5, 20, 50]))
    assert scores == pytest.approx(expected, abs=1e-6)


def test_cmc_tie_counts_against_the_probe():
    # The probe (1, 0) has cosine exactly 0.6 to both A and B.
    gallery = np.array([[0.6, 0.8], [0.6, -0.8]], dtype=np.float32)
    probe = np.array([[1.0, 0.0]], dtype=np.float32)
    for truth in ("A", "B"):
        r = cmc(probe, [truth], gallery, ["A", "B"])
        assert r.per_probe_rank.tolist() == [2]
        assert r.rank1 == 0.0


@pytest.mark.parametrize("template", ["max", "mean"])
def test_cmc_matches_brute_force(template):
    rng = np.random.default_rng(0)
    glabels = rng.integers(0, 7, size=25)
    glabels[:7] = np.arange(7)  # every identity enrolled
    gallery = normalise(rng.normal(size=(25, 8)))
    probes = normalise(rng.normal(size=(23, 8)))
    plabels = rng.integers(0, 7, size=23)

    ids = np.unique(glabels)
    if template == "max":
        per_id = np.stack([(probes @ gallery[glabels == c].T).max(axis=1) for c in ids], axis=1)
    else:
        templates = normalise(np.stack([gallery[glabels == c].mean(axis=0) for c in ids]))
        per_id = probes @ templates.T
    true = per_id[np.arange(23), plabels]
    expected = (per_id >= true[:, None]).sum(axis=1)

    r = cmc(probes, plabels, gallery, glabels, max_rank=5, template=template, chunk=4)
    assert r.per_probe_rank.tolist() == expected.tolist()
    assert r.ranks.tolist() == pytest.approx([np.mean(expected <= k) for k in range(1, 6)])


# --------------------------------------------------------------------------- DIR@FAR

# Ten unknown probes with top scores 0.1, 0.2, ..., 1.0. Known probes:
#   score    1.0  0.95 0.92 0.85 0.8  0.7  0.5  0.3
#   correct  yes  yes  no   yes  yes  yes  yes  no
# FAR 0.1 -> k = 1 unknown may alarm -> t = 1.0 (the highest unknown score);
#   known correct with score >= 1.0: one -> DIR 1/8.
# FAR 0.3 -> k = 3 -> t = 0.8 (unknowns 0.8, 0.9, 1.0 alarm);
#   correct with score >= 0.8: 1.0, 0.95, 0.85, 0.8 (tie at t counts) -> DIR 4/8.
# FAR 0.15 -> still k = 1: t = 1.0, achieved FAR only 0.1.
# FAR 1.0 -> t = 0.1, every correct known probe is detected: DIR 6/8.
# FAR 0.05 < 1/10 -> below resolution: t just above 1.0, achieved FAR 0, DIR 0.
UNKNOWN_SCORES = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
KNOWN_SCORES = [1.0, 0.95, 0.92, 0.85, 0.8, 0.7, 0.5, 0.3]
KNOWN_CORRECT = [True, True, False, True, True, True, True, False]


def test_dir_at_far_hand_computed():
    fars = [0.1, 0.3, 0.15, 1.0]
    r = dir_at_far(KNOWN_SCORES, KNOWN_CORRECT, UNKNOWN_SCORES, fars)
    assert r["far"] == fars
    assert r["threshold"] == [1.0, 0.8, 1.0, 0.1]
    assert r["dir"] == pytest.approx([1 / 8, 4 / 8, 1 / 8, 6 / 8])
    assert r["achieved_far"] == pytest.approx([0.1, 0.3, 0.1, 1.0])
    assert r["below_resolution"] == [False, False, False, False]
    assert r["far_resolution"] == pytest.approx(0.1)
    assert r["n_known"] == 8 and r["n_unknown"] == 10
    json.dumps(r)


def test_dir_at_far_below_resolution():
    r = dir_at_far(KNOWN_SCORES, KNOWN_CORRECT, UNKNOWN_SCORES, [0.05, 0.0])
    for t in r["threshold"]:
        assert t > 1.0 and t == np.nextafter(1.0, 2.0)  # the strictest threshold
    assert r["achieved_far"] == [0.0, 0.0]
    assert r["below_resolution"] == [True, True]
    assert r["dir"] == [0.0, 0.0]  # the known probe at 1.0 is not above the threshold


def test_dir_at_far_ties_in_unknown_scores():
    unknown = [0.2, 0.5, 0.5, 0.5, 0.9]
    known, correct = [0.9, 0.6, 0.5, 0.3], [1, 1, 1, 1]
    r = dir_at_far(known, correct, unknown, [0.2, 0.4, 0.8])
    # FAR 0.2 (k=1): t = 0.9.  FAR 0.4 (k=2): the 2nd-highest, 0.5, is shared by
    # three probes, so t moves up to 0.9 and only 1/5 alarm.  FAR 0.8 (k=4): t = 0.5.
    assert r["threshold"] == [0.9, 0.9, 0.5]
    assert r["achieved_far"] == pytest.approx([0.2, 0.2, 0.8])
    assert r["dir"] == pytest.approx([0.25, 0.25, 0.75])
    # All unknown scores tied at the top: nothing between "all alarm" and "none".
    r = dir_at_far([0.8], [True], [0.7, 0.7, 0.7], [0.5])
    assert r["threshold"][0] > 0.7 and r["achieved_far"] == [0.0]
    assert r["below_resolution"] == [False]  # 0.5 >= 1/3: a tie, not too few probes


@pytest.mark.parametrize("seed", [0, 1])
def test_dir_at_far_is_the_loosest_observed_threshold_meeting_the_far(seed):
    rng = np.random.default_rng(seed)
    unknown = np.round(rng.normal(size=57), 1)  # rounding makes ties
    known = np.round(rng.normal(1.0, 1.0, size=31), 1)
    correct = rng.random(31) < 0.8
    fars = [0.0, 0.01, 0.02, 0.05, 0.1, 0.33, 0.5, 0.99, 1.0]
    r = dir_at_far(known, correct, unknown, fars)
    candidates = np.append(np.unique(unknown), np.nextafter(unknown.max(), np.inf))
    for f, t, d, achieved in zip(fars, r["threshold"], r["dir"], r["achieved_far"]):
        meets = [c for c in candidates if np.mean(unknown >= c) <= f + 1e-12]
        assert t == min(meets)
        assert achieved == pytest.approx(np.mean(unknown >= t)) and achieved <= f
        assert d == pytest.approx(np.mean(correct & (known >= t)))


# --------------------------------------------------------------------------- calibration


@pytest.mark.parametrize("target", [0.01, 0.05])
def test_calibrated_threshold_meets_target_on_held_out_impostors(target):
    rng = np.random.default_rng(1234)
    n = 20_000
    calibration = rng.normal(0.3, 0.1, size=n)
    held_out = rng.normal(0.3, 0.1, size=n)
    th = calibrate_threshold(calibration, target)
    assert isinstance(th, CalibratedThreshold)
    assert th.n_impostors == n and th.target_far == target
    assert "validation" in th.source and not th.below_resolution
    assert target - 1 / n <= th.achieved_far <= target
    # Held-out FAR error = calibration quantile noise + held-out binomial noise,
    # each with standard deviation sqrt(f(1-f)/n): together sqrt(2 f(1-f)/n),
    # ~0.0010 at f=0.01 and ~0.0022 at f=0.05. Allow 4 of those
    # (+-0.0040 and +-0.0087); with the fixed seed the test is deterministic.
    tol = 4 * math.sqrt(2 * target * (1 - target) / n)
    assert abs(np.mean(held_out >= th.value) - target) <= tol


def test_calibration_below_resolution_is_reported():
    th = calibrate_threshold([0.1, 0.4, 0.3], 0.01, source="val split")
    assert th.value > 0.4 and th.achieved_far == 0.0 and th.below_resolution
    assert th.source == "val split"
    json.dumps(th.model_dump())


def test_decide():
    th = CalibratedThreshold(
        value=0.5, target_far=0.01, achieved_far=0.01, n_impostors=100, source="validation", below_resolution=False
    )
    out = decide(["alice", "bob", "carol"], [0.7, 0.5, 0.49], th)
    assert out == ["alice", "bob", "no correspondence"]
    assert decide([3, 4], [0.2, 0.9], 0.5, unknown=-1) == [-1, 4]


# --------------------------------------------------------------------------- open set


def clustered(rng, centres: np.ndarray, per_id: int, noise: float = 0.5) -> np.ndarray:
    """``per_id`` noisy unit vectors around each centre, grouped by centre."""
    x = np.repeat(centres, per_id, axis=0)
    return normalise(x + noise * rng.normal(size=x.shape) / math.sqrt(x.shape[1]))


def test_open_set_report_end_to_end():
    rng = np.random.default_rng(7)
    dim, n_known, n_unknown = 32, 20, 4000
    centres = normalise(rng.normal(size=(n_known, dim)))
    gallery = clustered(rng, centres, 3)
    gallery_labels = np.repeat(np.arange(n_known), 3)

    def split():
        # known probes: 5 fresh images per enrolled person; unknown probes: one
        # image each of 4000 people never enrolled (independent draws, so the
        # false-alarm count is binomial), all labelled -1.
        known = clustered(rng, centres, 5)
        unknown = clustered(rng, normalise(rng.normal(size=(n_unknown, dim))), 1)
        emb = np.concatenate([known, unknown])
        labels = np.concatenate([np.repeat(np.arange(n_known), 5), np.full(n_unknown, -1)])
        return emb, labels

    val, test = split(), split()
    target = 0.05
    report = open_set_report(
        gallery, gallery_labels, *val, *test, target_far=target, fars=(0.01, 0.05, 0.1)
    ).model_dump()
    json.dumps(report)
    assert set(report) >= {"threshold", "test", "validation", "template"}
    assert set(report["test"]) >= {"n_known", "n_unknown", "dir", "false_alarm_rate", "rank1", "dir_at_far"}
    th = report["threshold"]
    assert th["n_impostors"] == n_unknown and th["target_far"] == target
    assert th["achieved_far"] <= target and "validation" in th["source"]
    t = report["test"]
    assert t["n_known"] == 100 and t["n_unknown"] == n_unknown
    # Same tolerance reasoning as the calibration test: 4 * sqrt(2 f(1-f) / n) = 0.019.
    assert abs(t["false_alarm_rate"] - target) <= 4 * math.sqrt(2 * target * (1 - target) / n_unknown)
    assert t["rank1"] > 0.9
    assert 0.5 < t["dir"] <= t["rank1"]
    curve = t["dir_at_far"]
    assert curve["computed_on"] == "test" and curve["far"] == [0.01, 0.05, 0.1]
    assert curve["dir"] == sorted(curve["dir"])
    v = report["validation"]
    assert v["n_known"] == 100 and v["n_unknown"] == n_unknown and 0.5 < v["dir"] <= 1.0

    # The threshold depends on the validation split only.
    other_test = split()
    again = open_set_report(gallery, gallery_labels, *val, *other_test, target_far=target).model_dump()
    assert again["threshold"] == report["threshold"]


def test_open_set_report_needs_unknown_validation_probes():
    with pytest.raises(ValueError, match="calibration needs unknown"):
        open_set_report(GALLERY, GALLERY_LABELS, PROBES, PROBE_LABELS, PROBES, ["A", "B", "X", "Y"])
    with pytest.raises(ValueError, match="both known and unknown"):
        open_set_report(GALLERY, GALLERY_LABELS, PROBES, ["A", "B", "X", "Y"], PROBES, PROBE_LABELS)


# --------------------------------------------------------------------------- CSV


def test_write_decisions_csv_exact_contents(tmp_path):
    path = tmp_path / "sub" / "decisions.csv"
    out = write_decisions_csv(path, ["img_001.jpg", "img_002.jpg", 3], ["alice", "no correspondence", 17])
    assert out == path
    assert path.read_bytes() == b"id,label\nimg_001.jpg,alice\nimg_002.jpg,no correspondence\n3,17\n"
    assert [p.name for p in path.parent.iterdir()] == ["decisions.csv"]  # no temp file left


@pytest.mark.parametrize("bad_id", ["a,b", "a\nb", "a\rb"])
def test_write_decisions_csv_refuses_bad_ids(tmp_path, bad_id):
    path = tmp_path / "decisions.csv"
    write_decisions_csv(path, ["x"], ["alice"])
    with pytest.raises(ValueError, match="probe id"):
        write_decisions_csv(path, ["ok", bad_id], ["alice", "bob"])
    assert path.read_text() == "id,label\nx,alice\n"  # the old file is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["decisions.csv"]


def test_write_decisions_csv_other_refusals(tmp_path):
    path = tmp_path / "d.csv"
    with pytest.raises(ValueError, match="label"):
        write_decisions_csv(path, ["a"], ["smith, john"])
    with pytest.raises(ValueError, match="one decision per probe"):
        write_decisions_csv(path, ["a", "b"], ["alice"])
    with pytest.raises(ValueError, match="not unique"):
        write_decisions_csv(path, ["a", "a"], ["alice", "bob"])
    assert not path.exists()


# --------------------------------------------------------------------------- bad input


def test_closed_set_refuses_probe_identities_missing_from_gallery():
    with pytest.raises(ValueError, match=r"\['D', 'E'\]\) are not in the gallery"):
        cmc(PROBES, ["A", "D", "E", "D"], GALLERY, GALLERY_LABELS)


def test_bad_input_errors():
    with pytest.raises(ValueError, match="probe_labels has 3 labels but probe_emb has 4"):
        cmc(PROBES, PROBE_LABELS[:3], GALLERY, GALLERY_LABELS)
    with pytest.raises(ValueError, match="gallery_labels has 2 labels"):
        cmc(PROBES, PROBE_LABELS, GALLERY, ["A", "B"])
    with pytest.raises(ValueError, match="template"):
        cmc(PROBES, PROBE_LABELS, GALLERY, GALLERY_LABELS, template="median")
    with pytest.raises(ValueError, match="dimension"):
        cmc(unit(0), ["A"], np.eye(4, dtype=np.float32), ["A", "B", "C", "D"])
    with pytest.raises(ValueError, match="not unit length"):
        cmc(PROBES * 3, PROBE_LABELS, GALLERY, GALLERY_LABELS)
    with pytest.raises(ValueError, match="max_rank"):
        cmc(PROBES, PROBE_LABELS, GALLERY, GALLERY_LABELS, max_rank=0)
    with pytest.raises(ValueError, match="known_top_correct must give one flag"):
        dir_at_far([0.5, 0.6], [True], [0.1], [0.1])
    with pytest.raises(ValueError, match=r"fars\[1\]"):
        dir_at_far([0.5], [True], [0.1], [0.1, 1.5])
    with pytest.raises(ValueError, match="unknown_top_scores is empty"):
        calibrate_threshold([], 0.01)
    with pytest.raises(ValueError, match="target_far"):
        calibrate_threshold([0.1, 0.2], -0.1)
    with pytest.raises(ValueError, match="one label per probe"):
        decide(["a", "b"], [0.1], 0.5)
    with pytest.raises(ValueError, match="also a gallery identity"):
        decide(["no correspondence"], [0.9], 0.5)
