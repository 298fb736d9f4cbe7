"""``facemetric protocol patches``: an HPatches-style benchmark built from small synthetic photos."""

from __future__ import annotations

import csv
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facemetric.cli import main
from facemetric.cli.protocol import JITTER_HELP
from facemetric.core.errors import MissingDependencyError
from facemetric.data.hpatches import IMAGES, PATCH, read_hpatches, read_sequence, read_splits, sequence_names
from facemetric.data.sources import DatasetError
from facemetric.eval.patches.benchmark import build_patch_benchmark, photo_key, split_sequences
from facemetric.eval.patches.sequences import JITTER, make_sequence, pyramid, sample_patches

cv2 = pytest.importorskip("cv2")
POINTS = 20


def _blobs(rng: np.random.Generator, h: int = 160, w: int = 200, n: int = 250) -> np.ndarray:
    """Grey 110 with ``n`` random Gaussian blobs (radius 1.5 to 4 pixels, darker or brighter): DoG keypoints."""
    img = np.full((h, w), 110.0)
    yy, xx = np.mgrid[:h, :w]
    centres, radii, values = rng.uniform(0, 1, (n, 2)) * (h, w), rng.uniform(1.5, 4, n), rng.uniform(-90, 120, n)
    for (cy, cx), r, v in zip(centres, radii, values):
        img += v * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four usable photos (grey PNG, colour JPEG, grey PGM, an extension-less PNG in a sub-folder) and four
    that are not: unreadable, tiny, flat, a text file."""
    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    Image.fromarray(_blobs(rng)).save(root / "blobs.png")
    Image.fromarray(np.stack([_blobs(rng), _blobs(rng), _blobs(rng)], -1)).save(root / "colour.jpg", quality=95)
    yy, xx = np.mgrid[:160, :200]
    checker = ((yy // 6 + xx // 7) % 2) * 120 + 60 + rng.normal(0, 30, (160, 200))
    Image.fromarray(np.clip(checker, 0, 255).astype(np.uint8)).save(root / "checker.pgm")
    noise = cv2.GaussianBlur(rng.normal(0, 80, (160, 200)), (0, 0), 1.2) * 3 + 128
    (root / "sub").mkdir()
    Image.fromarray(np.clip(noise, 0, 255).astype(np.uint8)).save(root / "sub" / "noise", format="PNG")
    (root / "broken.jpg").write_bytes(b"not really a JPEG")
    Image.fromarray(_blobs(rng, 40, 30, 10)).save(root / "tiny.png")
    Image.fromarray(np.full((160, 200), 128, np.uint8)).save(root / "flat.png")
    (root / "notes.txt").write_text("not a photo")
    return root


@pytest.fixture(scope="module")
def bench(photos: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench") / "out"
    build_patch_benchmark(photos, out, points=POINTS, seed=0, progress=False)
    return out


def _ncc(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) normalised cross-correlations of two patch stacks."""

    def unit(x: np.ndarray) -> np.ndarray:
        x = x.reshape(len(x), -1).astype(np.float64)
        x = x - x.mean(1, keepdims=True)
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-9)

    return unit(a) @ unit(b).T


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_build_is_deterministic_and_read_as_the_release(photos: Path, bench: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    summary = build_patch_benchmark(photos, again, points=POINTS, seed=0, progress=False)
    assert _files(again) == _files(bench)  # byte-identical, benchmark.json included
    names = sequence_names(bench)
    assert len(names) == 4 and {n[:2] for n in names} == {"i_", "v_"}  # seed 0 draws both kinds for these photos
    assert sorted(n[2:] for n in names) == ["blobs", "checker", "colour", "noise"]
    assert (summary.sequences, summary.illum + summary.view) == (4, 4)
    patches = read_hpatches(bench, size=PATCH)
    assert len(patches) == summary.patches == 16 * summary.points
    for name in names:
        stacks = read_sequence(bench / name, PATCH)  # refuses a sequence whose files hold different counts
        assert set(stacks) == set(IMAGES) and 10 <= len(stacks["ref"]) <= POINTS
    meta = json.loads((bench / "benchmark.json").read_text())
    assert meta["counts"]["sequences"] == 4 and meta["jitter"]["tough"]["rotation"] == JITTER["t"].rotation


def test_patches_show_the_same_point_and_jitter_grows(bench: Path) -> None:
    by_level: dict[str, list[float]] = {level: [] for level in "eht"}
    for name in sequence_names(bench):
        stacks = read_sequence(bench / name, PATCH)
        ncc = _ncc(stacks["ref"], stacks["e1"])
        same, other = np.diag(ncc).mean(), ncc[~np.eye(len(ncc), dtype=bool)].mean()
        assert same > other + 0.4, (name, same, other)
        for level in "eht":
            by_level[level] += [np.diag(_ncc(stacks["ref"], stacks[f"{level}{k}"])).mean() for k in range(1, 6)]
    e, h, t = (float(np.mean(by_level[level])) for level in "eht")
    assert e > h > t and e > t + 0.1, (e, h, t)


def test_stored_homography_maps_reference_points_into_the_target(photos: Path, bench: Path) -> None:
    name = next(n for n in sequence_names(bench, "view"))
    photo = json.loads((bench / "benchmark.json").read_text())["sequences"]
    relative = next(p["photo"] for p in photo if p["sequence"] == name)
    rgb = np.asarray(Image.open(photos / relative).convert("RGB"))
    seq = make_sequence(cv2, rgb, "v", [0, photo_key(relative)], points=POINTS)  # the build's draws, again
    stored = read_sequence(bench / name, PATCH)
    assert all(np.array_equal(seq.stacks[image], stored[image]) for image in IMAGES)
    h1 = np.loadtxt(bench / name / "H_ref_1")
    np.testing.assert_allclose(h1, seq.homographies[0], rtol=1e-8, atol=1e-8)
    assert not np.allclose(h1, np.eye(3), atol=0.05)  # a real viewpoint change
    target = pyramid(cv2, seq.targets[0])
    through_h = np.diag(_ncc(stored["ref"], sample_patches(cv2, target, seq.points, seq.sides, h1))).mean()
    unmoved = np.diag(_ncc(stored["ref"], sample_patches(cv2, target, seq.points, seq.sides))).mean()
    assert through_h > 0.9 and through_h > unmoved + 0.3, (through_h, unmoved)


def test_splits_json_is_hpatches_benchmark_format(bench: Path) -> None:
    split = read_splits(bench / "splits.json")["a"]
    assert split["train"] and split["test"] and not set(split["train"]) & set(split["test"])
    assert sorted(split["train"] + split["test"]) == sequence_names(bench)
    assert sequence_names(bench, "a", "train", splits_json=bench / "splits.json") == sorted(split["train"])
    names = [f"{kind}_{k}" for kind in "iv" for k in range(6)]
    parts = split_sequences(names, 2 / 3, seed=5)
    assert [len(parts["train"]), len(parts["test"])] == [8, 4]
    assert all({n[:2] for n in parts[part]} == {"i_", "v_"} for part in parts)  # both kinds in both parts
    assert split_sequences(names, 2 / 3, seed=5) == parts


def test_unusable_photos_are_listed_with_reasons(bench: Path) -> None:
    with open(bench / "skipped.csv", newline="") as f:
        rows = {row["file"]: row["reason"] for row in csv.DictReader(f)}
    assert set(rows) == {"broken.jpg", "tiny.png", "flat.png", "notes.txt"}
    assert "not an image" in rows["broken.jpg"] and "too small: 30x40" in rows["tiny.png"]
    assert "no SIFT keypoint" in rows["flat.png"] and "by extension" in rows["notes.txt"]


def test_output_in_use_is_refused_and_overwrite_replaces_a_build(photos: Path, bench: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    with pytest.raises(DatasetError, match=re.escape(f"{out} exists and is not empty")):
        build_patch_benchmark(photos, out, progress=False)
    with pytest.raises(DatasetError, match="mine.txt"):
        build_patch_benchmark(photos, out, overwrite=True, progress=False)
    (out / "mine.txt").unlink()
    build_patch_benchmark(photos, out, points=POINTS, max_photos=2, seed=0, progress=False)
    first = sequence_names(out)
    summary = build_patch_benchmark(photos, out, points=POINTS, max_photos=1, seed=0, overwrite=True, progress=False)
    assert summary.sequences == 1 and len(sequence_names(out)) == 1 and set(sequence_names(out)) <= set(first)
    name = sequence_names(out)[0]  # a photo's sequence does not depend on the other photos
    assert _files(out / name) == _files(bench / name)


def test_cli_builds_and_refuses_a_used_output(photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "cli"
    args = [
        "-q",
        "protocol",
        "patches",
        "--data",
        str(photos),
        "--out",
        str(out),
        "--points",
        "12",
        "--max-photos",
        "2",
    ]
    assert main([*args, "--kinds", "illum", "--seed", "3"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["sequences"] == printed["illum"] == 2 and printed["skipped"] >= 1
    assert all(n.startswith("i_") for n in sequence_names(out))
    assert main(args) == 2
    assert str(out) in capsys.readouterr().err


def test_help_lists_the_jitter_table() -> None:
    for level, jitter in JITTER.items():
        row = next(line.split() for line in JITTER_HELP.splitlines() if line.split()[0] == level)
        expected = [f"+-{jitter.rotation:g}", f"+-{100 * jitter.scale:g}", f"+-{100 * jitter.anisotropy:g}"]
        assert [row[1], row[3], row[5], row[7]] == [*expected, f"+-{100 * jitter.shift:g}"]


def test_missing_opencv_names_the_extra(photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cv2", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'facemetric\[patches\]'"):
        build_patch_benchmark(photos, tmp_path / "out", progress=False)
