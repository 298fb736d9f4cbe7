"""Aligners without a detector: the whole photo (``none``) or its central fraction (``center``) for
pre-aligned photos."""

from __future__ import annotations

import numpy as np
from PIL import Image

from facemetric.core.faces import Detection
from facemetric.core.spec import ImageSpec
from facemetric.data.align.base import Aligner, register_aligner
from facemetric.data.images import resize_crop


@register_aligner("none")
class ResizeAligner(Aligner):
    """No detection: the whole photo, centre-cropped to a square and resized."""

    name = "none"

    def detect_and_crop(self, rgb: Image.Image) -> tuple[np.ndarray, Detection]:
        return _square(rgb, self.size, 1.0), Detection(self.name, True, [0.0, 0.0, float(rgb.width), float(rgb.height)])


@register_aligner("center")
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
