"""Pose-spread enrolment: the picker, the quality checks, and a video enrolled from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

from facemetric.gallery.pose_spread import MIN_SHARPNESS, FaceOffer, choose, pick_spread, reason_to_skip, sharpness

OFFERS = [
    FaceOffer("a", 0.0, 0.0, sharpness=100.0, face_side=120),
    FaceOffer("b", 2.0, 1.0, sharpness=100.0, face_side=120),
    FaceOffer("c", 40.0, 0.0, sharpness=100.0, face_side=120),
    FaceOffer("d", -45.0, 5.0, sharpness=100.0, face_side=120),
    FaceOffer("e", 20.0, 0.0, sharpness=100.0, face_side=120),
    FaceOffer("f", 0.0, 25.0, sharpness=100.0, face_side=120),
    FaceOffer("g", problem="no face found"),
]


def test_the_picker_keeps_frontal_then_the_poses_least_covered() -> None:
    # by hand: a is frontal; from a, d is farthest (45.3); then c (40 from a, 85.1 from d); then f (25 from a)
    assert pick_spread(OFFERS, 1) == [0]
    assert pick_spread(OFFERS, 3) == [0, 2, 3]
    assert pick_spread(OFFERS, 4) == [0, 2, 3, 5]
    assert pick_spread(OFFERS, 10) == [0, 1, 2, 3, 4, 5]  # every usable face, never g
    # deterministic, and the same faces whatever order they are offered in (no ties here)
    reverse = OFFERS[::-1]
    assert {reverse[k].source for k in pick_spread(reverse, 4)} == {"a", "c", "d", "f"}
    assert pick_spread(OFFERS, 4) == pick_spread(list(OFFERS), 4)
    with pytest.raises(ValueError, match="at least one photo"):
        pick_spread(OFFERS, 0)


def test_of_two_faces_in_one_pose_the_sharper_then_the_earlier_is_kept() -> None:
    twins = [FaceOffer("x", 0.0, 0.0, 40.0), FaceOffer("y", 0.04, 0.0, 90.0), FaceOffer("z", 0.0, 0.0, 90.0)]
    assert pick_spread(twins, 1) == [1]
    assert pick_spread([twins[0], twins[2]], 1) == [1]
    assert pick_spread([FaceOffer("p", 30.0, 0.0, 50.0), FaceOffer("q", 30.0, 0.0, 50.0)], 1) == [0]


def test_quality_checks_give_their_reason() -> None:
    assert reason_to_skip(FaceOffer("s", face_side=30, sharpness=100)) == "face too small: 30 px, at least 40 needed"
    assert reason_to_skip(FaceOffer("s", face_side=90, sharpness=5.5)).startswith("blurred: sharpness 5.5")
    assert reason_to_skip(FaceOffer("s", face_side=90, sharpness=80)) is None
    kept, skipped = choose([FaceOffer("tiny", face_side=10, sharpness=90), *OFFERS], 2)
    assert kept == [1, 4]
    assert dict(skipped)[0].startswith("face too small") and dict(skipped)[7] == "no face found"
    assert dict(skipped)[2] == "not needed: 2 photos spread over pose were kept"


def test_sharpness_separates_real_faces_from_the_same_faces_blurred(shared_data: Path) -> None:
    """YuNet's boxes on LFW photos: nearly all sharp ones pass MIN_SHARPNESS, those blurred by 2 px do not."""
    pytest.importorskip("cv2")
    from facemetric.core.faces import NoFaceError
    from facemetric.data.align import build_aligner
    from facemetric.data.images import open_image

    files = sorted((shared_data / "lfw-devtrain" / "images").glob("*/*.jpg"))[::300]
    aligner = build_aligner("yunet", size=112)
    sharp, blurred = [], []
    for path in files:
        image = open_image(path, 3)
        try:
            _, det = aligner(image)
        except NoFaceError:
            continue
        assert det.box is not None
        scale = max(1.0, (det.box[2] - det.box[0]) / 112)
        sharp.append(sharpness(image, det.box))
        blurred.append(sharpness(image.filter(ImageFilter.GaussianBlur(2 * scale)), det.box))
    assert len(sharp) >= 25
    assert np.mean(np.array(sharp) >= MIN_SHARPNESS) >= 0.9
    assert np.mean(np.array(blurred) < MIN_SHARPNESS) >= 0.9
    assert sharpness(Image.new("RGB", (50, 50)), [60, 60, 90, 90]) == 0.0  # a box outside the photo


def _turning_head_video(shared_data: Path, path: Path) -> list[int]:
    """An MJPEG video of one qmul-multiview person turning the head from one side to the other (tilt 90,
    pans 0..180), then a blank frame and a blurred frontal one; returns the pans of the turning frames."""
    cv2 = pytest.importorskip("cv2")
    person = shared_data / "qmul-multiview" / "AdamB"
    if not person.is_dir():
        pytest.skip("qmul-multiview is not in ../shared/data")
    pans = list(range(0, 181, 10))
    frames = [
        np.asarray(Image.open(person / f"AdamB_090_{pan:03d}.ras").convert("RGB").resize((200, 200))) for pan in pans
    ]
    frames.append(np.full((200, 200, 3), 128, np.uint8))
    frontal = Image.fromarray(frames[9]).filter(ImageFilter.GaussianBlur(6))
    frames.append(np.asarray(frontal))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (200, 200))
    assert writer.isOpened()
    for frame in frames:
        writer.write(np.ascontiguousarray(frame[:, :, ::-1]))
    writer.release()
    return pans


def test_a_video_enrols_faces_spread_over_pose_and_says_why_it_skipped_the_rest(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("dlib")
    from facemetric.cli import main

    video = tmp_path / "adam.avi"
    pans = _turning_head_video(shared_data, video)
    gallery = str(tmp_path / "gallery")
    assert main(["-q", "gallery", "--gallery", gallery, "init", "--model", "dlib-resnet?detector=yunet"]) == 0
    capsys.readouterr()
    assert main(["-q", "gallery", "--gallery", gallery, "enroll", "Adam", str(video), "--max-photos", "4"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["name"] == "Adam" and answer["added"] == 4 and len(answer["kept"]) == 4
    assert len(answer["kept"]) + len(answer["skipped"]) == len(pans) + 2
    yaws = sorted(k["pose"]["yaw"] for k in answer["kept"])
    assert yaws[0] < -30 and yaws[-1] > 30 and min(abs(y) for y in yaws) < 10  # frontal and both sides
    reasons = {s["source"].rsplit("=", 1)[1]: s["reason"] for s in answer["skipped"]}
    assert reasons[str(len(pans))].startswith("no face found")  # the blank frame
    assert reasons[str(len(pans) + 1)].startswith("blurred")  # the blurred frontal frame
    assert sum(r.startswith("not needed") for r in reasons.values()) >= 8
    # a frame not enrolled is the same person
    probe = tmp_path / "probe.png"
    Image.open(shared_data / "qmul-multiview" / "AdamB" / "AdamB_100_120.ras").convert("RGB").save(probe)
    assert main(["-q", "gallery", "--gallery", gallery, "verify", "Adam", str(probe)]) == 0
    assert json.loads(capsys.readouterr().out)["score"] > 0.6
