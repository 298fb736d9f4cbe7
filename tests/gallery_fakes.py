"""A fast, deterministic stand-in embedder and photo maker for gallery tests (no model, no dlib)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from facemetric.data.align import Detection, NoFaceError


class ColourEmbedder:
    """Embeds a photo by its 4x4 average colours (48-d, unit length); a flat grey photo has "no face".

    Photos of one "person" share a colour pattern (:func:`person_photo`), so identities separate.
    """

    name = "colour-test"
    fingerprint = "colour-test-0001"
    dim = 48
    load_spec = {"kind": "test"}

    def embed_photo(self, image: Image.Image) -> tuple[np.ndarray, Detection]:
        pixels = np.asarray(image.convert("RGB").resize((4, 4), Image.Resampling.BOX), np.float32)
        if pixels.std() < 1.0:
            raise NoFaceError("flat image")
        v = (pixels - pixels.mean()).reshape(-1)
        return (v / np.linalg.norm(v)).astype(np.float32), Detection("colour", True, image_size=list(image.size))


def person_photo(person: int, shot: int, noise: float = 12.0, size: int = 64) -> bytes:
    """PNG bytes of "person" ``person``'s photo number ``shot``: a fixed colour pattern plus noise."""
    pattern = np.random.default_rng(person).uniform(0, 255, (4, 4, 3))
    rng = np.random.default_rng(10_000 * person + shot + 1)
    image = np.kron(pattern, np.ones((size // 4, size // 4, 1))) + rng.normal(0, noise, (size, size, 3))
    buf = io.BytesIO()
    Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()
