"""`facemetric prepare`: odd and bad files, resume after a hard kill, idempotence, real datasets."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facemetric.data.cache import RowView
from facemetric.data.prepare import PrepareError, PrepareOptions, prepare
from facemetric.data.prepared import is_prepared, load_prepared, prepared_spec


def _face(seed: int, size: tuple[int, int] = (60, 48)) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (*size[::-1], 3), dtype=np.uint8))


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _bomb_png() -> bytes:
    """A 100000 x 100000 PNG header with almost no data: 10 G pixels if anyone decoded it."""
    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + _png_chunk(b"IEND", b"")
    )


def _odd_corpus(root: Path) -> tuple[dict[str, str], set[str]]:
    """A folder-per-person corpus of odd files: returns {file: expected skip kind} and the readable files."""
    good, bad = root / "alice", root / "bob"
    good.mkdir(parents=True)
    bad.mkdir()
    readable: set[str] = set()

    def keep(path: Path) -> None:
        readable.add(str(path))

    _face(0).save(good / "plain.jpg")
    keep(good / "plain.jpg")
    rgba = np.zeros((48, 48, 4), np.uint8)
    rgba[:, 24:] = (200, 30, 30, 255)  # left half: transparent black, right half: opaque red
    Image.fromarray(rgba).save(good / "alpha.png")
    keep(good / "alpha.png")
    Image.fromarray((np.random.default_rng(2).integers(0, 65535, (50, 40))).astype(np.uint16)).save(good / "deep16.png")
    keep(good / "deep16.png")
    _face(3).convert("CMYK").save(good / "cmyk.jpg")
    keep(good / "cmyk.jpg")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90 degrees: stored 60 x 48, shown 48 x 60
    _face(4).save(good / "rotated.jpg", exif=exif)
    keep(good / "rotated.jpg")
    frames = [_face(5 + i).convert("P") for i in range(3)]
    frames[0].save(good / "animated.gif", save_all=True, append_images=frames[1:])
    keep(good / "animated.gif")
    _face(8).convert("L").save(good / "grey.pgm")
    keep(good / "grey.pgm")
    _face(9).save(good / "no_extension", format="PNG")
    keep(good / "no_extension")
    _face(10).save(good / "ünïcødé name with spaces.webp")
    keep(good / "ünïcødé name with spaces.webp")
    _face(11).save(good / "tiff.tif")
    keep(good / "tiff.tif")
    _face(12).convert("P").save(good / "palette_transparent.png", transparency=0)
    keep(good / "palette_transparent.png")
    locked = good / "locked.png"
    _face(13).save(locked)
    locked.chmod(0)
    expected = {}
    if os.access(locked, os.R_OK):  # root reads anything: then it must be prepared like any other file
        keep(locked)
    else:
        expected[str(locked)] = "cannot read"
    buf = io.BytesIO()
    _face(14, (64, 64)).save(buf, "JPEG")
    (bad / "truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    (bad / "zero.jpg").write_bytes(b"")
    (bad / "text.jpg").write_text("this is a text file renamed to .jpg\n")
    Image.new("RGB", (1, 1)).save(bad / "pixel.png")
    (bad / "bomb.png").write_bytes(_bomb_png())
    (bad / "loop.jpg").symlink_to(bad / "loop.jpg")
    (bad / "dangling.jpg").symlink_to(bad / "nowhere.jpg")
    (bad / "notes.txt").write_text("not an image")
    _face(15).save(bad / "ok.png")
    keep(bad / "ok.png")  # bob still has one readable photo
    (root / "empty_person").mkdir()
    expected.update(
        {
            str(bad / "truncated.jpg"): "corrupt or truncated",
            str(bad / "zero.jpg"): "empty file",
            str(bad / "text.jpg"): "not an image",
            str(bad / "pixel.png"): "too small",
            str(bad / "bomb.png"): "decompression bomb",
            str(bad / "loop.jpg"): "cannot read",
            str(bad / "dangling.jpg"): "cannot read",
            str(bad / "notes.txt"): "not an image file (by extension)",
            str(root / "empty_person"): "identity folder contains no images",
        }
    )
    return expected, readable


def _skipped(out: Path) -> dict[str, dict]:
    with (out / "skipped.csv").open(newline="", encoding="utf-8") as f:
        return {r["source"]: r for r in csv.DictReader(f)}


def test_odd_and_bad_files_are_listed_and_nothing_readable_is_dropped(tmp_path: Path) -> None:
    expected, readable = _odd_corpus(tmp_path / "photos")
    assert len(expected) + len(readable) >= 20
    result = prepare(
        tmp_path / "photos",
        tmp_path / "out",
        PrepareOptions(size=32, align="none"),
        workers=2,
        chunk_size=4,
        progress=False,
    )
    skipped = _skipped(tmp_path / "out")
    for path, kind in expected.items():
        assert path in skipped, f"{path} not reported"
        assert skipped[path]["kind"] == kind, (path, skipped[path])
        assert skipped[path]["reason"]
    data = load_prepared(tmp_path / "out")
    assert set(data.paths) == readable  # every readable file is in the cache
    assert result.summary["images"] == len(readable) and result.summary["skipped"] == len(expected)
    row = data.paths.index(str(tmp_path / "photos" / "alice" / "rotated.jpg"))
    rotated = np.asarray(data.images[row])
    original = np.asarray(
        Image.open(tmp_path / "photos" / "alice" / "rotated.jpg").convert("RGB").transpose(Image.Transpose.ROTATE_270)
    )
    want = np.asarray(Image.fromarray(original).resize((32, 40)))[4:36]  # upright, centre square
    assert np.abs(rotated.astype(int) - want.astype(int)).mean() < 25  # EXIF orientation was applied
    deep = np.asarray(data.images[data.paths.index(str(tmp_path / "photos" / "alice" / "deep16.png"))])
    assert 60 < deep.mean() < 200  # 16-bit scaled to 8 bits, not clipped to white
    alpha = np.asarray(data.images[data.paths.index(str(tmp_path / "photos" / "alice" / "alpha.png"))])
    assert (alpha[:, :12] == 255).all() and (alpha[:, 20:, 0] == 200).all()  # transparent -> white, not black


def test_hard_kill_then_rerun_resumes_and_equals_an_uninterrupted_run(tmp_path: Path, synthetic_faces: Path) -> None:
    whole = prepare(
        synthetic_faces,
        tmp_path / "whole",
        PrepareOptions(size=48, align="none"),
        workers=0,
        chunk_size=8,
        progress=False,
    )
    # fault injection, in the test: the child patches prepare's chunk worker so that the process SIGKILLs
    # itself when asked for a 4th chunk, i.e. right after the 3rd was logged (no timing races)
    code = f"""
import os, signal
import facemetric.data.prepare as p
real, calls = p._work, []
def work(*args):
    if len(calls) == 3:
        os.kill(os.getpid(), signal.SIGKILL)
    calls.append(1)
    return real(*args)
p._work = work
p.prepare({str(synthetic_faces)!r}, {str(tmp_path / "cut")!r}, p.PrepareOptions(size=48, align='none'),
          workers=0, chunk_size=8, progress=False)
"""
    proc = subprocess.run([sys.executable, "-c", code])
    assert proc.returncode == -signal.SIGKILL
    assert not is_prepared(tmp_path / "cut")
    resumed = prepare(
        synthetic_faces,
        tmp_path / "cut",
        PrepareOptions(size=48, align="none"),
        workers=0,
        chunk_size=8,
        progress=False,
    )
    total_chunks = -(-whole.summary["processed_images"] // 8)
    assert resumed.summary["resumed_chunks"] == 3 < total_chunks
    assert resumed.summary["processed_images"] < whole.summary["processed_images"]
    assert np.array_equal(np.load(tmp_path / "cut" / "images.npy"), np.load(tmp_path / "whole" / "images.npy"))
    for name in ("manifest.csv", "detections.jsonl", "skipped.csv", "meta.json"):
        assert (tmp_path / "cut" / name).read_text() == (tmp_path / "whole" / name).read_text(), name
    assert not (tmp_path / "cut" / "partial").exists()


def test_rerun_is_a_no_op_and_a_different_job_is_refused(tmp_path: Path, synthetic_faces: Path) -> None:
    opts = PrepareOptions(size=32, align="none")
    prepare(synthetic_faces, tmp_path / "out", opts, workers=0, progress=False)
    before = (tmp_path / "out" / "images.npy").stat().st_mtime_ns
    again = prepare(synthetic_faces, tmp_path / "out", opts, workers=0, progress=False)
    assert again.up_to_date and (tmp_path / "out" / "images.npy").stat().st_mtime_ns == before
    with pytest.raises(PrepareError, match="--overwrite"):
        prepare(synthetic_faces, tmp_path / "out", PrepareOptions(size=40, align="none"), workers=0, progress=False)
    replaced = prepare(
        synthetic_faces,
        tmp_path / "out",
        PrepareOptions(size=40, align="none"),
        workers=0,
        overwrite=True,
        progress=False,
    )
    assert not replaced.up_to_date and np.load(tmp_path / "out" / "images.npy", mmap_mode="r").shape[1:] == (40, 40, 3)


def test_prepared_cache_reads_memory_mapped_with_statistics(tmp_path: Path, synthetic_faces: Path) -> None:
    prepare(
        synthetic_faces,
        tmp_path / "out",
        PrepareOptions(size=32, align="center", align_options={"fraction": 0.8}),
        workers=0,
        progress=False,
    )
    data, spec = load_prepared(tmp_path / "out"), prepared_spec(tmp_path / "out")
    assert isinstance(data.images, np.memmap) and data.images.shape[1:] == (32, 32, 3)
    sub = data.subset(np.arange(0, len(data), 2))
    assert isinstance(sub.images, RowView) and np.array_equal(sub.images[3], data.images[6])
    pixels = np.asarray(data.images, dtype=np.float64) / 255
    assert spec.mean == pytest.approx(tuple(pixels.mean(axis=(0, 1, 2))), abs=2e-3)
    assert spec.std == pytest.approx(tuple(pixels.std(axis=(0, 1, 2))), abs=2e-3)
    assert spec.crop == 0.8 and spec.align == "crop"
    meta = json.loads((tmp_path / "out" / "meta.json").read_text())
    assert meta["images"] == len(data) and (tmp_path / "out" / "contact_sheet.png").stat().st_size > 1000


@pytest.mark.parametrize("dataset, align, images", [("orl", "center", 400), ("yale", "none", 164)])
def test_real_datasets(tmp_path: Path, shared_data: Path, dataset: str, align: str, images: int) -> None:
    result = prepare(
        shared_data / dataset, tmp_path / dataset, PrepareOptions(size=64, align=align), workers=2, progress=False
    )
    assert result.summary["images"] == images
    assert load_prepared(tmp_path / dataset).images.shape == (images, 64, 64, 3)


def test_dlib_and_opencv_find_and_align_faces(tmp_path: Path, shared_data: Path) -> None:
    pytest.importorskip("dlib")
    pytest.importorskip("cv2")
    people = sorted((shared_data / "lfw-devtrain" / "images").iterdir())[:12]
    src = tmp_path / "lfw"
    for person in people:
        (src / person.name).mkdir(parents=True)
        for photo in sorted(person.iterdir())[:2]:
            (src / person.name / photo.name).symlink_to(photo)
    for backend in ("dlib", "opencv"):
        result = prepare(src, tmp_path / backend, PrepareOptions(size=112, align=backend), workers=0, progress=False)
        assert result.summary["face_found_rate"] >= 0.9, result.summary
    with (tmp_path / "dlib" / "detections.jsonl").open() as f:
        dets = [json.loads(line) for line in f]
    assert all(d["backend"] == "dlib" and len(d["landmarks"]) == 5 and len(d["box"]) == 4 for d in dets)
    # LFW faces are centred in 250 x 250 photos: the chosen box is too
    centres = np.array([[(d["box"][0] + d["box"][2]) / 2, (d["box"][1] + d["box"][3]) / 2] for d in dets])
    assert np.all(np.abs(centres - 125) < 30)
    # dlib's five points give each face's head pose; LFW's faces look roughly at the camera
    poses = np.array([[d["pose"]["yaw"], d["pose"]["pitch"], d["pose"]["roll"]] for d in dets])
    assert np.all(np.abs(poses[:, 0]) < 45) and np.all(np.abs(poses[:, 2]) < 30), poses


def test_decoding_for_a_dlib_aligned_model_aligns_like_prepare(tmp_path: Path, shared_data: Path) -> None:
    """eval / embed / gallery on raw photos see what a model trained on `prepare --align dlib` saw."""
    pytest.importorskip("dlib")
    from PIL import Image

    from facemetric.data.cache import decode_manifest
    from facemetric.data.prepared import load_prepared, prepared_spec
    from facemetric.data.sources import scan_source

    src = tmp_path / "lfw"
    for person in sorted((shared_data / "lfw-devtrain" / "images").iterdir())[:3]:
        (src / person.name).mkdir(parents=True)
        for photo in sorted(person.iterdir())[:2]:
            (src / person.name / photo.name).symlink_to(photo)
    prepare(src, tmp_path / "cache", PrepareOptions(size=112, align="dlib"), workers=0, progress=False)
    spec = prepared_spec(tmp_path / "cache")
    assert spec.align == "dlib"
    Image.new("RGB", (250, 250), (90, 90, 90)).save(src / sorted(p.name for p in src.iterdir())[0] / "blank.jpg")
    decoded = decode_manifest(scan_source(src), spec, progress=False)
    cached = load_prepared(tmp_path / "cache")
    by_path = dict(zip(cached.paths, np.asarray(cached.images)))
    assert len(decoded) == len(cached) and [p for p, _ in decoded.bad] == [str(next(src.glob("*/blank.jpg")))]
    assert "no face" in decoded.bad[0][1]
    for path, image in zip(decoded.paths, decoded.images):
        np.testing.assert_array_equal(image, by_path[path])
