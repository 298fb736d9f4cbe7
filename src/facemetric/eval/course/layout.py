"""Write the CMU 11-785 HW2P2 course layout from any identity dataset (``facemetric protocol course``).

The split is :func:`facemetric.eval.course.split.build_course_split`; this module puts it on disk::

    OUT/
      classification/train/<identity>/<file>      train images, a folder per person
      classification/dev/<identity>/<file>        other images of the same people
      classification/test/000000.<ext> ...        flat, numbered in a seeded random order
      verification/known/<identity>/<file>        the enrolled people
      verification/unknown_dev/000000.<ext> ...   flat probes whose answers are given ...
      verification/verification_dev.csv           ... here: image,label (identity or the no-match label)
      verification/unknown_test/000000.<ext> ...  flat probes to answer
      answers/classification_test.csv             image,label: the key the students do not get
      answers/verification_test.csv               image,label
      course.json                                 seed, options, counts, source (written last)

Photo files are linked (absolute symlinks, hard links) or copied, keeping their extension; a
``facemetric prepare`` output has no file per crop, so each crop is written as a PNG (how the
dlib-aligned CelebA course is built: ``prepare celeba --align dlib-chip --size 112``, then
``protocol course`` on that output). Files are not decoded here: a corrupt photo travels as it is
(prepare first to leave such photos out). A symbolic link's target names its source file, and so, in a
folder-per-person source, the person of a numbered test file: hand students a ``copy`` or ``hardlink``
layout. Identity names become folder names made safe (no
separator, no leading dot); a renamed identity is listed in ``course.json``.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from facemetric.core.atomic import write_csv, write_json
from facemetric.core.errors import FacemetricError
from facemetric.data.prepared import is_prepared, load_prepared
from facemetric.data.sources import scan_source
from facemetric.eval.course import NO_MATCH_LABEL
from facemetric.eval.course.result import CourseLayoutSummary, CourseOptions, CoursePeople, SkippedInput
from facemetric.eval.course.split import build_course_split

LINKS = ("symlink", "hardlink", "copy")
ENTRIES = ("classification", "verification", "answers", "course.json")  # what OUT holds, cleared by overwrite
FOLDER_SUBSETS = {"train": "classification/train", "dev": "classification/dev", "known": "verification/known"}
FLAT_SUBSETS = {
    "test": "classification/test",
    "unknown_dev": "verification/unknown_dev",
    "unknown_test": "verification/unknown_test",
}
_UNSAFE = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]')


class CourseLayoutError(FacemetricError, ValueError):
    """The course layout cannot be written as asked (output folder in use, bad option, link refused)."""


def safe_name(name: str) -> str:
    """``name`` usable as one folder or file name everywhere: separators and reserved characters become
    ``_``, no leading dot (a hidden folder is skipped by the scanners), never empty."""
    cleaned = _UNSAFE.sub("_", name).strip()
    cleaned = "_" + cleaned[1:] if cleaned.startswith(".") else cleaned
    return cleaned or "_"


def _folder_names(identities: list[str]) -> dict[str, str]:
    """A distinct safe folder name per identity (``_2``, ``_3`` ... after a clash, also one of case only, which
    a case-insensitive file system would merge), given in sorted order of the names."""
    out: dict[str, str] = {}
    taken: set[str] = set()
    for name in sorted(set(identities)):
        base = candidate = safe_name(name)
        k = 2
        while candidate.casefold() in taken:
            candidate, k = f"{base}_{k}", k + 1
        taken.add(candidate.casefold())
        out[name] = candidate
    return out


def _unique(name: str, used: set[str]) -> str:
    """``name``, or ``stem_2.ext``, ``stem_3.ext`` ... when a file of that name (in any case) is already in the
    folder; ``used`` holds the folder's names, case-folded."""
    path = Path(name)
    candidate, k = name, 2
    while candidate.casefold() in used:
        candidate, k = f"{path.stem}_{k}{path.suffix}", k + 1
    used.add(candidate.casefold())
    return candidate


def _check_out(out: Path, source: Path, overwrite: bool) -> None:
    """Refuse an ``out`` in use; with ``overwrite`` clear the layout's own entries (never the source)."""
    if out.exists() and not out.is_dir():
        raise CourseLayoutError(f"{out} is a file; the course layout needs a folder (a new or empty one)")
    if not out.exists() or not any(out.iterdir()):
        return
    if not overwrite:
        raise CourseLayoutError(
            f"{out} exists and is not empty; choose a new or empty output folder, or pass --overwrite to replace "
            "the course layout in it"
        )
    src = source.resolve()
    if src == out.resolve():
        raise CourseLayoutError(f"the source {source} is the output folder; write the layout elsewhere")
    for entry in ENTRIES:
        target = (out / entry).resolve()
        if src == target or target in src.parents:
            raise CourseLayoutError(
                f"--overwrite would delete {out / entry}, which holds the source {source}; write elsewhere"
            )
    for entry in ENTRIES:
        path = out / entry
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def _place(src: str, dest: Path, link: str) -> None:
    if link == "symlink":
        os.symlink(Path(src).resolve(), dest)
    elif link == "hardlink":
        os.link(src, dest)
    else:
        shutil.copy2(src, dest)


def _write_png(image: np.ndarray, dest: Path) -> None:
    from PIL import Image

    pixels = np.asarray(image)
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    Image.fromarray(pixels).save(dest, format="PNG")


def write_course_layout(
    source: str | Path,
    out: str | Path,
    seed: int = 0,
    layout: str = "auto",
    link: str = "symlink",
    no_match_label: str = NO_MATCH_LABEL,
    overwrite: bool = False,
    verification_fraction: float = 0.3,
    dev_fraction: float = 0.15,
    test_fraction: float = 0.15,
    known_per_identity: int = 1,
    absent_fraction: float = 0.3,
    min_class_images: int = 3,
) -> CourseLayoutSummary:
    """Write the course layout (module docstring) of dataset ``source`` under ``out``; returns what was written:
    counts, identities, skipped inputs, notes and ``usage`` (the commands that use it)."""
    source, out = Path(source).expanduser(), Path(out).expanduser()
    if link not in LINKS:
        raise CourseLayoutError(f"link must be one of {', '.join(LINKS)}, got {link!r}")
    if not no_match_label or safe_name(no_match_label) != no_match_label:
        raise CourseLayoutError(f"no_match_label {no_match_label!r} must be a plain non-empty name (no / or leading .)")
    options: dict[str, Any] = {
        "verification_fraction": verification_fraction,
        "dev_fraction": dev_fraction,
        "test_fraction": test_fraction,
        "known_per_identity": known_per_identity,
        "absent_fraction": absent_fraction,
        "min_class_images": min_class_images,
    }
    packed = None
    if is_prepared(source):
        packed = load_prepared(source)
        paths = [str(p) for p in packed.paths]
        identities = [packed.identity_names[int(k)] for k in packed.labels]
        skipped = [(str(p), str(why)) for p, why in packed.bad]
        kind = "prepared"
    else:
        manifest = scan_source(source, layout)
        paths, identities = [str(p) for p in manifest.paths], list(manifest.identities)
        skipped = [(str(p), why) for p, why in manifest.skipped]
        kind = manifest.layout
    split = build_course_split(np.array(identities), seed, **options)
    folder = _folder_names(identities)
    if no_match_label in folder.values():
        raise CourseLayoutError(
            f"an identity of {source} is named {no_match_label!r}, the no-match label; choose another no_match_label"
        )
    _check_out(out, source, overwrite)

    rng = np.random.default_rng([seed, 1])  # file numbering: its own stream, the split stays the pure function's
    where: list[str | None] = [None] * len(paths)  # each item's file, relative to out
    used: dict[Path, set[str]] = {}
    for part, root in FOLDER_SUBSETS.items():
        for i in np.flatnonzero(split.subset == part):
            dest_dir = out / root / folder[identities[i]]
            name = Path(paths[i]).stem + ".png" if packed is not None else Path(paths[i]).name
            name = safe_name(name)
            where[i] = f"{root}/{folder[identities[i]]}/{_unique(name, used.setdefault(dest_dir, set()))}"
    for part, root in FLAT_SUBSETS.items():
        items = rng.permutation(np.flatnonzero(split.subset == part))
        for k, i in enumerate(items):
            ext = ".png" if packed is not None else Path(paths[i]).suffix
            where[i] = f"{root}/{k:06d}{ext}"
    for root in (*FOLDER_SUBSETS.values(), *FLAT_SUBSETS.values(), "answers"):
        (out / root).mkdir(parents=True, exist_ok=True)

    for item, rel in enumerate(where):
        assert rel is not None  # every item has a subset
        dest = out / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if packed is not None:
            _write_png(packed.images[item], dest)
            continue
        try:
            _place(paths[item], dest, link)
        except OSError as exc:
            if link == "hardlink" and exc.errno in (errno.EXDEV, errno.EPERM, errno.EMLINK):
                raise CourseLayoutError(
                    f"cannot hard-link {paths[item]} into {out} ({exc.strerror}); use --link symlink or --link copy"
                ) from exc
            skipped.append((paths[item], f"could not {link} it into the layout: {exc.strerror or exc}"))
            where[item] = None

    absent = set(split.absent)

    def rows(part: str) -> list[list[str]]:
        """``image,label`` of a flat subset's written files, by file name; absent people get the no-match label."""
        found = []
        for i in np.flatnonzero(split.subset == part):
            rel = where[i]
            if rel is not None:
                found.append([Path(rel).name, no_match_label if identities[i] in absent else folder[identities[i]]])
        return sorted(found)

    write_csv(out / "verification" / "verification_dev.csv", ["image", "label"], rows("unknown_dev"))
    write_csv(out / "answers" / "classification_test.csv", ["image", "label"], rows("test"))
    write_csv(out / "answers" / "verification_test.csv", ["image", "label"], rows("unknown_test"))

    written = np.array([w is not None for w in where])
    counts = {s: int(np.sum((split.subset == s) & written)) for s in split.counts()}
    strangers = np.isin(np.array(identities), split.absent)
    no_match = {p: int(np.sum((split.subset == p) & written & strangers)) for p in ("unknown_dev", "unknown_test")}
    renamed = {name: safe for name, safe in folder.items() if name != safe}
    notes = list(split.notes)
    if packed is not None and layout != "auto":
        notes.append(f"layout {layout!r} ignored: {source} is a prepared cache")
    summary = CourseLayoutSummary(
        output=str(out),
        source=str(source.resolve()),
        source_kind=kind,
        seed=seed,
        options=CourseOptions(
            **options, layout=layout, link=link if packed is None else "png", no_match_label=no_match_label
        ),
        counts=counts,
        no_match_probes=no_match,
        identities=CoursePeople(classes=len(split.classes), known=len(split.known), absent=len(split.absent)),
        renamed_identities=renamed,
        skipped=[SkippedInput(source=p, reason=why) for p, why in skipped],
        notes=notes,
        usage=(
            f"classification: facemetric train configs/course/classify.yaml --data {out}/classification/train "
            f"--set data.dev_source={out}/classification/dev, then facemetric predict classify --model RUN/best.pt "
            f"--test {out}/classification/test -o classification.csv; known or nobody: facemetric predict map "
            f"--model RUN/best.pt --known {out}/verification/known --dev-csv {out}/verification/verification_dev.csv "
            f"--test {out}/verification/unknown_test -o verification.csv; grade with {out}/answers/"
        ),
    )
    people = {part: [folder[p] for p in getattr(split, part)] for part in ("classes", "known", "absent")}
    # written last: the layout is complete
    write_json(out / "course.json", {**summary.model_dump(exclude={"usage"}), "people": people})
    return summary
