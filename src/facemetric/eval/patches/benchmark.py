"""An HPatches-style patch benchmark built from any folder of photos (``facemetric protocol patches``).

The real release (Balntas et al., CVPR 2017) is not available offline, so :func:`build_patch_benchmark`
makes one in its layout, which :func:`facemetric.data.hpatches.read_hpatches` and ``facemetric prepare
--patches`` read::

    OUT/
      i_<photo>/ or v_<photo>/   one sequence per photo: ref.png, e1..e5.png, h1..h5.png, t1..t5.png
                                 (vertical stacks of 65x65 grey patches, patch k of each the same point)
                                 and H_ref_1 .. H_ref_5 (the 3x3 homography from the reference to target K)
      splits.json                hpatches-benchmark's format: split "a", its train and test sequences
      skipped.csv                file,reason: the photos left out (unreadable, too small, too few keypoints)
      benchmark.json             the options, the jitter levels, the counts, the photos used (written last)

Each photo is the reference of an illumination (``i_``) or viewpoint (``v_``) sequence; how its five
targets, its points and its patches are made is :mod:`facemetric.eval.patches.sequences` (the jitter levels
are its ``JITTER``). Photos are read recursively, in sorted order, as everywhere in facemetric (any file
Pillow reads, whatever its extension); every random draw is seeded from the seed and the photo's relative
path, so the same photos, seed and options give byte-identical files, and a photo's sequence does not
change when other photos are added.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from pydantic import Field
from tqdm import tqdm

from facemetric.core.atomic import write_atomic, write_csv, write_json
from facemetric.core.errors import require
from facemetric.core.results import Result
from facemetric.data.hpatches import IMAGES, LEVELS, PATCH
from facemetric.data.images import ImageDecodeError, open_image
from facemetric.data.sources import DatasetError, is_candidate_image, visible_files
from facemetric.eval.patches.sequences import JITTER, REGION_PX, TARGETS, UnusablePhoto, make_sequence

FORMAT = "facemetric-patch-benchmark"
KINDS = ("both", "illum", "view")
OWN_FILES = frozenset({"benchmark.json", "splits.json", "skipped.csv"})
SEQUENCE_FILES = frozenset({f"{name}.png" for name in IMAGES} | {f"H_ref_{k}" for k in range(1, TARGETS + 1)})


class BuildSummary(Result):
    """What a build wrote: sequences by kind, points (one per correspondence, ``patches`` = 16 x points),
    the train/test split, and the photos skipped (relative path, reason)."""

    out: str
    sequences: int
    illum: int
    view: int
    points: int
    patches: int
    train: int
    test: int
    skipped: list[tuple[str, str]] = Field(default_factory=list)


def list_photos(root: Path, exclude: Path | None = None) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Every candidate image file under ``root`` (recursively, hidden entries left out, sorted by relative
    path) and the files left out as not images by extension; ``exclude`` (the output) is not descended into."""
    photos: list[Path] = []
    others: list[Path] = []
    seen: set[Path] = set()
    stack = [root]
    while stack:
        folder = stack.pop()
        real = folder.resolve()
        if real in seen or (exclude is not None and real == exclude):
            continue
        seen.add(real)
        files = visible_files(folder)
        photos += [p for p in files if is_candidate_image(p)]
        others += [p for p in files if not is_candidate_image(p)]
        stack += [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")]

    def key(path: Path) -> str:
        return path.relative_to(root).as_posix()

    return sorted(photos, key=key), [(p, "not an image file (by extension)") for p in sorted(others, key=key)]


def sequence_name(kind: str, path: Path, taken: set[str]) -> str:
    """``i_<stem>`` / ``v_<stem>``, the stem made of [A-Za-z0-9_-] only, ``_2``, ``_3`` ... after a clash
    (also one of case only, which a case-insensitive file system would merge); adds it to ``taken``."""
    base = candidate = f"{kind}_{re.sub(r'[^A-Za-z0-9_-]', '_', path.stem) or 'photo'}"
    k = 2
    while candidate.casefold() in taken:
        candidate, k = f"{base}_{k}", k + 1
    taken.add(candidate.casefold())
    return candidate


def photo_key(relative: str) -> int:
    """A 63-bit seed key of a photo from its relative path: its draws do not depend on the other photos."""
    return int.from_bytes(hashlib.sha256(relative.encode()).digest()[:8], "big") >> 1


def _is_own(path: Path) -> bool:
    """Whether ``path`` in OUT is something a build writes (or a leftover temporary file of one)."""
    if path.name.startswith(".") and path.name.endswith(".tmp") and path.is_file():
        return True
    if path.is_dir() and not path.is_symlink() and path.name[:2] in ("i_", "v_"):
        return all(p.is_file() and (p.name in SEQUENCE_FILES or p.name.endswith(".tmp")) for p in path.iterdir())
    return path.name in OWN_FILES and path.is_file()


def check_out(out: Path, photos: Path, overwrite: bool) -> None:
    """Refuse an OUT in use; with ``overwrite`` remove a previous build's files, and only those."""
    if out.exists() and not out.is_dir():
        raise DatasetError(f"{out} is a file; the patch benchmark needs a folder (a new or empty one)")
    entries = sorted(out.iterdir()) if out.is_dir() else []
    if entries and not overwrite:
        raise DatasetError(
            f"{out} exists and is not empty; choose a new or empty output folder, or pass --overwrite to replace "
            "the patch benchmark built there before"
        )
    foreign = [p.name for p in entries if not _is_own(p)]
    if foreign:
        raise DatasetError(
            f"{out} holds {len(foreign)} entr{'y' if len(foreign) == 1 else 'ies'} a patch benchmark does not write "
            f"({', '.join(foreign[:5])}); --overwrite replaces only a previous build: choose a new or empty folder"
        )
    if photos.resolve().is_relative_to(out.resolve()):
        raise DatasetError(f"{out} holds the photos {photos}; write the benchmark elsewhere")
    for path in entries:
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    out.mkdir(parents=True, exist_ok=True)


def split_sequences(names: list[str], train_fraction: float, seed: int) -> dict[str, list[str]]:
    """A seeded train/test split of the sequences, per kind (both kinds in both parts when a kind has two or
    more sequences), ``train_fraction`` of each kind in train."""
    rng = np.random.default_rng([seed, 3])
    parts: dict[str, list[str]] = {"train": [], "test": []}
    for prefix in ("i_", "v_"):
        group = sorted(n for n in names if n.startswith(prefix))
        n_train = round(len(group) * train_fraction)
        if len(group) >= 2:
            n_train = min(max(n_train, 1), len(group) - 1)
        order = rng.permutation(len(group))
        parts["train"] += [group[i] for i in order[:n_train]]
        parts["test"] += [group[i] for i in order[n_train:]]
    return {part: sorted(v) for part, v in parts.items()}


def _write_sequence(folder: Path, cv2: Any, stacks: dict[str, np.ndarray], homographies: np.ndarray) -> None:
    folder.mkdir()
    for name in IMAGES:
        ok, png = cv2.imencode(".png", stacks[name].reshape(-1, PATCH), [cv2.IMWRITE_PNG_COMPRESSION, 1])
        write_atomic(folder / f"{name}.png", png.tobytes())
    for k, hom in enumerate(homographies, start=1):
        write_atomic(folder / f"H_ref_{k}", "".join(" ".join(f"{v:.10g}" for v in row) + "\n" for row in hom))


def build_patch_benchmark(
    photos: str | Path,
    out: str | Path,
    *,
    points: int = 100,
    seed: int = 0,
    kinds: str = "both",
    max_photos: int | None = None,
    magnification: float = 5.0,
    train_fraction: float = 2 / 3,
    min_points: int = 10,
    max_side: int = 1024,
    overwrite: bool = False,
    progress: bool = True,
) -> BuildSummary:
    """Build the benchmark from the photos under ``photos`` into ``out`` (new or empty, or a previous build's
    with ``overwrite``): one sequence per usable photo, of ``kinds`` ``both`` (a seeded coin per photo),
    ``illum`` or ``view``, up to ``points`` points each. ``max_photos`` keeps that many sequences, photos
    taken in a seeded random order; photos larger than ``max_side`` are shrunk first."""
    cv2 = require("cv2", "patches", "facemetric protocol patches (OpenCV's SIFT, warps and resampling)")
    photos, out = Path(photos).expanduser(), Path(out).expanduser()
    if kinds not in KINDS:
        raise DatasetError(f"kinds must be one of {', '.join(KINDS)}, got {kinds!r}")
    for name, value, low in (("points", points, 1), ("min_points", min_points, 1), ("max_side", max_side, 64)):
        if value < low:
            raise DatasetError(f"{name} must be at least {low}, got {value}")
    if seed < 0 or not 0 < train_fraction < 1 or magnification <= 0 or (max_photos is not None and max_photos < 1):
        raise DatasetError(
            f"need seed >= 0, 0 < train_fraction < 1, magnification > 0 and max_photos >= 1 (got {seed}, "
            f"{train_fraction}, {magnification}, {max_photos})"
        )
    if not photos.is_dir():
        raise DatasetError(f"{photos}: no such folder; give a folder of photos (read recursively)")
    candidates, not_images = list_photos(photos, out.resolve())
    if not candidates:
        raise DatasetError(f"{photos}: no image file found (recursively)")
    existed = out.exists()
    check_out(out, photos, overwrite)
    order = np.arange(len(candidates))
    if max_photos is not None:  # a seeded random order, followed until max_photos sequences are made
        order = np.random.default_rng([seed, 1]).permutation(order)
    skipped = [(p.relative_to(photos).as_posix(), reason) for p, reason in not_images]
    used: list[dict[str, Any]] = []
    taken: set[str] = set()
    bar = tqdm(
        total=min(max_photos or len(candidates), len(candidates)),
        desc="patch sequences",
        unit="photo",
        disable=None if progress else True,
    )
    for index in order:
        if max_photos is not None and len(used) == max_photos:
            break
        path = candidates[int(index)]
        relative = path.relative_to(photos).as_posix()
        key = [seed, photo_key(relative)]
        coin = np.random.default_rng([*key, 0]).random()
        kind = {"illum": "i", "view": "v"}.get(kinds, "i" if coin < 0.5 else "v")
        try:
            img = open_image(path, channels=3, draft=(max_side, max_side))
            if max(img.size) > max_side:
                img.thumbnail((max_side, max_side), Image.Resampling.BICUBIC)  # with Pillow's antialiasing
            sequence = make_sequence(
                cv2, np.asarray(img), kind, key, points=points, magnification=magnification, min_points=min_points
            )
        except (ImageDecodeError, UnusablePhoto) as exc:
            skipped.append((relative, str(exc)))
            bar.update(max_photos is None)
            continue
        name = sequence_name(kind, path, taken)
        _write_sequence(out / name, cv2, sequence.stacks, sequence.homographies)
        used.append({"sequence": name, "photo": relative, "kind": kind, "points": len(sequence.points)})
        bar.update(1)
    bar.close()
    skipped.sort()
    if not used:  # no sequence was written: a folder this call made is not left behind
        if not existed:
            shutil.rmtree(out, ignore_errors=True)
        why = f"; e.g. {skipped[0][0]}: {skipped[0][1]}" if skipped else ""
        raise DatasetError(f"{photos}: no photo made a sequence ({len(skipped)} left out{why})")
    write_csv(out / "skipped.csv", ["file", "reason"], skipped)
    used.sort(key=lambda u: u["sequence"])
    names = [u["sequence"] for u in used]
    splits = split_sequences(names, train_fraction, seed)
    write_json(out / "splits.json", {"a": splits})
    n_points = sum(u["points"] for u in used)
    summary = BuildSummary(
        out=str(out),
        sequences=len(used),
        illum=sum(u["kind"] == "i" for u in used),
        view=sum(u["kind"] == "v" for u in used),
        points=n_points,
        patches=n_points * len(IMAGES),
        train=len(splits["train"]),
        test=len(splits["test"]),
        skipped=skipped,
    )
    options = {"seed": seed, "points": points, "kinds": kinds, "max_photos": max_photos, "max_side": max_side}
    options |= {"magnification": magnification, "train_fraction": train_fraction, "min_points": min_points}
    write_json(
        out / "benchmark.json",
        {
            "format": FORMAT,
            "version": 1,
            "photos": str(photos),
            "options": options,
            "patch": PATCH,
            "region_px": list(REGION_PX),
            "jitter": {LEVELS[level]: asdict(j) for level, j in JITTER.items()},
            "counts": summary.model_dump(exclude={"out", "skipped"}) | {"skipped": len(skipped)},
            "sequences": used,
        },
    )
    return summary
