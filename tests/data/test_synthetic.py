"""Tests for the procedural synthetic face dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facemetric.data.synthetic import (
    HAIR_STYLES,
    generate_dataset,
    identity_rng,
    image_rng,
    random_identity,
    render_face,
)


def _gray(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def _render(seed: int, identity: int, image: int, size: int = 64) -> np.ndarray:
    return render_face(random_identity(identity_rng(seed, identity)), image_rng(seed, identity, image), size)


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.png"))}


def _edges(image: np.ndarray) -> np.ndarray:
    """Standardised gradient magnitude: features and outlines, insensitive to lighting."""
    gray = _gray(image)
    magnitude = np.hypot(np.diff(gray, axis=0)[:, :-1], np.diff(gray, axis=1)[:-1, :])
    return (magnitude - magnitude.mean()) / magnitude.std()


def _best_shift(a: np.ndarray, b: np.ndarray, radius: int = 12) -> tuple[int, int]:
    """Integer (dy, dx) that best aligns the edges of ``b`` to those of ``a``."""
    ea, eb = _edges(a), _edges(b)
    n = ea.shape[0]
    ref = ea[radius : n - radius, radius : n - radius]
    scores = {
        (dy, dx): float((ref * eb[radius + dy : n - radius + dy, radius + dx : n - radius + dx]).sum())
        for dy in range(-radius, radius + 1)
        for dx in range(-radius, radius + 1)
    }
    return max(scores, key=scores.__getitem__)


def _leave_one_out_1nn_accuracy(features: np.ndarray, labels: np.ndarray) -> float:
    sq = (features * features).sum(axis=1)
    dist = sq[:, None] + sq[None, :] - 2 * features @ features.T
    np.fill_diagonal(dist, np.inf)
    return float((labels[dist.argmin(axis=1)] == labels).mean())


@pytest.mark.parametrize("size", [32, 64, 112])
def test_render_face_shape_and_dtype(size: int) -> None:
    image = _render(0, 0, 0, size)
    assert image.shape == (size, size, 3)
    assert image.dtype == np.uint8
    assert image.std() > 10  # not a blank canvas


def test_render_face_is_deterministic_per_generator() -> None:
    style = random_identity(np.random.default_rng(7))
    a = render_face(style, np.random.default_rng(1))
    b = render_face(style, np.random.default_rng(1))
    c = render_face(style, np.random.default_rng(2))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_random_identity_is_deterministic_and_diverse() -> None:
    assert random_identity(np.random.default_rng(3)) == random_identity(np.random.default_rng(3))
    styles = [random_identity(identity_rng(0, i)) for i in range(60)]
    assert len(set(styles)) == 60
    assert {s.hair_style for s in styles} == set(HAIR_STYLES)


def test_seeding_depends_on_seed_identity_and_image() -> None:
    base = _render(0, 1, 2)
    np.testing.assert_array_equal(base, _render(0, 1, 2))
    for other in (_render(1, 1, 2), _render(0, 2, 2), _render(0, 1, 3)):
        assert not np.array_equal(base, other)
    assert random_identity(identity_rng(0, 1)) != random_identity(identity_rng(1, 1))


def test_render_face_rejects_tiny_size() -> None:
    with pytest.raises(ValueError):
        _render(0, 0, 0, size=8)


def test_generate_dataset_layout(tmp_path: Path) -> None:
    root = generate_dataset(tmp_path / "faces", num_identities=3, images_per_identity=4, size=32, progress=False)
    assert root == tmp_path / "faces"
    assert sorted(p.name for p in root.iterdir()) == ["person_000", "person_001", "person_002"]
    for person in root.iterdir():
        assert sorted(p.name for p in person.iterdir()) == [f"{person.name}_{j:04d}.png" for j in (1, 2, 3, 4)]
    with Image.open(root / "person_001" / "person_001_0004.png") as image:
        assert image.mode == "RGB"
        assert image.size == (32, 32)
        np.testing.assert_array_equal(np.asarray(image), _render(0, 1, 3, size=32))


def test_generate_dataset_is_byte_deterministic(tmp_path: Path) -> None:
    kwargs = dict(num_identities=2, images_per_identity=3, size=32, progress=False)
    a = _files(generate_dataset(tmp_path / "a", seed=5, **kwargs))
    b = _files(generate_dataset(tmp_path / "b", seed=5, **kwargs))
    c = _files(generate_dataset(tmp_path / "c", seed=6, **kwargs))
    assert a == b
    assert a.keys() == c.keys()
    assert all(a[name] != c[name] for name in a)


def test_generate_dataset_prefix_is_stable(tmp_path: Path) -> None:
    small = _files(
        generate_dataset(tmp_path / "small", num_identities=3, images_per_identity=2, size=32, progress=False)
    )
    large = _files(
        generate_dataset(tmp_path / "large", num_identities=5, images_per_identity=3, size=32, progress=False)
    )
    assert len(small) == 6 and len(large) == 15
    assert all(large[name] == data for name, data in small.items())


def test_images_of_one_identity_vary_in_position_and_pixels() -> None:
    images = [_render(0, 0, j) for j in range(12)]
    for a, b in zip(images, images[1:]):
        assert np.abs(a.astype(int) - b.astype(int)).mean() > 5
    shifts = np.array([_best_shift(images[0], image) for image in images[1:]])
    # Shifts are about +-12% of 64 px. Measured: 8 of 11 images move >= 3 px against
    # image 0 (at most 2 of 11 with translation switched off, 0 with no geometry at all).
    assert (np.abs(shifts).max(axis=1) >= 3).sum() >= 5, shifts


def test_raw_pixel_nearest_neighbour_is_above_chance_but_far_from_perfect() -> None:
    """Identity must be in the images, yet matching raw pixels must not solve the task.

    Leave-one-out 1-NN with L2 on grayscale pixels, 30 identities x 8 images at
    64 px: measured 0.29 for seed 0 (0.20-0.33 over seeds 0-7); chance is 1/30.
    """
    num_identities, per_identity = 30, 8
    features = np.stack([_gray(_render(0, i, j)).ravel() for i in range(num_identities) for j in range(per_identity)])
    labels = np.repeat(np.arange(num_identities), per_identity)
    accuracy = _leave_one_out_1nn_accuracy(features, labels)
    chance = 1 / num_identities
    assert accuracy > 4 * chance, accuracy
    assert accuracy < 0.6, accuracy
