"""Verification by head pose: bands and curve against hand-computed counts; yaws from names and detections."""

from __future__ import annotations

import math

import numpy as np
import pytest

from facemetric.eval.pose import photo_yaws, pose_breakdown

NAN = math.nan


def test_bands_and_curve_match_a_hand_count() -> None:
    # (yaw1, yaw2, same, score); threshold 0.5: a pair counts in the band of its more turned photo
    pairs = [
        (0, 0, 1, 0.9),  # 0-15, accepted
        (0, -10, 1, 0.4),  # 0-15 (|-10|), rejected
        (15, 0, 0, 0.2),  # 0-15 (15 is the band's top), impostor refused
        (0, 20, 1, 0.8),  # 15-30, accepted
        (30, 0, 0, 0.6),  # 15-30, impostor accepted
        (50, 0, 1, 0.3),  # 45-60, rejected
        (-70, 5, 1, 0.7),  # 60+, accepted
        (NAN, 0, 1, 0.9),  # unknown yaw
    ]
    yaw1, yaw2, same, scores = (np.array(c, dtype=np.float64) for c in zip(*pairs))
    result = pose_breakdown(scores, same, yaw1, yaw2, 0.5, "given", "test", photos=9, photos_with_yaw=8)
    got = {b.band: (b.genuine, b.accepted, b.tar, b.impostors, b.false_accepts, b.far) for b in result.bands}
    assert got == {
        "0-15": (2, 1, 0.5, 1, 0, 0.0),
        "15-30": (1, 1, 1.0, 1, 1, 1.0),
        "30-45": (0, 0, None, 0, 0, None),
        "45-60": (1, 0, 0.0, 0, 0, None),
        "60+": (1, 1, 1.0, 0, 0, None),
        "unknown": (1, 1, 1.0, 0, 0, None),
    }
    assert [(p.yaw, p.genuine, p.tar) for p in result.curve] == [
        (0.0, 1, 1.0),
        (10.0, 1, 0.0),
        (20.0, 1, 1.0),
        (50.0, 1, 0.0),
        (70.0, 1, 1.0),
    ]
    assert (result.threshold, result.photos, result.photos_with_yaw) == (0.5, 9, 8)


def test_no_unknown_band_when_every_yaw_is_known_and_turns_past_90_plot_at_90() -> None:
    result = pose_breakdown(
        np.array([0.9, 0.1]),
        np.array([1, 1]),
        np.array([0.0, 120.0]),
        np.array([0.0, 0.0]),
        0.5,
        "r",
        "s",
        photos=2,
        photos_with_yaw=2,
    )
    assert [b.band for b in result.bands] == ["0-15", "15-30", "30-45", "45-60", "60+"]
    assert [(p.yaw, p.tar) for p in result.curve] == [(0.0, 1.0), (90.0, 0.0)]


def test_yaws_from_qmul_names_or_from_the_detector() -> None:
    names = ["AdamB/AdamB_090_090.ras", "AdamB/AdamB_060_000.ras", "Jo/noglasses_Jo_120_170.ras"]
    yaws, source = photo_yaws(names, None, "auto")  # type: ignore[misc]
    assert yaws.tolist() == [0.0, -90.0, 80.0] and "QMUL" in source
    records = [{"path": "a.jpg", "pose": {"yaw": -12.5, "pitch": 1.0, "roll": 0.0}}, {"path": "b.jpg", "pose": None}]
    yaws, source = photo_yaws(["a.jpg", "b.jpg", "c.jpg"], records, "auto")  # type: ignore[misc]
    assert yaws[0] == -12.5 and np.isnan(yaws[1:]).all() and "detector" in source
    assert photo_yaws(["a.jpg"], records, "names") is None  # no scheme matches: no pose section
    assert photo_yaws(names, records, "detector") is None  # the detector saw none of these photos
    assert photo_yaws(names, None, "none") is None
    with pytest.raises(ValueError, match="pose source"):
        photo_yaws(names, None, "sideways")
