from __future__ import annotations

import numpy as np
import pytest
import torch

from facemetric.data.augment import AugmentConfig, augment_batch, to_tensor

OFF = dict(flip=False, shift=0.0, rotate=0.0, scale=0.0, brightness=0.0, contrast=0.0, saturation=0.0)


def _images(n: int = 6, h: int = 16, w: int = 20, c: int = 3) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, h, w, c), dtype=np.uint8)


def _rng(seed: int = 1) -> np.random.Generator:
    return np.random.default_rng(seed)


def test_to_tensor_range_layout_and_statistics() -> None:
    x = to_tensor(np.array([[[[0, 128, 255]]]], dtype=np.uint8))
    assert x.shape == (1, 3, 1, 1)
    assert x.flatten().tolist() == pytest.approx([-1.0, 128 / 255 * 2 - 1, 1.0], abs=1e-6)
    y = to_tensor(np.array([[[[51, 102, 153]]]], dtype=np.uint8), mean=(0.2, 0.4, 0.6), std=(0.1, 0.2, 0.3))
    assert y.flatten().tolist() == pytest.approx([0.0, 0.0, 0.0], abs=1e-6)


def test_disabled_augmentation_equals_normalisation() -> None:
    images = _images()
    assert torch.allclose(augment_batch(images, AugmentConfig(**OFF), _rng()), to_tensor(images), atol=1e-5)
    stats = dict(mean=(0.3, 0.5, 0.7), std=(0.2, 0.25, 0.3))
    assert torch.allclose(
        augment_batch(images, AugmentConfig(**OFF), _rng(), **stats), to_tensor(images, **stats), atol=1e-5
    )


def test_flip_only_mirrors_exactly() -> None:
    images = _images(12)
    out = augment_batch(images, AugmentConfig(**{**OFF, "flip": True}), _rng())
    plain, flipped = to_tensor(images), to_tensor(images[:, :, ::-1])
    kinds = [torch.allclose(o, a, atol=1e-5) or torch.allclose(o, f, atol=1e-5) for o, a, f in zip(out, plain, flipped)]
    assert all(kinds)
    assert any(torch.allclose(o, f, atol=1e-5) for o, f in zip(out, flipped))
    assert any(torch.allclose(o, a, atol=1e-5) for o, a in zip(out, plain))


def test_shift_moves_content_and_repeats_the_edges() -> None:
    images = np.zeros((8, 20, 20, 3), np.uint8)
    images[:, 8:12, 8:12] = 255  # a white square in the middle
    out = augment_batch(images, AugmentConfig(**{**OFF, "shift": 0.25}), _rng(3))
    for o in out:
        ys, xs = torch.nonzero(o[0] > 0.99, as_tuple=True)
        assert len(ys) == 16  # the square is intact (integer shift, no blur) ...
        assert abs(ys.float().mean() - 9.5) <= 5 and abs(xs.float().mean() - 9.5) <= 5  # ... moved by <= 5 px
    assert any(abs(float(torch.nonzero(o[0] > 0.99)[:, 1].float().mean()) - 9.5) > 0 for o in out)


@pytest.mark.parametrize("flip", [False, True])
def test_shift_and_flip_equal_edge_padding_then_crop(flip: bool) -> None:
    from facemetric.data.augment import _shift_flip

    images = _images(10, 12, 14)
    out = np.empty_like(images)
    _shift_flip(images, np.arange(10), out, AugmentConfig(**{**OFF, "shift": 0.25, "flip": flip}), _rng(5))
    draws = _rng(5)  # the draws _shift_flip makes, in its order
    dys, dxs = draws.integers(-3, 4, 10), draws.integers(-4, 5, 10)  # round(0.25 * 12), round(0.25 * 14)
    flips = draws.random(10) < 0.5 if flip else np.zeros(10, bool)
    assert (dys != 0).any() and (dxs != 0).any() and (flips.any() if flip else True)
    for img, o, dy, dx, f in zip(images, out, dys, dxs, flips):
        src = img[:, ::-1] if f else img
        padded = np.pad(src, ((3, 3), (4, 4), (0, 0)), mode="edge")  # the uncovered border repeats the edge
        assert np.array_equal(o, padded[3 - dy : 3 - dy + 12, 4 - dx : 4 - dx + 14])


def test_deterministic_per_generator_and_bounded() -> None:
    images, cfg = _images(), AugmentConfig(rotate=10, scale=0.1, saturation=0.3, grayscale=0.3, cutout=0.5)
    a, b, c = (augment_batch(images, cfg, _rng(s)) for s in (5, 5, 6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == (6, 3, 16, 20) and a.min() >= -1 and a.max() <= 1


def test_contrast_and_brightness_by_hand() -> None:
    # one flat grey image: contrast pivots on its own mean, so only brightness can move it
    images = np.full((1, 8, 8, 3), 100, np.uint8)
    rng = _rng(7)
    gain, offset = rng.uniform(0.5, 1.5, 1), rng.uniform(-0.3, 0.3, 1)  # the draws augment_batch makes first
    out = augment_batch(images, AugmentConfig(**{**OFF, "contrast": 0.5, "brightness": 0.3}), _rng(7))
    want = ((100 / 255) + offset[0] - 0.5) / 0.5
    assert torch.allclose(out, torch.full_like(out, want), atol=1e-5)
    assert gain[0] != 1.0


def test_grayscale_and_saturation() -> None:
    images = _images(4)
    grey = augment_batch(images, AugmentConfig(**{**OFF, "grayscale": 1.0}), _rng())
    assert torch.allclose(grey[:, 0], grey[:, 1], atol=1e-5) and torch.allclose(grey[:, 1], grey[:, 2], atol=1e-5)
    luma = (images.astype(np.float64) @ np.array([0.299, 0.587, 0.114])) / 255 * 2 - 1
    assert np.allclose(grey[:, 0].numpy(), luma, atol=1e-4)


def test_cutout_blanks_a_square_to_the_mean() -> None:
    images = np.full((5, 20, 20, 3), 255, np.uint8)
    out = augment_batch(images, AugmentConfig(**{**OFF, "cutout": 1.0, "cutout_size": 0.25}), _rng())
    assert [(o[0] == 0).sum().item() for o in out] == [25] * 5  # a 5 x 5 square in every image


def test_grey_single_channel() -> None:
    out = augment_batch(_images(c=1), AugmentConfig(saturation=0.5), _rng())
    assert out.shape == (6, 1, 16, 20)


@pytest.mark.parametrize("part", [slice(0, 4), slice(4, 8), slice(2, 5)])
def test_a_share_of_a_batch_is_that_part_of_the_whole_batch(part: slice) -> None:
    """Each training process makes only its share of a global batch, with the whole batch's random numbers."""
    from facemetric.data.augment import finish, geometry_and_draws

    cfg = AugmentConfig(
        flip=True, shift=0.1, rotate=10.0, scale=0.1, brightness=0.2, contrast=0.2, saturation=0.3,
        grayscale=0.3, cutout=0.5, cutout_size=0.3,
    )  # fmt: skip
    images, rows = _images(8), np.arange(8)[::-1].copy()
    whole = np.empty_like(images)
    draws = geometry_and_draws(images, rows, whole, cfg, _rng(7))
    want = finish(torch.from_numpy(whole), draws, (0.5,) * 3, (0.5,) * 3)
    share = np.empty_like(images[part])
    draws = geometry_and_draws(images, rows, share, cfg, _rng(7), part)
    got = finish(torch.from_numpy(share), draws, (0.5,) * 3, (0.5,) * 3)
    torch.testing.assert_close(got, want[part])
    assert draws.flipped is not None and len(draws.flipped) == len(share)
    with pytest.raises(ValueError, match="out holds"):
        geometry_and_draws(images, rows, np.empty_like(images[:3]), cfg, _rng(7), slice(0, 4))
