"""A fast, deterministic stand-in embedder and photo maker for gallery tests (no model, no dlib)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from facemetric.core.faces import Detection, NoFaceError
from facemetric.core.spec import ImageSpec
from facemetric.embedders.base import CropEmbedder


class ColourEmbedder(CropEmbedder):
    """Embeds a photo by its 4x4 average colours (48-d, unit length); a flat grey photo has "no face".

    Photos of one "person" share a colour pattern (:func:`person_photo`), so identities separate. A
    real :class:`~facemetric.core.embedder.Embedder`: only the crop and the "network" are its own.
    """

    name = "colour-test"
    reference = "colour-test"
    fingerprint = "colour-test-0001"
    dim = 48

    def __init__(self) -> None:
        super().__init__(ImageSpec(8, 8, 3))

    def crop_photo(self, image: Image.Image) -> tuple[np.ndarray, Detection]:
        pixels = np.asarray(image.convert("RGB").resize((4, 4), Image.Resampling.BOX), np.uint8)
        if pixels.astype(np.float32).std() < 1.0:
            raise NoFaceError("flat image")
        return np.kron(pixels, np.ones((2, 2, 1), np.uint8)), Detection("colour", True, image_size=list(image.size))

    def embed_crops(self, crops, batch_size: int = 256, flip: bool = False, progress: bool = False) -> np.ndarray:
        pixels = np.asarray(crops, np.float32)[:, ::2, ::2]
        v = (pixels - pixels.mean(axis=(1, 2, 3), keepdims=True)).reshape(len(pixels), -1)
        return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def person_photo(person: int, shot: int, noise: float = 12.0, size: int = 64) -> bytes:
    """PNG bytes of "person" ``person``'s photo number ``shot``: a fixed colour pattern plus noise."""
    pattern = np.random.default_rng(person).uniform(0, 255, (4, 4, 3))
    rng = np.random.default_rng(10_000 * person + shot + 1)
    image = np.kron(pattern, np.ones((size // 4, size // 4, 1))) + rng.normal(0, noise, (size, size, 3))
    buf = io.BytesIO()
    Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()
