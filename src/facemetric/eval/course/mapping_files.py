"""The known-or-nobody mapping's files: the enrolled people's folder, the dev CSV read against its folder,
and the submission CSV with its side file of flagged photos.

The course's ``verification/`` folder holds ``known/<identity>/*`` (the enrolled people),
``unknown_dev/*`` with ``verification_dev.csv`` (header ``image,label``: the right answer for each dev
photo, an identity folder name of ``known/`` or the no-match label) and ``unknown_test/*``. Some course
years listed dev images by position (integer ids ``0..N-1`` of the sorted file names) instead of by
name: when every id of the CSV's image column is an integer and none is a file name, rows are matched by
sorted order (:attr:`DevTruth.positional`) and the submission is written with the same convention.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from facemetric.core.atomic import write_csv
from facemetric.core.errors import FacemetricError
from facemetric.data.sources import DatasetError, scan_folders
from facemetric.eval.course import NO_MATCH_LABEL

IMAGE_COLUMNS = ("image", "id")  # the dev CSV's image column (by name, or by position in some years)
LABEL_COLUMN = "label"
_SHOW = 5  # names listed in a message


class MappingError(FacemetricError, ValueError):
    """An input of the known-or-nobody task is unusable; the message names the file and says what to do."""


def first_names(names: Sequence[Any], n: int = _SHOW) -> str:
    """``'a', 'b', 'c' ...`` for a message: the first ``n`` names."""
    shown = ", ".join(repr(str(x)) for x in names[:n])
    return shown + (f" ... ({len(names)} in all)" if len(names) > n else "")


def scan_known(known: str | Path) -> tuple[list[Path], list[str], list[str], list[str]]:
    """``(paths, identities, identity folder names, notes)`` of the enrolled people in ``known/<identity>/*``.

    An identity folder with no image file is skipped with a note (its name still counts as a
    known identity of the dev CSV); no identity with an image at all is an error.
    """
    root = Path(known)
    if not root.is_dir():
        raise MappingError(
            f"{root}: no such folder (known people); give the folder holding one sub-folder per "
            "enrolled identity (known/<identity>/<image>)"
        )
    folders = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    try:
        manifest = scan_folders(root)
    except DatasetError:
        raise MappingError(
            f"{root}: empty known folder: no identity sub-folder holds an image "
            f"({len(folders)} sub-folder(s)); put each enrolled person's photos in known/<identity>/"
        ) from None
    notes = []
    no_images = "identity folder contains no images"  # scan_folders' reason
    empty = [p.name for p, reason in manifest.skipped if reason == no_images]
    other = [f"{p.relative_to(root)} ({reason})" for p, reason in manifest.skipped if reason != no_images]
    if empty:
        notes.append(f"{root}: {len(empty)} identity folder(s) without images skipped: {first_names(empty)}")
    if other:
        notes.append(f"{root}: {len(other)} file(s) skipped: {first_names(other)}")
    return list(manifest.paths), list(manifest.identities), folders, notes


@dataclass
class DevTruth:
    """The dev CSV read against its folder: the right label of each dev image, in sorted file order."""

    labels: list[str]  # aligned with the sorted image names of the dev folder
    header: list[str]  # [image column, label column] as the CSV spells them
    positional: bool  # True: the image column holds integer positions in sorted file order
    notes: list[str] = field(default_factory=list)


def _header(csv_path: Path, row: list[str] | None) -> tuple[int, int]:
    """Positions of the image and label columns in the header ``row``, or a MappingError."""
    cells = [c.strip().lower() for c in row or []]
    image = next((cells.index(name) for name in IMAGE_COLUMNS if name in cells), None)
    if image is None or LABEL_COLUMN not in cells:
        found = f"line 1 is {row!r}" if row else "the file is empty"
        raise MappingError(
            f"{csv_path}: no header with an image and a label column ({found}); the first line must be "
            f"'image,label' (or 'id,label' for ids by position); add it or fix it"
        )
    return image, cells.index(LABEL_COLUMN)


def read_dev_csv(
    csv_path: str | Path,
    images: Sequence[str],
    identities: Collection[str],
    no_match_label: str = NO_MATCH_LABEL,
    folder: str | Path | None = None,
) -> DevTruth:
    """Read the dev CSV and check it against the dev folder's sorted image names ``images``.

    Every label must be a known identity (a folder name of known/) or ``no_match_label``; every
    image exactly one row, no row for an image that is not there. The image column holds file
    names; or, when every value is an integer and none is a file name, positions in sorted file
    order (some course years), which :attr:`DevTruth.positional` records. ``folder`` names the
    dev folder in messages.
    """
    csv_path = Path(csv_path)
    where = Path(folder) if folder is not None else csv_path.parent / "unknown_dev"
    if not csv_path.is_file():
        raise MappingError(f"{csv_path}: no such file (the dev CSV with 'image,label' rows); give its path")
    with csv_path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header_row = next(reader, None)
        image_col, label_col = _header(csv_path, header_row)
        assert header_row is not None
        header = [header_row[image_col].strip(), header_row[label_col].strip()]
        rows: list[tuple[int, str, str]] = []  # (line, image, label)
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            line = reader.line_num
            if len(row) <= max(image_col, label_col):
                raise MappingError(f"{csv_path}: line {line} has {len(row)} field(s), the header {len(header_row)}")
            image, label = row[image_col].strip(), row[label_col].strip()
            if not image or not label:
                raise MappingError(f"{csv_path}: line {line}: empty image or label field; fill it or remove the row")
            rows.append((line, image, label))

    known = set(identities)
    bad = [(line, label) for line, _, label in rows if label not in known and label != no_match_label]
    if bad:
        line, label = bad[0]
        labels = first_names(sorted({b for _, b in bad}))
        more = f" ({len(bad)} rows have such labels: {labels})" if len(bad) > 1 else ""
        raise MappingError(
            f"{csv_path}: line {line}: label {label!r} is neither a known identity (a folder of known/) nor "
            f"the no-match label {no_match_label!r}{more}; known identities are e.g. {first_names(sorted(known))}. "
            "Check that the CSV goes with this known folder, or pass its no-match label"
        )

    names = set(images)
    values = [image for _, image, _ in rows]
    positional = bool(values) and all(v.isascii() and v.isdigit() for v in values) and not names.intersection(values)
    if positional:
        keys = [str(int(v)) for v in values]
        expected = [str(i) for i in range(len(images))]
    else:
        keys, expected = values, list(images)
    counts, wanted = Counter(keys), set(expected)
    extra = [v for v, k in zip(values, keys) if k not in wanted]
    missing = [name for name, key in zip(images, expected) if key not in counts]
    duplicate = sorted(v for v, n in counts.items() if n > 1)
    if extra or missing or duplicate:
        parts = []
        if extra:
            what = f"ids outside 0..{len(images) - 1}" if positional else f"images not in {where}"
            parts.append(f"{len(extra)} row(s) name {what}: {first_names(extra)}")
        if missing:
            parts.append(f"{len(missing)} image(s) of the folder have no row: {first_names(missing)}")
        if duplicate:
            parts.append(f"{len(duplicate)} image(s) have more than one row: {first_names(duplicate)}")
        raise MappingError(
            f"{csv_path} does not match the folder {where}: " + "; ".join(parts) + ". "
            "Give the dev folder that goes with this CSV (or fix the CSV): one row per image of the folder"
        )
    label_of = {k: label for k, (_, _, label) in zip(keys, rows)}
    notes = []
    if positional:
        notes.append(
            f"{csv_path.name}: the {header[0]!r} column holds integer ids, none a file name of {where}: "
            f"id k is the k-th of the {len(images)} image files in sorted name order (the submission uses "
            "the same convention)"
        )
        stems = [Path(n).stem for n in images]
        if all(s.isdigit() for s in stems) and any(int(s) != i for i, s in enumerate(stems)):
            notes.append(
                f"{where}: the file names are numbers too, but not in the order of the ids "
                f"(sorted by name, {images[min(2, len(images) - 1)]!r} is id {min(2, len(images) - 1)}): "
                "check the dev accuracy before trusting the id convention"
            )
    return DevTruth([label_of[k] for k in expected], header, positional, notes)


def write_submission(
    path: str | Path, image_ids: Sequence[str | int], labels: Sequence[str], header: Sequence[str]
) -> Path:
    """Write the submission CSV atomically: ``header``, then one ``image_id,label`` row per image."""
    ids, names = [str(i) for i in image_ids], [str(x) for x in labels]
    if len(header) != 2:
        raise ValueError(f"header must name 2 columns (image, label), got {list(header)!r}")
    if len(ids) != len(names):
        raise ValueError(f"{len(ids)} image ids but {len(names)} labels; give one label per image")
    duplicate = [i for i, n in Counter(ids).items() if n > 1]
    if duplicate:
        raise ValueError(f"image ids are not unique ({first_names(duplicate)}); one row per image")
    return write_csv(path, list(header), zip(ids, names))


def problems_path(submission: str | Path) -> Path:
    """The side file listing the flagged test images of ``submission``: ``sub.csv`` -> ``sub.problems.csv``."""
    path = Path(submission)
    return path.with_name(f"{path.stem if path.suffix else path.name}.problems.csv")
