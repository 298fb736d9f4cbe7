"""Decode one image file into a fixed-size uint8 array, or say exactly why it cannot be.

Preprocessing is described by :class:`ImageSpec` (stored in every checkpoint so that
evaluation and deployment see images exactly as training did).
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError


@dataclass(frozen=True)
class ImageSpec:
    """How a file becomes a model input.

    ``crop`` keeps the central fraction of the image first (LFW's deep-funneled 250x250
    images hold the face in roughly the central 0.6); the result is then resized to
    ``height`` x ``width``, cropping the excess so the aspect ratio is not distorted.
    """

    height: int = 64
    width: int = 64
    channels: int = 3
    crop: float = 1.0

    def __post_init__(self) -> None:
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {self.channels}")
        if not 0.05 <= self.crop <= 1.0:
            raise ValueError(f"crop must be a fraction in (0.05, 1], got {self.crop}")
        if self.height < 8 or self.width < 8:
            raise ValueError(f"image size must be at least 8x8, got {self.height}x{self.width}")

    def to_dict(self) -> dict:
        return asdict(self)


class ImageDecodeError(Exception):
    """A file is not a readable image; the message says why."""


def _crop_box(w: int, h: int, spec: ImageSpec) -> tuple[float, float, float, float]:
    """Central ``crop`` fraction, then the largest centred box with the target aspect ratio."""
    cw, ch = w * spec.crop, h * spec.crop
    target = spec.width / spec.height
    if cw / ch > target:
        cw = ch * target
    else:
        ch = cw / target
    left, top = (w - cw) / 2, (h - ch) / 2
    return left, top, left + cw, top + ch


def load_image(path: str | Path, spec: ImageSpec) -> np.ndarray:
    """Decode ``path`` into a (height, width, channels) uint8 array following ``spec``.

    Raises :class:`ImageDecodeError` with a human reason for empty, truncated, corrupt or
    non-image files.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ImageDecodeError(f"cannot read file: {exc.strerror or exc}") from exc
    if size == 0:
        raise ImageDecodeError("empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                # JPEG: let libjpeg decode at a reduced scale when the target is much smaller.
                img.draft("RGB", (spec.width * 2, spec.height * 2))
                img = img.convert("RGB" if spec.channels == 3 else "L")
                img.load()
    except UnidentifiedImageError:
        raise ImageDecodeError("not an image Pillow can read (unknown or corrupt format)") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombWarning) as exc:
        raise ImageDecodeError(f"corrupt or truncated image: {exc}") from None
    box = _crop_box(img.width, img.height, spec)
    img = img.resize((spec.width, spec.height), Image.Resampling.BILINEAR, box=box, reducing_gap=2.0)
    array = np.asarray(img, dtype=np.uint8)
    return array[:, :, None] if array.ndim == 2 else array
