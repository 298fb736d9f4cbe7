"""Head pose from five landmarks: synthetic faces of known rotation, mirror symmetry, real turned heads."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from facemetric.core.faces import Detection, Pose
from facemetric.data.align.pose import angles, head_pose, pose_record, project, rotation

pytest.importorskip("cv2")

KINDS = ("five", "dlib5")
SIZE = (640, 480)


def _close(a: Pose, b: Pose, tol: float) -> bool:
    return max(abs(a.yaw - b.yaw), abs(a.pitch - b.pitch), abs(a.roll - b.roll)) <= tol


def test_rotation_and_angles_are_inverse_and_follow_the_stated_conventions() -> None:
    for yaw, pitch, roll in itertools.product((-70, -20, 0, 35), (-30, 0, 25), (-20, 0, 15)):
        pose = Pose(yaw, pitch, roll)
        assert _close(angles(rotation(pose)), pose, 1e-9)
    # yaw > 0: the face (looking down -z, towards the camera) turns towards the image's right (+x)
    forward = rotation(Pose(30, 0, 0)) @ np.array([0.0, 0.0, -1.0])
    assert forward[0] == pytest.approx(np.sin(np.radians(30)))
    # pitch > 0: it looks up (-y in the image); roll > 0: its right-hand (+x) axis turns down (+y), clockwise
    assert (rotation(Pose(0, 20, 0)) @ np.array([0.0, 0.0, -1.0]))[1] < 0
    assert (rotation(Pose(0, 0, 10)) @ np.array([1.0, 0.0, 0.0]))[1] > 0


@pytest.mark.parametrize("kind", KINDS)
def test_synthetic_landmarks_of_known_rotation_give_it_back(kind: str) -> None:
    for yaw, pitch, roll in itertools.product((-75, -45, -10, 0, 30, 60), (-25, 0, 20), (-20, 0, 10)):
        pose = Pose(yaw, pitch, roll)
        points = project(kind, pose, SIZE, (350, 230), 700.0)
        found = head_pose(points, kind, SIZE)
        assert found is not None and _close(found, pose, 0.01), (pose, found)


@pytest.mark.parametrize("kind", KINDS)
def test_one_pixel_of_landmark_noise_moves_the_angles_by_a_few_degrees(kind: str) -> None:
    """A face about 150 px wide (eye corners ~110 px apart) with 1 px of noise on each point."""
    rng = np.random.default_rng(0)
    errors = []
    for yaw, pitch in itertools.product((-40, 0, 40), (-15, 0, 15)):
        pose = Pose(yaw, pitch, 0.0)
        clean = project(kind, pose, SIZE, (320, 240), 500.0)
        for _ in range(10):
            found = head_pose(clean + rng.normal(0, 1.0, clean.shape), kind, SIZE)
            assert found is not None
            errors.append([abs(found.yaw - yaw), abs(found.pitch - pitch), abs(found.roll)])
    mean = np.mean(errors, axis=0)
    assert mean[0] < 4.0 and mean[2] < 2.0, mean
    assert mean[1] < 8.0, mean  # pitch is the weakest: five points span little depth vertically


@pytest.mark.parametrize("kind", KINDS)
def test_a_mirrored_photo_turns_yaw_and_roll_around_and_keeps_pitch(kind: str) -> None:
    pose = Pose(35.0, 12.0, 8.0)
    points = project(kind, pose, SIZE, (300, 250), 600.0)
    mirrored = points.copy()
    mirrored[:, 0] = SIZE[0] - mirrored[:, 0]
    # the mirror swaps the image-left and image-right points of each pair (dlib's mean face is symmetric
    # to 0.0002 of its width: 0.1 degree)
    order = [1, 0, 2, 4, 3] if kind == "five" else [2, 3, 0, 1, 4]
    found = head_pose(mirrored[order], kind, SIZE)
    assert found is not None and _close(found, Pose(-35.0, 12.0, -8.0), 0.1), found


def test_degenerate_points_give_no_pose_and_the_record_is_rounded() -> None:
    assert head_pose(np.zeros((5, 2)), "five", SIZE) is None
    assert head_pose([[1.0, 2.0]] * 3, "five", SIZE) is None
    assert pose_record(None, "five", SIZE) is None
    record = pose_record(project("five", Pose(20.04, -5.06, 3.0), SIZE, (320, 240), 600.0), "five", SIZE)
    assert record == {"yaw": 20.0, "pitch": -5.1, "roll": 3.0}
    with pytest.raises(ValueError, match="no 3-D face for 'six'"):
        head_pose(np.zeros((5, 2)), "six", SIZE)
    detection = Detection("yunet", True, pose=record)
    assert Detection(**json.loads(json.dumps(detection.to_dict()))) == detection


def _qmul(shared_data: Path, tilt: int, pans: tuple[int, ...]) -> list[tuple[int, Path]]:
    folder = shared_data / "qmul-multiview"
    if not folder.is_dir():
        pytest.skip("qmul-multiview is not in ../shared/data")
    people = sorted(p for p in folder.iterdir() if p.is_dir())[:6]
    return [
        (pan - 90, person / f"{person.name}_{tilt:03d}_{pan:03d}.ras")
        for person in people
        for pan in pans
        if (person / f"{person.name}_{tilt:03d}_{pan:03d}.ras").is_file()
    ]


@pytest.mark.parametrize("aligner_name", ["yunet", "dlib"])
def test_real_turned_heads_get_the_yaw_of_their_recorded_pan(shared_data: Path, aligner_name: str) -> None:
    """qmul-multiview, six people at tilt 90 and pans 40-140: the yaw estimated from each detector's points
    follows the recorded pan (its sign is the set's convention, measured by benchmarks/head_pose.py)."""
    from facemetric.core.faces import NoFaceError
    from facemetric.data.align import build_aligner
    from facemetric.data.images import open_image

    aligner = build_aligner(aligner_name, size=112)
    known, yaws = [], []
    for pan, path in _qmul(shared_data, 90, (40, 60, 80, 90, 100, 120, 140)):
        try:
            _, det = aligner(open_image(path, 3))
        except NoFaceError:
            continue
        assert det.pose is not None and set(det.pose) == {"yaw", "pitch", "roll"}
        known.append(pan)
        yaws.append(det.pose["yaw"])
    known_a, yaw_a = np.array(known, float), np.array(yaws)
    assert len(known_a) >= 25
    assert np.corrcoef(known_a, yaw_a)[0, 1] > 0.9  # qmul's pan grows as the face turns to the image's right
    frontal = np.abs(yaw_a[known_a == 0])
    assert frontal.mean() < 10.0
