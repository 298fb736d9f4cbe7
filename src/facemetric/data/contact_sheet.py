"""A contact sheet: a grid of random crops from a prepared cache, for a person to check alignment."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from facemetric.core.atomic import write_atomic


def contact_sheet(
    images: np.ndarray, labels: list[str], count: int = 48, columns: int = 8, seed: int = 0
) -> Image.Image:
    """Up to ``count`` random crops of ``images`` (N, H, W, C uint8) in a grid, each captioned."""
    rng = np.random.default_rng(seed)
    rows: np.ndarray = (
        np.sort(rng.choice(len(images), size=min(count, len(images)), replace=False))
        if len(images)
        else np.zeros(0, np.int64)
    )
    h, w = images.shape[1:3]
    caption = 12
    lines = max(1, -(-len(rows) // columns))
    sheet = Image.new("RGB", (columns * (w + 2), lines * (h + caption + 2)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for k, row in enumerate(rows):
        x, y = (k % columns) * (w + 2), (k // columns) * (h + caption + 2)
        tile = images[row]
        sheet.paste(Image.fromarray(tile[:, :, 0] if tile.shape[2] == 1 else tile), (x, y))
        draw.text((x + 1, y + h), str(labels[row])[: max(1, w // 6)], fill=(0, 0, 0))
    return sheet


def write_contact_sheet(out: Path, identities: list[str], name: str = "contact_sheet.png") -> Path:
    """Write ``out/name`` from ``out/images.npy`` (rows captioned with their identity)."""
    images = np.load(out / "images.npy", mmap_mode="r")
    buf = io.BytesIO()
    contact_sheet(images, identities).save(buf, format="PNG")
    return write_atomic(out / name, buf.getvalue())
