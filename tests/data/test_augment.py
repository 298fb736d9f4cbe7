from __future__ import annotations

import numpy as np
import pytest
import torch

from facemetric.data.augment import AugmentConfig, augment, to_tensor

OFF = dict(flip=False, shift=0.0, rotate=0.0, scale=0.0, brightness=0.0, contrast=0.0)


def _batch() -> torch.Tensor:
    return to_tensor(np.random.default_rng(0).integers(0, 256, (6, 16, 20, 3), dtype=np.uint8))


def test_to_tensor_range_and_layout() -> None:
    x = to_tensor(np.array([[[[0, 128, 255]]]], dtype=np.uint8))
    assert x.shape == (1, 3, 1, 1)
    assert x.flatten().tolist() == pytest.approx([-1.0, 128 / 255 * 2 - 1, 1.0], abs=1e-6)


def test_disabled_augmentation_is_identity() -> None:
    x = _batch()
    assert torch.equal(augment(x, AugmentConfig(**OFF)), x)


def test_flip_only_mirrors_exactly() -> None:
    x = _batch()
    out = augment(x, AugmentConfig(**{**OFF, "flip": True}), torch.Generator().manual_seed(1))
    flipped = torch.flip(x, dims=[3])
    kinds = [torch.allclose(o, a, atol=1e-5) or torch.allclose(o, f, atol=1e-5) for o, a, f in zip(out, x, flipped)]
    assert all(kinds)
    assert any(torch.allclose(o, f, atol=1e-5) for o, f in zip(out, flipped))


def test_deterministic_per_generator_and_bounded() -> None:
    x, cfg = _batch(), AugmentConfig()
    a = augment(x, cfg, torch.Generator().manual_seed(5))
    b = augment(x, cfg, torch.Generator().manual_seed(5))
    c = augment(x, cfg, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == x.shape and a.min() >= -1 and a.max() <= 1
