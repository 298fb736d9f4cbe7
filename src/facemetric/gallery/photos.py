"""A photo given to the gallery (uploaded, or read from a file), and the limits it is decoded within.

A gallery may face photos from anyone (``facemetric serve``): a file is read only up to
:data:`MAX_BYTES`, and an image over :data:`MAX_PIXELS` is refused from its header, before it is
decoded (a decompression bomb never reaches memory). Anything unusable is a :class:`PhotoError` saying
which photo and why.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from facemetric.data.images import ImageDecodeError, decode_image_bytes
from facemetric.data.video import MAX_FRAMES, VideoError, video_frames
from facemetric.gallery.interface import GalleryError

MAX_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 40_000_000


class PhotoError(GalleryError):
    """A photo that cannot be used; ``too_large`` when it is over a size or pixel limit, else it is not an
    image or has no face."""

    def __init__(self, message: str, too_large: bool = False) -> None:
        super().__init__(message)
        self.too_large = too_large


@dataclass(frozen=True)
class Photo:
    """An uploaded or read photo: its bytes and where it came from."""

    data: bytes
    source: str

    @classmethod
    def from_path(cls, path: str | Path, max_bytes: int = MAX_BYTES) -> Photo:
        path = Path(path)
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise PhotoError(f"{path}: cannot read it ({exc.strerror or exc})") from None
        if size > max_bytes:
            raise PhotoError(f"{path}: {size:,} bytes, more than the {max_bytes:,} allowed", too_large=True)
        return cls(path.read_bytes(), str(path))

    @classmethod
    def frames_of(cls, path: str | Path, max_frames: int = MAX_FRAMES) -> list[Photo]:
        """Up to ``max_frames`` frames of a video file, evenly spread, each as a lossless PNG photo whose
        source is ``PATH#frame=N``; :class:`PhotoError` names a video that cannot be read."""
        try:
            frames = video_frames(path, max_frames)
        except VideoError as exc:
            raise PhotoError(str(exc)) from None
        photos = []
        for index, rgb in frames:
            out = io.BytesIO()
            Image.fromarray(rgb).save(out, format="PNG", compress_level=1)
            photos.append(cls(out.getvalue(), f"{path}#frame={index}"))
        return photos

    def decode(self, max_pixels: int) -> Image.Image:
        """The RGB image, decoded within ``max_pixels``; :class:`PhotoError` says what is wrong."""
        try:
            return decode_image_bytes(self.data, 3, max_pixels)
        except ImageDecodeError as exc:
            raise PhotoError(
                f"{self.source}: {exc}", too_large=exc.kind in ("too many pixels", "decompression bomb")
            ) from None

    def check_pixels(self, max_pixels: int) -> None:
        """Refuse a photo over ``max_pixels`` from its header, as :meth:`decode` does, before it is decoded
        (a photo Pillow cannot read passes: whoever decodes it reports why)."""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with Image.open(io.BytesIO(self.data)) as img:
                    width, height = img.size
        except Exception:
            return
        if width * height > max_pixels:
            raise PhotoError(
                f"{self.source}: image is {width}x{height} = {width * height:,} pixels, more than the "
                f"{max_pixels:,} allowed",
                too_large=True,
            )
