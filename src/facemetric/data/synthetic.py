"""Procedural synthetic identity dataset of cartoon faces.

Used by ``facemetric demo`` when the user has no data, so the whole train and
evaluate loop runs on CPU in minutes. Each identity is a fixed
:class:`IdentityStyle` (face shape, skin tone, hair, eyes, brows, nose, mouth,
accessories); every rendered image of it varies in rotation, shift, scale,
lighting, background, clothing, expression and noise, so an embedding model
has to learn invariance instead of matching raw pixels.

Seeding is hierarchical: identity ``i`` depends only on ``(seed, i)`` and its
image ``j`` only on ``(seed, i, j)``, so a larger dataset generated with the
same seed starts with exactly the files of a smaller one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from facemetric.data.synthetic_draw import background, draw_layer, photometric, pose
from facemetric.data.synthetic_style import HAIR_STYLES, IdentityStyle, random_identity, random_variation

__all__ = [
    "HAIR_STYLES",
    "IdentityStyle",
    "generate_dataset",
    "identity_rng",
    "image_rng",
    "random_identity",
    "render_face",
]

# Stream tag at a fixed position keeps identity and image seed sequences disjoint
# (SeedSequence pads short entropy with zeros, so [s, i] and [s, i, 0] would collide).
_ID_STREAM, _IMAGE_STREAM = 0, 1


def render_face(style: IdentityStyle, rng: np.random.Generator, size: int = 64) -> np.ndarray:
    """Render one image of ``style`` as a uint8 (size, size, 3) array.

    Pose, expression, clothing, background, lighting and noise are all drawn
    from ``rng``, so two calls with different generators give different images
    of the same person.
    """
    if size < 16:
        raise ValueError(f"size must be at least 16, got {size}")
    var = random_variation(rng)
    posed = pose(draw_layer(style, var, size), var, size)
    alpha = posed[:, :, 3:] / 255.0
    composite = posed[:, :, :3] + background(var, size) * (1 - alpha)  # "over" with premultiplied colour
    return photometric(composite, var, rng)


def identity_rng(seed: int, identity: int) -> np.random.Generator:
    """Generator for identity ``identity``'s style; depends only on (seed, identity)."""
    return np.random.default_rng([seed, identity, _ID_STREAM])


def image_rng(seed: int, identity: int, image: int) -> np.random.Generator:
    """Generator for image ``image`` of an identity; depends only on (seed, identity, image)."""
    return np.random.default_rng([seed, identity, _IMAGE_STREAM, image])


def generate_dataset(
    root: str | Path,
    num_identities: int = 60,
    images_per_identity: int = 12,
    size: int = 64,
    seed: int = 0,
    progress: bool = True,
) -> Path:
    """Write a folder-per-identity PNG dataset: ``root/person_000/person_000_0001.png``, ...

    File names follow LFW's ``name/name_0001`` convention, so LFW-format pairs files can
    refer to the images (the demo evaluates through one).

    Output is byte-identical for a given seed, and a run with more identities or
    images reproduces every file of a smaller run with the same seed. Returns ``root``.
    """
    root = Path(root)
    total = num_identities * images_per_identity
    with tqdm(total=total, desc="synthetic faces", unit="img", disable=None if progress else True) as bar:
        for i in range(num_identities):
            style = random_identity(identity_rng(seed, i))
            person = f"person_{i:03d}"
            person_dir = root / person
            person_dir.mkdir(parents=True, exist_ok=True)
            for j in range(images_per_identity):
                image = render_face(style, image_rng(seed, i, j), size)
                Image.fromarray(image).save(person_dir / f"{person}_{j + 1:04d}.png")
                bar.update()
    return root
