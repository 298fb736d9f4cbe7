"""Face geometry shared by the landmark aligners: the 112x112 five-point template, the similarity
transform onto it (rotation, uniform scale, translation: the face is never sheared), the warp, a
square crop around a box, and which of several faces to keep."""

from __future__ import annotations

import numpy as np
from PIL import Image

# The five reference points (left eye, right eye, nose tip, left and right mouth corner) of
# the 112x112 face crop used by ArcFace / insightface (arcface_torch's `arcface_dst`).
TEMPLATE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float64,
)


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
