"""A small synthetic HPatches release for tests: smooth textures cut with growing jitter."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from facemetric.data.hpatches import IMAGES


def texture(seed: int, side: int = 97, blur: float = 2.0) -> np.ndarray:
    """A smooth random grey texture, contrast stretched to 0..255."""
    noise = np.random.default_rng(seed).integers(0, 256, (side, side), dtype=np.uint8)
    smooth = np.asarray(Image.fromarray(noise).filter(ImageFilter.GaussianBlur(blur)), np.float64)
    return np.round(255 * (smooth - smooth.min()) / np.ptp(smooth)).astype(np.uint8)


SHIFT = {"e": 1, "h": 3, "t": 7}  # the largest jitter of each level, in pixels


def write_release(root: Path, n_seq: int = 4, n_points: int = 12, seed: int = 0) -> Path:
    """``n_seq`` sequences (i_*, v_* alternately) of ``n_points`` points of a smooth texture: the reference patch
    centred on the point, target patches shifted by up to the level's jitter (i_*: also a change of light)."""
    rng = np.random.default_rng(seed)
    for s in range(n_seq):
        kind = "iv"[s % 2]
        scene = texture(100 + s, side=330).astype(np.float64)
        centres = [(50 + 70 * (k // 4), 50 + 70 * (k % 4)) for k in range(n_points)]
        folder = root / f"{kind}_scene{s}"
        folder.mkdir(parents=True)
        for image in IMAGES:
            jitter = 0 if image == "ref" else SHIFT[image[0]]
            gain, offset = (
                (1.0, 0.0) if kind == "v" or image == "ref" else (rng.uniform(0.6, 1.2), rng.uniform(-20, 30))
            )
            stack = []
            for y, x in centres:
                dy, dx = rng.integers(-jitter, jitter + 1, 2)
                cut = scene[y + dy - 32 : y + dy + 33, x + dx - 32 : x + dx + 33]
                stack.append(np.clip(np.round(gain * cut + offset), 0, 255).astype(np.uint8))
            Image.fromarray(np.concatenate(stack)).save(folder / f"{image}.png")
    names = sorted(p.name for p in root.iterdir())
    (root / "splits.json").write_text(json.dumps({"a": {"train": names[:1], "test": names[1:]}}))
    return root
