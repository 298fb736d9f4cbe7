"""The face a gallery keeps of each enrolled photo (when asked to): enough to embed it again later.

Re-embedding a gallery with a new model must not mean asking every person to enrol again, yet a new
model may align faces differently (dlib's 150 px chips, a centre crop at 112, its own detector). So
the gallery keeps neither the old model's aligned crop nor (by default) the whole photo, but the
photo's region around the detected face with a wide margin: a square :data:`MARGIN` times the face
box, clipped to the photo, shrunk to at most :data:`MAX_SIDE` pixels, as JPEG. Any model's detector
finds the face in it again; a photo that is mostly face anyway (a passport-style or pre-aligned
photo) is kept whole, so a centre-crop model sees the framing it was trained on.
"""

from __future__ import annotations

import io
from typing import Any

from PIL import Image

MARGIN = 2.5  # side of the kept square, in face-box sides
MAX_SIDE = 400
QUALITY = 92


def face_region(detection: dict[str, Any], width: int, height: int) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the region kept around the detected face, inside the photo."""
    box = detection.get("box")
    if not detection.get("found", True) or not box:
        return 0, 0, width, height
    left, top, right, bottom = box
    side = MARGIN * max(right - left, bottom - top)
    cx, cy = (left + right) / 2, (top + bottom) / 2
    region = (
        max(0, int(cx - side / 2)),
        max(0, int(cy - side / 2)),
        min(width, int(round(cx + side / 2))),
        min(height, int(round(cy + side / 2))),
    )
    if region[2] - region[0] < 2 or region[3] - region[1] < 2:
        return 0, 0, width, height
    return region


def face_chip(image: Image.Image, detection: dict[str, Any]) -> bytes:
    """The JPEG kept of ``image`` around its detected face (see the module's docstring)."""
    chip = image.convert("RGB").crop(face_region(detection, *image.size))
    if max(chip.size) > MAX_SIDE:
        scale = MAX_SIDE / max(chip.size)
        chip = chip.resize(
            (max(1, round(chip.width * scale)), max(1, round(chip.height * scale))), Image.Resampling.LANCZOS
        )
    out = io.BytesIO()
    chip.save(out, format="JPEG", quality=QUALITY)
    return out.getvalue()
