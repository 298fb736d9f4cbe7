"""dlib's face chip for its face-recognition ResNet (``dlib-chip``): found by HOG, the CNN or YuNet, cut by
dlib's own chip extraction, as ``compute_face_descriptor`` cuts it."""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from facemetric.core.faces import Detection, NoFaceError
from facemetric.data.align.base import Aligner, register_aligner
from facemetric.data.align.dlib import (
    CNN_MAX_SIDE,
    GREY,
    Box,
    DlibFaceFinder,
    backend_name,
    dlib_model_dir,
    load_dlib,
)
from facemetric.data.align.geometry import pick_face
from facemetric.data.align.mean_face import YUNET_CHIP_FACE
from facemetric.data.align.pose import pose_record
from facemetric.data.align.yunet import main_face

# Fallback face box: a square of this fraction of the photo's shorter side, centred horizontally,
# its centre at this fraction of the height (a head-and-shoulders crop has the face below the middle).
# Chosen on ORL: HOG boxes on padded ORL photos are 0.93 of the width wide, centred at 0.62 of the height.
FALLBACK_BOX = (0.8, 0.6)
REGION_MARGIN = 0.5  # landmarks and the chip are computed on the face box enlarged by this much of its side per edge
CHIP_SIZE, CHIP_PADDING = 150, 0.25  # dlib's face chip for its ResNet: 150x150, 25 % padding around the landmarks


@register_aligner("dlib-chip")
class DlibChipAligner(Aligner):
    """The face chip of dlib's face-recognition ResNet: HOG detection on a grey-padded photo, 5 landmarks,
    then dlib's own ``get_face_chip`` (150x150, padding 0.25), exactly what ``compute_face_descriptor``
    extracts internally.

    Tight crops (ORL's 92x112 photos, where the head fills the frame): the HOG detector scans an
    80x80 window and misses or shrinks faces that touch the border, so the photo is padded with
    grey (``pad`` of its size on each side) before detection. Measured on the 400 ORL photos
    (``python benchmarks/dlib_orl.py``), trying upsample 0, then 1: 392 found without padding,
    396 with 25% grey padding (edge-replicated padding: also 396, with lower rank-1 in a one-off
    comparison), 398 with 50% padding and upsample up to 2. Padding also makes the boxes
    consistent: closed-set rank-1 (enrolling 1.pgm / 2.pgm / 3.pgm, photos without a face counted
    as misses) rose from 0.978 / 0.956 / 0.953 without padding to 0.989 / 0.989 / 0.983 with it.

    ``whole_image_fallback`` (off by default): when nothing is detected, the landmark predictor is
    given a central box of the photo (:data:`FALLBACK_BOX`) as if it were the face. It suits folders
    known to hold one face crop per photo; in a general gallery it would embed photos without a
    face (a landscape, a cat), so the default is to raise :class:`NoFaceError` instead. Such
    records say ``found=False`` and ``backend="dlib-resnet/whole-image"``. On ORL it rescued 1 of the
    4 undetected photos (closed-set rank-1 0.989 -> 0.992): the other 3 are a profile, a face turned
    up and a small off-centre face, which a central box does not hold.

    Very large photos are searched for faces on a copy scaled down to ``max_side`` pixels (a 12 MP
    photo costs about 1 s per detection pass at full size, 4x that per upsampling); landmarks and
    the chip are always computed at full resolution. ``detector="cnn"`` or ``"hog+cnn"`` uses dlib's
    CNN face detector (alone, or only where HOG finds nothing) on a copy scaled down to
    ``cnn_max_side``; its faces are recorded as ``dlib-resnet/cnn``. ``detector="yunet"`` finds the face
    with OpenCV's YuNet (:mod:`.yunet`: turned and small faces too, a few milliseconds a photo) and cuts the
    chip from YuNet's five points, placed where dlib's mean face has them (:data:`.mean_face.YUNET_CHIP_FACE`), by
    dlib's own chip extraction (no shape predictor); records say ``dlib-resnet/yunet``. ``size`` other than 150 cuts the
    same region of the face at another resolution (e.g. 112: a distilled student that sees what
    dlib's network sees, at the cost of a small network). dlib objects are not
    thread-safe: one aligner per thread (a worker process builds its own: the aligner pickles as
    its settings).

    Args:
        upsample: how many 2x upsamplings of the photo to try, in turn, while no face is found
            (each finds faces half as small, for about 4x the time).
        whole_image_fallback: when no face is detected, treat a central box of the photo as the face.
        pad: grey border added on each side before detection, as a fraction of the photo's size.
        max_side: HOG detection runs on a copy scaled down to at most this many pixels per side.
        detector: ``hog`` (default), ``cnn``, ``hog+cnn`` or ``yunet`` (YuNet's box and five points, with
            its own settings: ``upsample``, ``pad`` and ``max_side`` are dlib's detectors').
        cnn_max_side: the CNN detector runs on a copy scaled down to at most this many pixels per side.
    """

    name = "dlib-resnet"

    def __init__(
        self,
        size: int = CHIP_SIZE,
        channels: int = 3,
        upsample: int = 1,
        whole_image_fallback: bool = False,
        pad: float = 0.25,
        max_side: int = 1280,
        detector: str = "hog",
        cnn_max_side: int = CNN_MAX_SIDE,
    ) -> None:
        super().__init__(size, channels)
        if channels != 3:
            raise ValueError(f"dlib's face chip is RGB (3 channels), not {channels}")
        dlib = load_dlib()
        self._dlib = dlib
        self.finder = DlibFaceFinder(detector, upsample, pad, max_side, cnn_max_side)
        self.predictor = dlib.shape_predictor(str(dlib_model_dir() / "shape_predictor_5_face_landmarks.dat"))
        self.upsample, self.whole_image_fallback, self.pad, self.max_side = (
            upsample,
            whole_image_fallback,
            pad,
            max_side,
        )
        self.detector, self.cnn_max_side = detector, cnn_max_side

    def detect(self, pixels: np.ndarray) -> tuple[list[Box], list[float]]:
        """Face boxes (left, top, right, bottom) in ``pixels``' coordinates and their detector scores.

        Scales the photo down to ``max_side``, pads it with grey, then tries upsampling 0, 1, ...
        ``upsample`` until some face is found (then the CNN likewise, when ``detector`` names it);
        returns empty lists when none is.
        """
        found = self.finder(pixels)
        return found.boxes, found.scores

    def detect_and_crop(self, rgb: Image.Image) -> tuple[np.ndarray, Detection]:
        """The ``size`` x ``size`` chip (150: dlib's) of the photo's main face (the largest, most central:
        :func:`pick_face`)."""
        pixels = np.asarray(rgb, dtype=np.uint8)
        found = self.finder(pixels)
        width, height = rgb.size
        score: float | None
        points = None  # the face's five points when the detector marks them (YuNet)
        if found.boxes:
            if found.landmarks is None:
                best = pick_face(found.boxes, width, height)
            else:  # YuNet's: its main face, and the chip from its five points
                best = main_face(found.boxes, found.scores, width, height)
                points = found.landmarks[best]
            box, score, backend = found.boxes[best], found.scores[best], backend_name(self.name, found.detector)
        elif self.whole_image_fallback and pixels.std() >= 2.0:
            side, cy = FALLBACK_BOX[0] * min(width, height), FALLBACK_BOX[1] * height
            box = (width / 2 - side / 2, cy - side / 2, width / 2 + side / 2, cy + side / 2)
            score, backend = None, f"{self.name}/whole-image"
        else:
            blank = " (the photo is blank)" if pixels.std() < 2.0 else ""
            raise NoFaceError(f"no face found by {self.finder.describe(width, height)}{blank}")
        chip, landmarks = self._chip(pixels, box) if points is None else self._chip_from_points(pixels, box, points)
        kind = "dlib5" if points is None else "five"
        pose = pose_record(landmarks, kind, (width, height)) if found.boxes else None  # not on a guessed box
        det = Detection(
            backend,
            bool(found.boxes),
            [float(v) for v in box],
            score,
            landmarks,
            len(found.boxes),
            [width, height],
            pose,
        )
        return chip, det

    def _chip(self, pixels: np.ndarray, box: tuple[float, float, float, float]) -> tuple[np.ndarray, list]:
        """Chip and 5 landmarks of the face in ``box``, computed on a grey-filled region around it.

        The region extends past the photo's border with the same grey as the detection padding,
        so faces cut by the border of a tight crop are treated alike in both steps.
        """
        region, left, top = _region(pixels, box)
        rect = self._dlib.rectangle(
            round(box[0] - left), round(box[1] - top), round(box[2] - left), round(box[3] - top)
        )
        shape = self.predictor(region, rect)
        landmarks = [[float(shape.part(i).x + left), float(shape.part(i).y + top)] for i in range(5)]
        chip = np.asarray(self._dlib.get_face_chip(region, shape, size=self.size, padding=CHIP_PADDING), np.uint8)
        return chip, landmarks

    def _chip_from_points(self, pixels: np.ndarray, box: Box, points: np.ndarray) -> tuple[np.ndarray, list]:
        """Chip of the face in ``box`` whose five points (facemetric's order) are ``points``
        (:func:`chip_from_points`), and the points."""
        return chip_from_points(self._dlib, pixels, box, points, self.size), [[float(x), float(y)] for x, y in points]


def chip_from_points(dlib: Any, pixels: np.ndarray, box: Box, points: np.ndarray, size: int) -> np.ndarray:
    """dlib's ``size`` x ``size`` face chip of the face in ``box`` whose five points (facemetric's order: YuNet's)
    are ``points``: what ``get_face_chip`` does with its own landmarks (a similarity transform from the chip's
    points, :data:`.mean_face.YUNET_CHIP_FACE`, to the photo's; dlib's bilinear extraction on an image pyramid), on the
    grey-filled region around the box (:func:`_region`)."""
    region, left, top = _region(pixels, box)
    chip_points = (CHIP_PADDING + YUNET_CHIP_FACE) / (2 * CHIP_PADDING + 1) * size
    details = dlib.chip_details(
        dlib.dpoints([dlib.dpoint(float(x), float(y)) for x, y in chip_points]),
        dlib.dpoints([dlib.dpoint(float(x) - left, float(y) - top) for x, y in points]),
        dlib.chip_dims(size, size),
    )
    return np.asarray(dlib.extract_image_chip(region, details), np.uint8)


def _region(pixels: np.ndarray, box: Box) -> tuple[np.ndarray, int, int]:
    """The box enlarged by :data:`REGION_MARGIN` of its side per edge, cut from the photo and filled with
    grey where it passes the photo's border, with its top-left corner in the photo's pixels."""
    margin = REGION_MARGIN * max(box[2] - box[0], box[3] - box[1])
    left, top = int(np.floor(box[0] - margin)), int(np.floor(box[1] - margin))
    right, bottom = int(np.ceil(box[2] + margin)), int(np.ceil(box[3] + margin))
    region = np.full((bottom - top, right - left, 3), GREY, dtype=np.uint8)
    src_x0, src_y0 = max(left, 0), max(top, 0)
    src_x1, src_y1 = min(right, pixels.shape[1]), min(bottom, pixels.shape[0])
    region[src_y0 - top : src_y1 - top, src_x0 - left : src_x1 - left] = pixels[src_y0:src_y1, src_x0:src_x1]
    return region, left, top
