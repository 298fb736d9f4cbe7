from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facemetric.core.spec import ImageSpec
from facemetric.data.images import ImageDecodeError, load_image


def test_pgm_and_extensionless_gif(shared_data: Path) -> None:
    spec = ImageSpec(56, 48, channels=3)
    orl = load_image(shared_data / "orl" / "s1" / "1.pgm", spec)
    yale = load_image(shared_data / "yale" / "subject01.glasses", spec)
    assert orl.shape == yale.shape == (56, 48, 3) and orl.dtype == np.uint8
    assert np.array_equal(orl[..., 0], orl[..., 2])  # grey replicated to RGB
    assert load_image(shared_data / "orl" / "s1" / "1.pgm", ImageSpec(32, 32, channels=1)).shape == (32, 32, 1)


def test_crop_keeps_aspect_and_centre(tmp_path: Path) -> None:
    # 200 x 100 image: left half black, right half white, a red square at the centre
    a = np.zeros((100, 200, 3), np.uint8)
    a[:, 100:] = 255
    a[40:60, 90:110] = (255, 0, 0)
    Image.fromarray(a).save(tmp_path / "x.png")
    out = load_image(tmp_path / "x.png", ImageSpec(20, 20))
    # a square target keeps the central 100 x 100: the black/white edge stays in the middle
    assert out[10, 2].tolist() == [0, 0, 0] and out[10, 17].tolist() == [255, 255, 255]
    assert out[10, 10, 0] == 255 and out[10, 10, 1] < 50  # red centre survives
    zoomed = load_image(tmp_path / "x.png", ImageSpec(20, 20, crop=0.2))  # central 20 x 20: all red
    assert (zoomed[..., 0] > 200).all() and (zoomed[..., 1] < 60).all()


@pytest.mark.parametrize(
    "content, reason",
    [(b"", "empty file"), (b"hello, not an image", "not an image"), (None, "corrupt or truncated")],
)
def test_bad_files_have_reasons(tmp_path: Path, content: bytes | None, reason: str) -> None:
    path = tmp_path / "bad.jpg"
    if content is None:  # a real JPEG cut in half
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(path)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:
        path.write_bytes(content)
    with pytest.raises(ImageDecodeError, match=reason):
        load_image(path, ImageSpec())


def test_spec_validation() -> None:
    with pytest.raises(ValueError, match="channels"):
        ImageSpec(channels=2)
    with pytest.raises(ValueError, match="crop"):
        ImageSpec(crop=1.5)
