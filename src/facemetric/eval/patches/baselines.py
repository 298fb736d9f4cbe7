"""Two hand-made patch descriptors to put a learned one in context: raw pixels and SIFT (and RootSIFT).

Each describer maps (N, H, W, 1) uint8 grey patches to (N, D) float32 unit-length descriptors, compared
by L2 distance like any embedding. :func:`patch_describer` looks one up by name (``raw``, ``sift``,
``rootsift``) with the patch side it wants to be given.

* ``raw``: the patch shrunk to ``RAW_SIDE`` x ``RAW_SIDE`` by area averaging, standardised by its own
  mean and standard deviation (so it ignores any x -> a x + b change of brightness with a > 0), then
  L2-normalised: what a learned descriptor must beat before it has learned anything. 8 px (64-d), not
  16 or 32: on two pseudo releases cut from CelebA photos (``facemetric protocol patches``, 60 photos x
  100 points; and a cruder warp of 40 photos) the mean mAP of the three tasks plateaus from 6 to 11 px
  and drops by 0.6 to 1 point at 16 px and by 1 to 2 points at 32 px: the finer grid only adds pixels
  that the jitter moves. (Pseudo releases, not HPatches itself: measure again on the real one before
  quoting a side.)
* ``sift``: OpenCV's SIFT descriptor of one upright keypoint at the patch centre on the 65 x 65 release
  patches (HPatches patches are already in a common frame up to their jitter, so no orientation is
  estimated), placed and sized as hpatches-benchmark's OpenCV SIFT baseline (at 32.5, 32.5; see
  :func:`sift_keypoint_size`).
  ``rootsift`` (Arandjelovic & Zisserman, CVPR 2012) is its square root after L1 normalisation: the
  Hellinger kernel as an L2 distance.

OpenCV is optional (``pip install opencv-python-headless``); it is imported when SIFT is first used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from facemetric.core.errors import FacemetricError, MissingDependencyError, UnknownNameError

RAW_SIDE = 8  # the raw descriptor's side (64-d); see the module docstring
SIFT_PATCH = 65  # the side SIFT is computed at: the release's own patches
# How OpenCV's KeyPoint.size s sets the SIFT window (calcDescriptors and calcSIFTDescriptor in
# modules/features2d/src/sift.simd.hpp): at octave 0 the descriptor gets scl = s / 2, each of its d x d = 4 x 4
# cells is hist_width = SIFT_DESCR_SCL_FCTR x scl = 3 s / 2 pixels wide, so the grid spans 4 x 1.5 s = 6 s
# pixels, under a Gaussian weight of sigma = half the grid; samples up to half a cell beyond the grid reach the
# outer bins by interpolation, and it reads pixels within radius = hist_width x sqrt(2) x (d + 1) / 2 = 5.303 s
# of the centre (the rotated 5-cell square). A patch of side L is just covered by the grid at s = L / 6
# (10.83 for 65 px). hpatches-benchmark's python/extract_opencv_sift.py uses s = L / 5.303 (12.26; its radius
# formula set to L): a grid of 1.13 L, the outer cells partly outside the patch, where OpenCV reads nothing.
# That size is kept: published OpenCV-SIFT figures use it, and on the pseudo releases of the module docstring it
# scored 0.2 to 2 points above L / 6 on every task (most at the tough level), L / 7.5 (a grid inside the patch)
# 1.5 to 8 points below.
SIFT_SIZE_RATIO = 5.303  # KeyPoint.size = patch side / this
# The keypoint sits at (side / 2, side / 2), as in hpatches-benchmark's python/extract_opencv_sift.py, so that
# published OpenCV-SIFT figures are reproduced: OpenCV puts pixel centres at integer coordinates, so the patch's
# own centre is (side - 1) / 2 (32 at 65 px). OpenCV's calcSIFTDescriptor rounds the point to a pixel (cvRound,
# half to even: 32.5 -> 32), so at 65 px both give the same descriptor (checked in the tests).


class PatchDescriberError(FacemetricError, ValueError):
    """Patches a describer cannot take (wrong shape or type)."""


def _grey(images: Any) -> np.ndarray:
    """(N, H, W) uint8 of (N, H, W, 1) or (N, H, W) uint8 patches, or PatchDescriberError."""
    x = np.asarray(images)
    if x.ndim == 4 and x.shape[3] == 1:
        x = x[..., 0]
    if x.ndim != 3 or x.dtype != np.uint8:
        raise PatchDescriberError(f"patches must be (N, H, W, 1) uint8 grey, got {x.dtype} {np.asarray(images).shape}")
    return x


def _unit_rows(x: np.ndarray, blank: np.ndarray) -> np.ndarray:
    """Rows of ``x`` scaled to unit L2 length; an all-zero row becomes ``blank`` (a unit vector)."""
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return np.where(norm > 1e-12, x / np.maximum(norm, 1e-12), blank[None, :]).astype(np.float32)


def _shrink(x: np.ndarray, side: int) -> np.ndarray:
    """(N, H, W) patches averaged down (or up) to (N, side, side) float32: each output pixel is the mean of
    the input area it covers (torch's adaptive average pooling)."""
    import torch
    import torch.nn.functional as F

    t = torch.from_numpy(np.ascontiguousarray(x, np.float32))[:, None]
    if x.shape[1:] != (side, side):
        t = F.adaptive_avg_pool2d(t, side) if min(x.shape[1:]) >= side else F.interpolate(t, (side, side))
    return t[:, 0].numpy()


def raw_pixels(images: Any, side: int = RAW_SIDE) -> np.ndarray:
    """(N, side * side) unit descriptors: each patch shrunk to ``side`` px, standardised, flattened.

    A flat patch (no pattern to standardise) gets the uniform vector, orthogonal to every other
    descriptor (those sum to zero)."""
    x = _grey(images)
    out = np.empty((len(x), side * side), np.float32)
    blank = np.full(side * side, 1 / side, np.float32)
    for s in range(0, len(x), 4096):
        v = _shrink(x[s : s + 4096], side).reshape(-1, side * side).astype(np.float64)
        v -= v.mean(1, keepdims=True)
        std = v.std(1, keepdims=True)
        v = np.where(std > 1e-6, v / np.maximum(std, 1e-6), 0.0)
        out[s : s + 4096] = _unit_rows(v, blank)
    return out


def sift_keypoint_size(side: int) -> float:
    """The OpenCV ``KeyPoint.size`` for a ``side`` px patch: ``side / 5.303``, a descriptor grid of 1.13 ``side``."""
    return side / SIFT_SIZE_RATIO


def _cv2() -> Any:
    try:
        import cv2
    except ImportError:
        raise MissingDependencyError(
            "the sift and rootsift patch descriptors need OpenCV: pip install opencv-python-headless"
        ) from None
    return cv2


def sift(images: Any, root: bool = False) -> np.ndarray:
    """(N, 128) unit SIFT descriptors of one upright keypoint at each patch's centre (RootSIFT with ``root``).

    Each patch is described on its own, so nothing outside it (a neighbour in a stack) reaches the
    descriptor; a descriptor OpenCV leaves all zero becomes the uniform histogram."""
    cv2 = _cv2()
    x = _grey(images)
    if len(x) and x.shape[1] != x.shape[2]:
        raise PatchDescriberError(f"SIFT takes square patches, got {x.shape[1]}x{x.shape[2]}")
    extractor = cv2.SIFT_create()
    side = x.shape[1] if len(x) else SIFT_PATCH
    centre = side / 2  # as hpatches-benchmark's extract_opencv_sift.py (32.5 at 65 px): see above
    keypoint = [cv2.KeyPoint(centre, centre, sift_keypoint_size(side), 0.0)]
    out = np.empty((len(x), 128), np.float32)
    for k, patch in enumerate(x):
        kept, desc = extractor.compute(patch, keypoint)
        if desc is None or len(kept) != 1:
            raise PatchDescriberError(f"OpenCV SIFT dropped the keypoint of patch {k} ({side}x{side})")
        out[k] = desc[0]
    blank = np.full(128, 1 / np.sqrt(128), np.float32)
    if root:
        total = out.sum(1, keepdims=True)
        out = np.sqrt(np.where(total > 0, out / np.maximum(total, 1e-12), 0.0))
    return _unit_rows(out, blank)


@dataclass(frozen=True)
class PatchDescriber:
    """A named describer and the patch side it is given (the release's 65 px patches are resized to it)."""

    name: str
    size: int
    describe: Callable[[Any], np.ndarray]
    dim: int
    text: str  # what it is, in words (the report's subtitle)

    def __call__(self, images: Any) -> np.ndarray:
        return self.describe(images)


DESCRIBERS = {
    "raw": PatchDescriber(
        "raw", 32, raw_pixels, RAW_SIDE**2, f"raw pixels: {RAW_SIDE}x{RAW_SIDE} area averages, standardised"
    ),
    "sift": PatchDescriber(
        "sift", SIFT_PATCH, sift, 128, f"OpenCV SIFT, upright, keypoint size {sift_keypoint_size(SIFT_PATCH):.2f}"
    ),
    "rootsift": PatchDescriber(
        "rootsift",
        SIFT_PATCH,
        lambda images: sift(images, root=True),
        128,
        f"RootSIFT of OpenCV SIFT, upright, keypoint size {sift_keypoint_size(SIFT_PATCH):.2f}",
    ),
}


def patch_describer(name: str) -> PatchDescriber:
    """The baseline describer ``name`` (raw, sift or rootsift)."""
    if name not in DESCRIBERS:
        raise UnknownNameError(f"no patch describer {name!r}; the baselines are {', '.join(DESCRIBERS)}")
    return DESCRIBERS[name]
