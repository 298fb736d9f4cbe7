"""Choosing enrolment photos that cover the head's poses, and why the others were skipped.

Face unlock fails most where the probe's pose is far from every enrolled photo's (BENCHMARKS.md, the
face-unlock sections). Given many candidate faces (a video's frames, a burst of photos), this keeps
at most ``n`` spread over yaw and pitch: first the most frontal sharp face, then, again and again, the
face farthest in pose from every face kept (farthest-point sampling; ties go to the sharper face, then
the earlier one), so the result is deterministic and each face kept adds the pose least covered.

Before that, faces that would enrol badly are skipped with their reason: no face found, a face smaller
than ``min_face`` pixels, or one blurred past ``min_sharpness`` (:func:`sharpness`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

# the face region is resized to this side before its sharpness is measured, so the figure does not
# depend on the photo's resolution
SHARPNESS_SIDE = 112
# below this, a face is skipped as blurred: the variance of the Laplacian of the face region at
# SHARPNESS_SIDE pixels. Sharp faces of LFW and CelebA-199 (YuNet's boxes) measured 38 and 75 at their 5th
# percentile, the same faces blurred by 2 px (Gaussian, at 112 px) 11 and 16 at their 95th
# (tests/gallery/test_pose_spread.py checks it)
MIN_SHARPNESS = 20.0
MIN_FACE = 40  # pixels: the shorter side of the face's box
SPREAD_PHOTOS = 5  # photos kept per person by default: frontal, then the four poses least like it


@dataclass(frozen=True)
class FaceOffer:
    """One photo or frame offered for enrolment: its face's pose and quality, or why it has none."""

    source: str
    yaw: float | None = None
    pitch: float | None = None
    sharpness: float | None = None
    face_side: float | None = None
    problem: str | None = None  # set when the photo cannot be used at all (no face, unreadable)


def sharpness(image: Image.Image, box: Sequence[float]) -> float:
    """How sharp a face is: the variance of the Laplacian of its box's grey pixels, resized to
    :data:`SHARPNESS_SIDE` square (higher is sharper; a blurred face has few strong edges)."""
    left, top = max(0, round(float(box[0]))), max(0, round(float(box[1])))  # within the photo: a border
    right, bottom = min(image.width, round(float(box[2]))), min(image.height, round(float(box[3])))  # is an edge
    if right - left < 2 or bottom - top < 2:
        return 0.0
    region = image.convert("L").crop((left, top, right, bottom))
    grey = np.asarray(region.resize((SHARPNESS_SIDE, SHARPNESS_SIDE), Image.Resampling.BILINEAR), np.float64)
    lap = grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:] - 4 * grey[1:-1, 1:-1]
    return float(lap.var())


def reason_to_skip(c: FaceOffer, min_face: float = MIN_FACE, min_sharpness: float = MIN_SHARPNESS) -> str | None:
    """Why ``c`` should not be enrolled, or None when it can be."""
    if c.problem is not None:
        return c.problem
    if c.face_side is not None and c.face_side < min_face:
        return f"face too small: {c.face_side:.0f} px, at least {min_face:g} needed"
    if c.sharpness is not None and c.sharpness < min_sharpness:
        return f"blurred: sharpness {c.sharpness:.1f}, at least {min_sharpness:g} needed"
    return None


def _distance(a: FaceOffer, b: FaceOffer) -> float:
    return math.hypot((a.yaw or 0.0) - (b.yaw or 0.0), (a.pitch or 0.0) - (b.pitch or 0.0))


def pick_spread(candidates: Sequence[FaceOffer], n: int) -> list[int]:
    """Indices (in ``candidates``' order) of at most ``n`` candidates without a ``problem``, spread over
    pose (see the module's docstring). Candidates without a pose count as frontal."""
    if n < 1:
        raise ValueError(f"at least one photo must be kept, got n={n}")
    usable = [k for k, c in enumerate(candidates) if c.problem is None]
    if not usable:
        return []

    def quality(k: int) -> tuple[float, int]:  # sharper first, then earlier
        return (-(candidates[k].sharpness or 0.0), k)

    frontal = FaceOffer("", 0.0, 0.0)
    first = min(usable, key=lambda k: (round(_distance(candidates[k], frontal), 1), *quality(k)))
    kept = [first]
    nearest = {k: _distance(candidates[k], candidates[first]) for k in usable}
    while len(kept) < min(n, len(usable)):
        best = min((k for k in usable if k not in kept), key=lambda k: (-round(nearest[k], 1), *quality(k)))
        kept.append(best)
        for k in usable:
            nearest[k] = min(nearest[k], _distance(candidates[k], candidates[best]))
    return sorted(kept)


def choose(
    candidates: Sequence[FaceOffer], n: int, min_face: float = MIN_FACE, min_sharpness: float = MIN_SHARPNESS
) -> tuple[list[int], list[tuple[int, str]]]:
    """The candidates to enrol (at most ``n``, spread over pose) and those skipped with their reason:
    unusable (:func:`reason_to_skip`), or ``not needed`` where enough poses were covered."""
    reasons = {k: reason_to_skip(c, min_face, min_sharpness) for k, c in enumerate(candidates)}
    usable = [c if reasons[k] is None else FaceOffer(c.source, problem=reasons[k]) for k, c in enumerate(candidates)]
    kept = pick_spread(usable, n)
    skipped = [
        (k, reasons[k] or f"not needed: {n} photos spread over pose were kept")
        for k in range(len(candidates))
        if k not in kept
    ]
    return kept, skipped
