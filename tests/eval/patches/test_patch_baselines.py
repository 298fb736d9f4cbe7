"""The raw-pixel and SIFT patch baselines: their invariances, shapes and the describer lookup."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from facemetric.core.errors import MissingDependencyError, UnknownNameError
from facemetric.eval.patches.baselines import (
    PatchDescriberError,
    patch_describer,
    raw_pixels,
    sift,
    sift_keypoint_size,
)
from hpatches_fakes import texture


def test_raw_pixels_ignore_a_brightness_gain_and_offset() -> None:
    base = texture(0)[:32, :32].astype(np.float64) * 0.5 + 40  # grey levels 40..168, room for a gain
    patches = [base, base * 1.4 + 12, base * 0.7 + 60, base + 80]
    x = np.stack([np.clip(np.round(p), 0, 255).astype(np.uint8) for p in patches])[..., None]
    d = raw_pixels(x)
    assert d.shape == (4, 64) and d.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(d, axis=1), 1.0, atol=1e-6)
    assert np.abs(d[1:] - d[0]).max() < 0.01  # equal up to the uint8 rounding
    other = raw_pixels(texture(1)[None, :32, :32, None])
    assert np.linalg.norm(other[0] - d[0]) > 0.5
    flat = raw_pixels(np.full((1, 32, 32, 1), 77, np.uint8))[0]
    assert flat == pytest.approx(np.full(64, 1 / 8)) and abs(float(flat @ d[0])) < 1e-6  # orthogonal
    assert raw_pixels(x, side=16).shape == (4, 256)
    with pytest.raises(PatchDescriberError, match="uint8"):
        raw_pixels(x.astype(np.float32))


def test_sift_gives_unit_128_d_vectors_closer_for_a_shifted_copy_than_another_texture() -> None:
    pytest.importorskip("cv2")
    scene, other = texture(2), texture(3)
    patch = scene[10:75, 10:75]
    shifted = scene[12:77, 11:76]  # the same texture moved by (2, 1) pixels
    x = np.stack([patch, patch, shifted, other[10:75, 10:75]])[..., None]
    d = sift(x)
    assert d.shape == (4, 128) and d.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(d, axis=1), 1.0, atol=1e-6)
    assert np.array_equal(d[0], d[1])
    assert np.linalg.norm(d[0] - d[2]) < 0.5 * np.linalg.norm(d[0] - d[3])
    root = sift(x, root=True)
    np.testing.assert_allclose(np.linalg.norm(root, axis=1), 1.0, atol=1e-6)
    assert (root >= 0).all() and not np.allclose(root, d)
    assert np.linalg.norm(root[0] - root[2]) < np.linalg.norm(root[0] - root[3])


def test_sift_keypoint_size_follows_opencvs_window() -> None:
    # OpenCV: a grid of 4 cells of 1.5 x size each; the benchmark's size puts the sampling radius 5.303 x size at 65
    assert sift_keypoint_size(65) == pytest.approx(65 / 5.303)
    assert 6 * sift_keypoint_size(65) >= 65  # the descriptor grid covers the patch


def test_describers_by_name_and_opencv_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    assert patch_describer("raw").size == 32 and patch_describer("raw").dim == 64
    assert patch_describer("sift").size == 65 and patch_describer("rootsift").dim == 128
    with pytest.raises(UnknownNameError, match="raw, sift, rootsift"):
        patch_describer("surf")
    monkeypatch.setitem(sys.modules, "cv2", None)  # import cv2 now raises ImportError
    with pytest.raises(MissingDependencyError, match="pip install opencv-python-headless"):
        sift(np.zeros((1, 65, 65, 1), np.uint8))


def test_sift_keypoint_is_the_benchmarks_at_32_5() -> None:
    cv2 = pytest.importorskip("cv2")
    patch = texture(4)[:65, :65]
    # as hpatches-benchmark's python/extract_opencv_sift.py: centre PS / 2, size 2 (PS / 2) / 5.303
    keypoint = cv2.KeyPoint(32.5, 32.5, 65 / 5.303, 0.0)
    raw = cv2.SIFT_create().compute(patch, [keypoint])[1][0].astype(np.float64)
    mine = sift(patch[None, :, :, None])[0]
    np.testing.assert_allclose(mine, raw / np.linalg.norm(raw), atol=1e-6)
    # OpenCV rounds the keypoint to a pixel (cvRound: 32.5 -> 32, half to even), so the patch's own centre (32)
    # gives the same descriptor: facemetric's earlier choice changed no figure
    off = cv2.SIFT_create().compute(patch, [cv2.KeyPoint(32.0, 32.0, 65 / 5.303, 0.0)])[1][0]
    assert np.array_equal(off, raw.astype(np.float32))
