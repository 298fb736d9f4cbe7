"""One HPatches-style sequence made from one photo: keypoints, five target images and the 16 patch stacks.

:func:`make_sequence` is what ``facemetric protocol patches`` runs per photo (see
:mod:`facemetric.eval.patches.benchmark` for the benchmark around it). Coordinates are OpenCV's: pixel
centres at integers, a homography ``H`` maps a reference pixel to its place in a target.

* **Points**: OpenCV's SIFT (DoG) detector on the grey reference, strongest response first, a greedy
  spatial non-maximum suppression (no two points closer than half the larger measurement region's
  side), at most ``points``. The measurement region is an upright square of side ``magnification`` x
  the keypoint's diameter (``KeyPoint.size``, twice the detected scale: HPatches magnifies the scale 5
  times; clamped to :data:`REGION_PX`). A point is kept only if its region, grown to the largest
  tough jitter, lies inside the reference and all five targets.
* **Targets**: ``v`` (viewpoint): a random homography per target (corner displacement, rotation,
  scale about the centre, growing from target 1 to 5, most of the photo staying in view) applied with
  ``cv2.warpPerspective``, then a mild photometric change. ``i`` (illumination): the same view shaken
  by under half a pixel, with a strong photometric change: colour channels re-weighted before the grey
  conversion, gamma, a smooth multiplicative illumination field (a random 4x4 log-field upsampled,
  plus a linear ramp), gain and offset. Both add Gaussian noise and are JPEG re-encoded.
* **Patches**: 65x65, bilinear (``cv2.remap``, border replicate) on the grid that maps the point's
  region through a per-patch jitter affine about the point and then the target's homography; a patch
  taken from a region more than twice its size is read from an image pyramid level, so it is not
  aliased. ``ref`` has no jitter; ``eK``, ``hK``, ``tK`` are target K with the jitter of :data:`JITTER`
  (each level and target drawn on its own), each parameter uniform in +- its level's value:

  =====  ========  =====  ==========  ===================  ==============
  level  rotation  scale  anisotropy  shift (of the side)  median overlap
  =====  ========  =====  ==========  ===================  ==============
  e      10 deg    10 %   10 %        6 %                  0.85
  h      20 deg    25 %   15 %        12 %                 0.72
  t      30 deg    35 %   25 %        16 %                 0.62
  =====  ========  =====  ==========  ===================  ==============

  The release gives no values, only median overlaps of about 0.85 (easy) and 0.72 (hard) of a region's
  ellipse with its jittered image; these levels are this project's, chosen to match them.

Every random draw comes from ``numpy.random.default_rng([seed, key, purpose, ...])``, ``key`` being
the photo's own (from its path), so a sequence does not depend on the other photos; no OpenCV call
used here depends on its thread count (SIFT's keypoints are sorted here, whatever order they come in).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import ModuleType

import numpy as np

from facemetric.core.errors import FacemetricError
from facemetric.data.hpatches import PATCH

TARGETS = 5
REGION_PX = (16.0, 256.0)  # the measurement region's side is clamped to this range of reference pixels
MIN_PHOTO_SIDE = 64  # pixels: a smaller photo holds no region that stays in view
LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R 601 grey, as Pillow's convert("L")


@dataclass(frozen=True)
class Jitter:
    """The largest per-patch frame noise of one level, each drawn uniformly in +-its value: rotation
    (degrees), isotropic scale (fraction), anisotropic scale along a random axis (fraction), and shift
    of each coordinate (fraction of the region's side)."""

    rotation: float
    scale: float
    anisotropy: float
    shift: float

    def reach(self) -> float:
        """How far (in region sides) from the point a jittered region's corner can be: the bound the
        kept points' regions must stay inside the image with."""
        return math.sqrt(0.5) * (1 + self.scale) * (1 + self.anisotropy) + math.sqrt(2) * self.shift


# This project's levels (see the module's docstring); median overlap: intersection over union of the region's
# inscribed disc and its jittered image. Written out in `facemetric protocol patches --help` too.
JITTER = {
    "e": Jitter(rotation=10.0, scale=0.10, anisotropy=0.10, shift=0.06),
    "h": Jitter(rotation=20.0, scale=0.25, anisotropy=0.15, shift=0.12),
    "t": Jitter(rotation=30.0, scale=0.35, anisotropy=0.25, shift=0.16),
}


class UnusablePhoto(FacemetricError):
    """A photo that cannot make a sequence (too small, too few keypoints); the message is the reason."""


@dataclass
class Sequence:
    """One sequence: the kept points (n, 2) in reference pixels, their regions' sides (n,), the five
    homographies (5, 3, 3) from the reference to each target, the five target images and the patch
    stacks (``ref``, ``e1`` ... ``t5`` -> (n, 65, 65) uint8)."""

    kind: str
    points: np.ndarray
    sides: np.ndarray
    homographies: np.ndarray
    targets: list[np.ndarray]
    stacks: dict[str, np.ndarray]


def to_grey(rgb: np.ndarray, weights: np.ndarray = LUMA) -> np.ndarray:
    """(h, w) float32 grey of an (h, w, 3) RGB image, its channels weighted by ``weights`` (element-wise,
    not a BLAS product, whose threads could change the last bit)."""
    x, w = np.asarray(rgb, np.float32), np.asarray(weights, np.float32)
    return x[..., 0] * w[0] + x[..., 1] * w[1] + x[..., 2] * w[2]


def to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def _project_xy(h: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points (x, y) mapped by the homography ``h`` and their homogeneous weights (positive: in front);
    element-wise, not a BLAS product, so no thread count changes a bit."""
    w = h[2, 0] * x + h[2, 1] * y + h[2, 2]
    return (h[0, 0] * x + h[0, 1] * y + h[0, 2]) / w, (h[1, 0] * x + h[1, 1] * y + h[1, 2]) / w, w


def _project(h: np.ndarray, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Points (..., 2) mapped by the homography ``h``, and their homogeneous weights."""
    px, py, w = _project_xy(h, xy[..., 0], xy[..., 1])
    return np.stack([px, py], -1), w


def _homography(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The homography taking the four points ``src`` to ``dst`` (the direct linear 8x8 solve)."""
    rows, rhs = [], []
    for (x, y), (u, v) in zip(src, dst):
        rows += [[x, y, 1, 0, 0, 0, -u * x, -u * y], [0, 0, 0, x, y, 1, -v * x, -v * y]]
        rhs += [u, v]
    return np.append(np.linalg.solve(np.array(rows), np.array(rhs)), 1.0).reshape(3, 3)


def view_homography(rng: np.random.Generator, w: int, h: int, strength: float) -> np.ndarray:
    """A random viewpoint change of a w x h photo: each corner displaced up to 8% of the side, then a
    rotation up to 15 degrees and a scale in [1/1.15, 1.15] about the centre, all times ``strength``."""
    corners = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], np.float64)
    centre = corners.mean(0)
    moved = corners + rng.uniform(-1, 1, (4, 2)) * 0.08 * strength * np.array([w, h])
    angle = math.radians(rng.uniform(-15, 15) * strength)
    scale = math.exp(rng.uniform(-1, 1) * math.log(1.15) * strength)
    c, s = math.cos(angle), math.sin(angle)
    moved = centre + np.einsum("ij,kj->ki", scale * np.array([[c, -s], [s, c]]), moved - centre)
    return _homography(corners, moved)


def _target(
    cv2: ModuleType, rgb: np.ndarray, kind: str, rng: np.random.Generator, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Target ``k`` (1..5): its homography from the reference and its uint8 grey image."""
    h, w = rgb.shape[:2]
    strong = kind == "i"
    if strong:
        homography = np.eye(3)
        homography[:2, 2] = rng.uniform(-0.5, 0.5, 2)  # a sub-pixel shake of the fixed camera
        weights = LUMA * np.exp(rng.uniform(-0.6, 0.6, 3)).astype(np.float32)
        weights /= weights.sum()
    else:
        homography = view_homography(rng, w, h, 0.4 + 0.12 * k)
        weights = LUMA
    grey = cv2.warpPerspective(
        to_grey(rgb, weights), homography, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    )
    x = np.clip(grey / 255.0, 0.0, 1.0) ** math.exp(rng.uniform(-1, 1) * math.log(2.0 if strong else 1.1))
    if strong:
        log_field = cv2.resize(rng.normal(0, 0.35, (4, 4)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
        ramp = rng.uniform(-0.8, 0.8, 2)
        log_field += (ramp[0] * (np.arange(w) / w - 0.5))[None, :] + (ramp[1] * (np.arange(h) / h - 0.5))[:, None]
        x = x * np.exp(log_field)
    gain = rng.uniform(0.6, 1.4) if strong else rng.uniform(0.9, 1.1)
    offset = rng.uniform(-0.12, 0.12) if strong else rng.uniform(-0.04, 0.04)
    noise = rng.uniform(0.005, 0.02) if strong else rng.uniform(0.002, 0.01)
    x = (gain * x + offset + noise * rng.standard_normal((h, w), dtype=np.float32)) * 255.0
    quality = int(rng.integers(40, 96) if strong else rng.integers(60, 96))
    ok, jpeg = cv2.imencode(".jpg", to_uint8(x), [cv2.IMWRITE_JPEG_QUALITY, quality])
    return homography, cv2.imdecode(jpeg, cv2.IMREAD_GRAYSCALE)


def detect(cv2: ModuleType, grey: np.ndarray, magnification: float) -> tuple[np.ndarray, np.ndarray]:
    """SIFT keypoints of ``grey`` strongest first (ties broken by position and size, so the order does not
    depend on OpenCV's threads): their (m, 2) positions and measurement regions' sides."""
    keypoints = cv2.SIFT_create().detect(grey, None)
    rows = sorted((-kp.response, kp.pt[0], kp.pt[1], kp.size) for kp in keypoints)
    table = np.array(rows, np.float64).reshape(-1, 4)
    return table[:, 1:3], np.clip(magnification * table[:, 3], *REGION_PX)


def select_points(
    xy: np.ndarray, sides: np.ndarray, homographies: np.ndarray, shape: tuple[int, int], points: int
) -> np.ndarray:
    """Indices of the kept candidates (given strongest first): regions grown to the tough jitter's reach
    inside the reference and every target, then a greedy suppression of points closer than half a side."""
    h, w = shape
    radius = sides * JITTER["t"].reach()
    square = xy[:, None, :] + radius[:, None, None] * np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]])
    inside = np.ones(len(xy), bool)
    for hom in [np.eye(3), *homographies]:  # a homography maps the square to the quadrilateral of its corners
        p, weight = _project(hom, square)
        x, y = p[..., 0], p[..., 1]
        inside &= ((weight > 0) & (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)).all(1)
    kept: list[int] = []
    for i in np.flatnonzero(inside):
        if len(kept) == points:
            break
        gap = np.hypot(*(xy[kept] - xy[i]).T) if kept else np.empty(0)
        if np.all(gap >= 0.5 * np.maximum(sides[kept], sides[i])):
            kept.append(int(i))
    return np.array(kept, np.int64)


def draw_jitter(rng: np.random.Generator, jitter: Jitter, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random jitter affines of one level: (n, 2, 2) linear parts and (n, 2) shifts in region sides."""
    angle = np.radians(rng.uniform(-jitter.rotation, jitter.rotation, n))
    scale = 1 + rng.uniform(-jitter.scale, jitter.scale, n)
    stretch = rng.uniform(-jitter.anisotropy, jitter.anisotropy, n)
    axis = rng.uniform(0, np.pi, n)
    shift = rng.uniform(-jitter.shift, jitter.shift, (n, 2))

    def rot(a: np.ndarray) -> np.ndarray:
        return np.stack([np.stack([np.cos(a), -np.sin(a)], -1), np.stack([np.sin(a), np.cos(a)], -1)], -2)

    diag = np.zeros((n, 2, 2))
    diag[:, 0, 0], diag[:, 1, 1] = 1 + stretch, 1 - stretch
    linear = np.einsum("nij,njk,nkl,nml->nim", rot(angle), rot(axis), diag, rot(axis))  # R(a) R(b) D R(b)^T
    return scale[:, None, None] * linear, shift


def pyramid(cv2: ModuleType, image: np.ndarray, levels: int = 4) -> list[np.ndarray]:
    """``image`` as float32 and its ``cv2.pyrDown`` halvings (pixel x of level l is pixel x * 2**l)."""
    out = [np.asarray(image, np.float32)]
    while len(out) <= levels and min(out[-1].shape) >= 2 * PATCH:
        out.append(cv2.pyrDown(out[-1]))
    return out


def sample_patches(
    cv2: ModuleType,
    levels: list[np.ndarray],
    xy: np.ndarray,
    sides: np.ndarray,
    homography: np.ndarray | None = None,
    linear: np.ndarray | None = None,
    shift: np.ndarray | None = None,
) -> np.ndarray:
    """(n, 65, 65) uint8 patches: the upright square region (centre ``xy``, side ``sides``) of the reference,
    moved by the jitter affine (``linear`` about the point, then ``shift`` in sides), mapped by ``homography``
    into the image whose pyramid is ``levels``, sampled bilinearly with replicated borders."""
    n = len(xy)
    hom = np.eye(3) if homography is None else homography
    lin = np.broadcast_to(np.eye(2), (n, 2, 2)) if linear is None else linear
    move = np.zeros((n, 2)) if shift is None else shift
    grid = (np.arange(PATCH) - PATCH // 2) / PATCH  # pixel centres in region sides
    ox, oy = (g.ravel() for g in np.meshgrid(grid, grid))  # (65*65,) each, row-major
    rx = xy[:, :1] + sides[:, None] * (lin[:, 0, :1] * ox + lin[:, 0, 1:] * oy + move[:, :1])
    ry = xy[:, 1:] + sides[:, None] * (lin[:, 1, :1] * ox + lin[:, 1, 1:] * oy + move[:, 1:])
    px, py, _ = _project_xy(hom, rx, ry)
    # pixels per patch pixel at the centre: the jitter's and the homography's local area scales
    centre, wc = _project(hom, xy + sides[:, None] * move)
    jac = (hom[None, :2, :2] - centre[:, :, None] * hom[None, 2:, :2]) / wc[:, None, None]
    step = sides / PATCH * np.sqrt(np.abs(np.linalg.det(lin) * np.linalg.det(jac)))
    level = np.clip(np.floor(np.log2(np.maximum(step, 1.0))), 0, len(levels) - 1).astype(np.int64)
    out = np.empty((n, PATCH, PATCH), np.uint8)
    for lv in np.unique(level):
        rows = np.flatnonzero(level == lv)
        map_x, map_y = ((p[rows] / 2.0**lv).astype(np.float32).reshape(-1, PATCH) for p in (px, py))
        sampled = cv2.remap(levels[lv], map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        out[rows] = to_uint8(sampled).reshape(len(rows), PATCH, PATCH)
    return out


def make_sequence(
    cv2: ModuleType,
    rgb: np.ndarray,
    kind: str,
    key: list[int],
    *,
    points: int = 100,
    magnification: float = 5.0,
    min_points: int = 10,
) -> Sequence:
    """The sequence of one (h, w, 3) uint8 photo, ``kind`` ``i`` or ``v``, every draw seeded from ``key``
    (``[seed, photo key]``). Raises :class:`UnusablePhoto` when fewer than ``min_points`` points are usable."""
    if min(rgb.shape[:2]) < MIN_PHOTO_SIDE:
        raise UnusablePhoto(
            f"too small: {rgb.shape[1]}x{rgb.shape[0]} pixels (at least {MIN_PHOTO_SIDE} per side needed)"
        )
    reference = to_uint8(to_grey(rgb))
    targets = [_target(cv2, rgb, kind, np.random.default_rng([*key, 1, k]), k) for k in range(1, TARGETS + 1)]
    homographies = np.stack([hom for hom, _ in targets])
    xy, sides = detect(cv2, reference, magnification)
    kept = select_points(xy, sides, homographies, reference.shape, points)
    if not len(xy):
        raise UnusablePhoto("no SIFT keypoint at all (a flat or textureless photo)")
    if len(kept) < min_points:
        raise UnusablePhoto(
            f"only {len(kept)} usable keypoints (at least {min_points} needed: textured, and far enough from the "
            f"border for their regions to stay in view; {len(xy)} detected)"
        )
    xy, sides = xy[kept], sides[kept]
    stacks = {"ref": sample_patches(cv2, pyramid(cv2, reference), xy, sides)}
    for k, (hom, image) in enumerate(targets, start=1):
        levels = pyramid(cv2, image)
        for li, (level, jitter) in enumerate(JITTER.items()):
            linear, shift = draw_jitter(np.random.default_rng([*key, 2, li, k]), jitter, len(xy))
            stacks[f"{level}{k}"] = sample_patches(cv2, levels, xy, sides, hom, linear, shift)
    return Sequence(kind, xy, sides, homographies, [image for _, image in targets], stacks)
