"""Decode one image file into a fixed-size uint8 array, or say exactly why it cannot be.

Preprocessing is described by :class:`~facemetric.core.spec.ImageSpec` (stored in every
checkpoint so that evaluation and deployment see images exactly as training did).
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from facemetric.core.errors import FacemetricError
from facemetric.core.spec import ImageSpec


class ImageDecodeError(FacemetricError):
    """A file is not a readable image; the message says why, ``kind`` names the category."""

    def __init__(self, reason: str, kind: str = "unreadable") -> None:
        super().__init__(reason)
        self.kind = kind


def _crop_box(w: int, h: int, spec: ImageSpec) -> tuple[float, float, float, float]:
    """Central ``crop`` fraction, then the largest centred box with the target aspect ratio."""
    cw, ch = w * spec.crop, h * spec.crop
    target = spec.width / spec.height
    if cw / ch > target:
        cw = ch * target
    else:
        ch = cw / target
    left, top = (w - cw) / 2, (h - ch) / 2
    return left, top, left + cw, top + ch


MIN_SIDE = 8  # pixels: anything smaller cannot hold a face (a 1x1 tracking pixel, an icon)
_HIGH_DEPTH_MODES = {"I;16": 8, "I;16L": 8, "I;16B": 8, "I;16N": 8}


def _to_8bit(img: Image.Image) -> Image.Image:
    """16-bit and 32-bit grey (PNG, TIFF, PGM) scaled to 8 bits; Pillow's convert() would clip at 255."""
    if img.mode in _HIGH_DEPTH_MODES:
        return Image.fromarray((np.asarray(img).astype(np.uint32) >> _HIGH_DEPTH_MODES[img.mode]).astype(np.uint8))
    a = np.asarray(img, dtype=np.float64)
    low, high = float(a.min()), float(a.max())
    return Image.fromarray(
        np.zeros(a.shape, np.uint8) if high <= low else ((a - low) * (255.0 / (high - low))).astype(np.uint8)
    )


def _flatten_alpha(img: Image.Image) -> Image.Image:
    """Composite transparent pixels onto white, so hidden colour values cannot leak into the face."""
    rgba = img.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def open_image(path: str | Path, channels: int = 3, draft: tuple[int, int] | None = None) -> Image.Image:
    """Decode ``path`` into an upright RGB (``channels=3``) or grey (1) Pillow image.

    Handles what real folders hold: any format Pillow reads, whatever the extension; EXIF
    orientation applied; 16-bit grey scaled (not clipped); CMYK and palette converted;
    transparency composited onto white; animated files give their first frame. ``draft`` lets
    libjpeg decode at a reduced scale when the result will be much smaller than the photo.
    Raises :class:`ImageDecodeError` with a human reason for anything unusable.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ImageDecodeError(f"cannot read file: {exc.strerror or exc}", "cannot read") from exc
    if not path.is_file():
        raise ImageDecodeError("not a regular file", "not a file")
    if size == 0:
        raise ImageDecodeError("empty file (0 bytes)", "empty file")
    return _decode(path, channels, draft)


def decode_image_bytes(data: bytes, channels: int = 3, max_pixels: int | None = None) -> Image.Image:
    """:func:`open_image` for bytes in memory (an upload); ``max_pixels`` refuses larger images from
    their header, before any pixel is decoded."""
    if not data:
        raise ImageDecodeError("empty file (0 bytes)", "empty file")
    return _decode(io.BytesIO(data), channels, None, max_pixels)


def _decode(
    source: Path | io.BytesIO, channels: int, draft: tuple[int, int] | None, max_pixels: int | None = None
) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source) as img:
                if max_pixels is not None and img.width * img.height > max_pixels:
                    raise ImageDecodeError(
                        f"image is {img.width}x{img.height} = {img.width * img.height:,} pixels, more than the "
                        f"{max_pixels:,} allowed",
                        "too many pixels",
                    )
                if draft is not None and not _exif_rotates(img):
                    img.draft("RGB", draft)
                img.load()
                img = ImageOps.exif_transpose(img)
                if img.mode in _HIGH_DEPTH_MODES or img.mode in ("I", "F"):
                    img = _to_8bit(img)
                has_alpha = img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info)
                img = _flatten_alpha(img) if has_alpha else img
                img = img.convert("RGB" if channels == 3 else "L")
    except PermissionError as exc:
        raise ImageDecodeError(f"cannot read file: {exc.strerror or exc}", "cannot read") from None
    except UnidentifiedImageError:
        raise ImageDecodeError("not an image Pillow can read (unknown or corrupt format)", "not an image") from None
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise ImageDecodeError(f"refused as a possible decompression bomb: {exc}", "decompression bomb") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageDecodeError(f"corrupt or truncated image: {exc}", "corrupt or truncated") from None
    if min(img.size) < MIN_SIDE:
        raise ImageDecodeError(
            f"image is only {img.width}x{img.height} pixels (at least {MIN_SIDE} per side needed)", "too small"
        )
    return img


def _exif_rotates(img: Image.Image) -> bool:
    try:
        return img.getexif().get(0x0112, 1) not in (1, None)
    except Exception:  # malformed EXIF: decode normally and let exif_transpose decide
        return True


def load_image(path: str | Path, spec: ImageSpec) -> np.ndarray:
    """Decode ``path`` into a (height, width, channels) uint8 array following ``spec``.

    Raises :class:`ImageDecodeError` with a human reason for empty, truncated, corrupt or
    non-image files (see :func:`open_image`).
    """
    img = open_image(path, spec.channels, draft=(spec.width * 2, spec.height * 2))
    return resize_crop(img, spec)


def resize_crop(img: Image.Image, spec: ImageSpec) -> np.ndarray:
    """The central ``spec.crop`` of ``img`` at the spec's size and aspect ratio, as uint8 (H, W, C)."""
    box = _crop_box(img.width, img.height, spec)
    img = img.resize((spec.width, spec.height), Image.Resampling.BILINEAR, box=box, reducing_gap=2.0)
    array = np.asarray(img, dtype=np.uint8)
    return array[:, :, None] if array.ndim == 2 else array
