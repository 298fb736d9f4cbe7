"""Face detection and alignment backends: photo in, aligned square crop + detection record out.

Backends are registered by name (``none``, ``center``, ``opencv``, ``dlib``) and built with
:func:`build_aligner`. Each returns the crop (uint8, size x size x channels) and a
:class:`Detection` that says what was found, so every cached image can be traced back to the
box and landmarks it was cut from. Landmark backends warp the face onto the standard
five-point template of the ArcFace/insightface 112x112 crop with a similarity transform
(rotation, uniform scale, translation: the face is never sheared).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from facemetric.core.faces import Detection, NoFaceError
from facemetric.core.registry import Registry
from facemetric.core.spec import ImageSpec
from facemetric.data.images import ImageDecodeError, open_image, resize_crop

# The five reference points (left eye, right eye, nose tip, left and right mouth corner) of
# the 112x112 face crop used by ArcFace / insightface (arcface_torch's `arcface_dst`).
TEMPLATE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float64,
)


class Aligner:
    """Turns a decoded photo into an aligned crop; subclasses implement :meth:`detect_and_crop`.

    An aligner is re-created, not copied, when pickled (to run in a worker process): it pickles as
    its class and constructor arguments, which it must keep as attributes of the same names
    (``self.size``, ``self.fraction`` ...), and the worker builds its own detector objects from
    them (dlib and OpenCV objects cannot be pickled, nor shared between threads).
    """

    name = "base"

    def __init__(self, size: int = 112, channels: int = 3) -> None:
        self.size, self.channels = size, channels

    def __reduce__(self) -> tuple[Callable[..., Aligner], tuple[type[Aligner], dict[str, Any]]]:
        return _rebuild_aligner, (type(self), self.arguments())

    def arguments(self) -> dict[str, Any]:
        """The constructor arguments that build this aligner again (read from its attributes)."""
        params = inspect.signature(type(self).__init__).parameters.values()
        named = [p.name for p in params if p.name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        missing = [name for name in named if not hasattr(self, name)]
        if missing:
            raise TypeError(
                f"aligner {type(self).__name__} cannot be re-created in another process: it does not keep its "
                f"constructor argument(s) {', '.join(missing)} as attributes of the same name"
            )
        return {name: getattr(self, name) for name in named}

    def __call__(self, img: Image.Image) -> tuple[np.ndarray, Detection]:
        """(size, size, channels) uint8 crop and its detection record; :class:`NoFaceError` if none."""
        img = ImageOps.exif_transpose(img)  # a photo opened without open_image may still be stored turned
        crop, det = self.detect_and_crop(img.convert("RGB"))
        det.image_size = [img.width, img.height]
        if self.channels == 1:
            crop = np.asarray(Image.fromarray(crop).convert("L"))[:, :, None]
        return crop, det

    def detect_and_crop(self, rgb: Image.Image) -> tuple[np.ndarray, Detection]:
        raise NotImplementedError


ALIGNERS: Registry[Callable[..., Aligner]] = Registry("aligner", injected=("size", "channels"))


def _rebuild_aligner(cls: type[Aligner], arguments: dict[str, Any]) -> Aligner:
    """Unpickling an aligner: build it again from its constructor arguments."""
    return cls(**arguments)


def crop_face_file(path: str, aligner: Aligner) -> tuple[np.ndarray | None, str | None, str | None, dict | None]:
    """(crop, skip kind, reason, detection record) for one photo file; never raises for a bad file."""
    try:
        img = open_image(path, 3)
    except ImageDecodeError as exc:
        return None, exc.kind, str(exc), None
    except Exception as exc:  # a decoder bug must not kill a long job: report it as this file's reason
        return None, "decoder error", f"{type(exc).__name__}: {exc}", None
    try:
        crop, det = aligner(img)
    except NoFaceError as exc:
        return (
            None,
            "no face found",
            str(exc),
            {"backend": aligner.name, "found": False, "image_size": [img.width, img.height]},
        )
    return crop, None, None, det.to_dict()


def build_aligner(name: str, size: int = 112, channels: int = 3, **options) -> Aligner:
    """The registered backend ``name`` producing ``size`` x ``size`` crops."""
    ALIGNERS.check_options(name, options, f"aligner {name}")
    return ALIGNERS.build(name, where=f"aligner {name}", size=size, channels=channels, **options)


CROP_BACKENDS = ("crop", "none", "center")  # ImageSpec.align values that need no detector


def aligner_for(spec: ImageSpec) -> Aligner | None:
    """The detector a model of ``spec`` needs on raw photos, or None when its crop is a fixed cut
    (the central fraction of :class:`ImageSpec`)."""
    if spec.align in CROP_BACKENDS:
        return None
    return build_aligner(spec.align, size=spec.height, channels=spec.channels)


@ALIGNERS.register("none")
class ResizeAligner(Aligner):
    """No detection: the whole photo, centre-cropped to a square and resized."""

    name = "none"

    def detect_and_crop(self, rgb: Image.Image) -> tuple[np.ndarray, Detection]:
        return _square(rgb, self.size, 1.0), Detection(self.name, True, [0.0, 0.0, float(rgb.width), float(rgb.height)])


@ALIGNERS.register("center")
class CenterAligner(Aligner):
    """Pre-aligned photos (LFW deep-funneled, ORL): keep the central ``fraction`` and resize.

    The default 0.55 keeps the face of LFW's 250x250 images (about 140 px around the centre).
    """

    name = "center"

    def __init__(self, size: int = 112, channels: int = 3, fraction: float = 0.55) -> None:
        super().__init__(size, channels)
        if not 0.05 <= fraction <= 1.0:
            raise ValueError(f"center fraction must be in [0.05, 1], got {fraction}")
        self.fraction = fraction

    def detect_and_crop(self, rgb: Image.Image) -> tuple[np.ndarray, Detection]:
        side = min(rgb.width, rgb.height) * self.fraction
        left, top = (rgb.width - side) / 2, (rgb.height - side) / 2
        return _square(rgb, self.size, self.fraction), Detection(self.name, True, [left, top, left + side, top + side])


def _square(rgb: Image.Image, size: int, fraction: float) -> np.ndarray:
    return resize_crop(rgb, ImageSpec(size, size, 3, fraction))


def pick_face(boxes: list[tuple[float, float, float, float]], width: int, height: int) -> int:
    """Index of the face to keep among several: the largest, discounted by distance from the centre.

    Score = area x (1 - d), where d is the centre offset as a fraction of the half-diagonal:
    a large face near the edge still beats a tiny one in the middle, two similar faces go to
    the more central one.
    """
    cx, cy, half_diag = width / 2, height / 2, 0.5 * float(np.hypot(width, height))

    def score(b: tuple[float, float, float, float]) -> float:
        area = max(b[2] - b[0], 0.0) * max(b[3] - b[1], 0.0)
        offset = float(np.hypot((b[0] + b[2]) / 2 - cx, (b[1] + b[3]) / 2 - cy)) / half_diag
        return area * max(1.0 - offset, 0.05)

    return max(range(len(boxes)), key=lambda i: score(boxes[i]))


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2x3 matrix of the least-squares similarity transform mapping ``src`` points onto ``dst``.

    Umeyama (1991) without reflection: the rotation, uniform scale and translation minimising
    ``sum |s R src_i + t - dst_i|^2``.
    """
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s_c, d_c = src - mu_s, dst - mu_d
    cov = d_c.T @ s_c / len(src)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[-1] = -1.0
    rot = u @ np.diag(sign) @ vt
    scale = float((sig * sign).sum() / s_c.var(0).sum())
    t = mu_d - scale * rot @ mu_s
    return np.hstack([scale * rot, t[:, None]])


def warp_to_template(
    rgb: Image.Image, landmarks: np.ndarray, size: int, template: np.ndarray = TEMPLATE_112
) -> np.ndarray:
    """Warp the photo so its landmarks land on ``template`` (112x112 coordinates) scaled to ``size``."""
    matrix = similarity_transform(landmarks, template * (size / 112.0))
    inverse = np.linalg.inv(np.vstack([matrix, [0.0, 0.0, 1.0]]))[:2]  # Pillow maps output -> input
    out = rgb.transform((size, size), Image.Transform.AFFINE, inverse.ravel().tolist(), Image.Resampling.BILINEAR)
    return np.asarray(out, dtype=np.uint8)


def crop_box(rgb: Image.Image, box: tuple[float, float, float, float], size: int, margin: float) -> np.ndarray:
    """A square crop around ``box`` enlarged by ``margin`` of its side, resized to ``size`` (edges replicate)."""
    side = max(box[2] - box[0], box[3] - box[1]) * (1.0 + margin)
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    scale = side / size
    coeffs = [scale, 0.0, cx - side / 2, 0.0, scale, cy - side / 2]
    out = rgb.transform((size, size), Image.Transform.AFFINE, coeffs, Image.Resampling.BILINEAR)
    return np.asarray(out, dtype=np.uint8)


def _register_optional_backends() -> None:
    # imported for their registration side effect; their heavy dependencies load lazily
    from facemetric.data import align_dlib, align_opencv  # noqa: F401


_register_optional_backends()
