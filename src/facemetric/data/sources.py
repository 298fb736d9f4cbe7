"""Scan identity datasets into a Manifest (paths + identities), decoding nothing.

Supported layouts, detected automatically by :func:`scan_source`:

* folder per identity: ``root/<identity>/<image>`` (LFW, ORL, your own photos);
* flat files + CSV: a ``.csv`` with ``image,identity`` columns, image paths relative to the
  CSV's folder (CelebA);
* flat files named after the identity: ``root/subject01.glasses`` (Yale), the identity is
  taken from the file name with a regular expression (default: everything before the first
  ``.``).

Any file Pillow can read is an image, whatever its extension (or none). Files that are
clearly not images (by extension) are skipped and counted in the manifest's ``skipped``
list, so nothing is dropped silently.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from facemetric.core.errors import FacemetricError

# Extensions that are certainly not images: skipped during scanning (and reported).
NOT_IMAGE_EXTENSIONS = frozenset(
    [
        ".txt",
        ".csv",
        ".tsv",
        ".json",
        ".jsonl",
        ".yaml",
        ".yml",
        ".md",
        ".html",
        ".htm",
        ".xml",
        ".pdf",
        ".zip",
        ".tar",
        ".gz",
        ".npz",
        ".npy",
        ".pt",
        ".pth",
        ".onnx",
        ".db",
        ".sqlite",
        ".py",
        ".sh",
        ".log",
        ".ini",
        ".cfg",
        ".doc",
        ".docx",
        ".mat",
        ".avi",
        ".mp4",
        ".mov",
    ]
)
DEFAULT_FLAT_PATTERN = r"^([^.]+)"
LAYOUTS = ("auto", "folders", "csv", "flat")


@dataclass
class Manifest:
    """Image paths with their identity names, plus what was skipped while scanning and why."""

    paths: list[Path]
    identities: list[str]
    root: Path
    layout: str
    skipped: list[tuple[Path, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def identity_names(self) -> list[str]:
        """Sorted unique identity names."""
        return sorted(set(self.identities))

    def fingerprint(self, salt: str) -> str:
        """Hex SHA-1 over ``salt`` and every (path, identity, size, modification time): it changes
        when any file is added, removed, relabelled or rewritten. Caches key themselves with it."""
        digest = hashlib.sha1(salt.encode())
        for path, identity in zip(self.paths, self.identities):
            try:
                stat = path.stat()
                digest.update(f"{path}|{identity}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
            except OSError:
                digest.update(f"{path}|{identity}|missing\n".encode())
        return digest.hexdigest()

    def subset(self, keep: list[int]) -> Manifest:
        """A manifest with only the entries at the given indices (skips are carried over)."""
        return Manifest(
            [self.paths[i] for i in keep],
            [self.identities[i] for i in keep],
            self.root,
            self.layout,
            list(self.skipped),
        )


class DatasetError(FacemetricError, ValueError):
    """A dataset cannot be used at all (no images, unreadable CSV ...)."""


def no_usable_image(source: str | Path, skipped: list[tuple[str, str]], what: str = "image") -> str:
    """One line for a source none of whose inputs could be used: how many were left out, and why (an example)."""
    if not skipped:
        return f"{source}: no {what} found in it"
    reasons = Counter(reason.split(" (")[0] for _, reason in skipped)
    why = ", ".join(f"{n} {reason}" for reason, n in reasons.most_common(3))
    path, reason = skipped[0]
    return f"{source}: no usable {what}: all {len(skipped)} input(s) left out ({why}; e.g. {path}: {reason})"


def visible_files(folder: Path) -> list[Path]:
    """Every non-hidden entry that is not a folder: files, and also broken or looping symlinks and
    special files, so that decoding reports them with a reason instead of their vanishing here."""
    return sorted(p for p in folder.iterdir() if not p.name.startswith(".") and not p.is_dir())


def is_candidate_image(path: Path) -> bool:
    """Whether decoding is tried on ``path``: any file but those of known non-image extensions (CSV, text ...)."""
    return path.suffix.lower() not in NOT_IMAGE_EXTENSIONS


def flat_images(folder: str | Path, what: str = "image") -> tuple[list[Path], list[str]]:
    """The image files of a flat folder (a test set: names only, no identity), sorted by name, and
    notes on what was left out: files that are not images by extension, sub-folders. ``what`` names
    the photos in messages (``test``, ``dev``)."""
    root = Path(folder)
    if not root.is_dir():
        raise DatasetError(
            f"{root}: no such folder ({what}); give the folder holding the {what} photos (a flat folder of image files)"
        )
    files = visible_files(root)
    paths = [p for p in files if is_candidate_image(p)]
    notes = []
    others = [p.name for p in files if not is_candidate_image(p)]
    if others:
        notes.append(f"{root}: {len(others)} file(s) skipped, not images by extension: {', '.join(others[:5])}")
    subfolders = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if subfolders:
        notes.append(
            f"{root}: {len(subfolders)} sub-folder(s) ignored (a flat folder is read): {', '.join(subfolders[:5])}"
        )
    if not paths:
        raise DatasetError(f"{root}: no image files in this folder ({what}); put the {what} photos in it")
    return paths, notes


def scan_folders(root: str | Path) -> Manifest:
    """Folder-per-identity layout: every visible sub-folder of ``root`` is one identity."""
    root = Path(root)
    paths: list[Path] = []
    identities: list[str] = []
    skipped: list[tuple[Path, str]] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = list(visible_files(folder))
        images = [p for p in files if is_candidate_image(p)]
        skipped += [(p, "not an image file (by extension)") for p in files if not is_candidate_image(p)]
        if not images:
            skipped.append((folder, "identity folder contains no images"))
            continue
        paths += images
        identities += [folder.name] * len(images)
    skipped += [(p, "file at the top level, not inside an identity folder") for p in visible_files(root)]
    if not paths:
        raise DatasetError(f"{root}: no images found in any sub-folder (expected root/<identity>/<image>)")
    return Manifest(paths, identities, root, "folders", skipped)


def scan_csv(csv_path: str | Path, image_column: str = "image", identity_column: str = "identity") -> Manifest:
    """Flat files listed in a CSV with ``image`` and ``identity`` columns (paths relative to the CSV)."""
    csv_path = Path(csv_path)
    root = csv_path.parent
    paths: list[Path] = []
    identities: list[str] = []
    skipped: list[tuple[Path, str]] = []
    with csv_path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        missing = [c for c in (image_column, identity_column) if c not in header]
        if missing:
            raise DatasetError(
                f"{csv_path}: missing column(s) {missing}; found {header}. "
                f"The CSV needs a header line with '{image_column},{identity_column}'."
            )
        for line_no, row in enumerate(reader, start=2):
            image, identity = (row[image_column] or "").strip(), (row[identity_column] or "").strip()
            if not image or not identity:
                skipped.append((csv_path, f"line {line_no}: empty image or identity field"))
                continue
            path = (root / image) if not Path(image).is_absolute() else Path(image)
            if not path.is_file():
                skipped.append((path, f"listed on line {line_no} of {csv_path.name} but the file does not exist"))
                continue
            paths.append(path)
            identities.append(identity)
    if not paths:
        raise DatasetError(f"{csv_path}: no existing image listed")
    return Manifest(paths, identities, root, "csv", skipped)


def scan_flat(root: str | Path, pattern: str = DEFAULT_FLAT_PATTERN) -> Manifest:
    """Flat files whose name carries the identity, extracted by ``pattern``'s first group."""
    root = Path(root)
    regex = re.compile(pattern)
    paths: list[Path] = []
    identities: list[str] = []
    skipped: list[tuple[Path, str]] = []
    for path in visible_files(root):
        if not is_candidate_image(path):
            skipped.append((path, "not an image file (by extension)"))
            continue
        match = regex.search(path.name)
        if not match or not match.group(1 if regex.groups else 0):
            skipped.append((path, f"file name does not match the identity pattern {pattern!r}"))
            continue
        paths.append(path)
        identities.append(match.group(1 if regex.groups else 0))
    if not paths:
        raise DatasetError(f"{root}: no image file names match the identity pattern {pattern!r}")
    return Manifest(paths, identities, root, "flat", skipped)


def _find_labels_csv(folder: Path) -> Path | None:
    for candidate in sorted(folder.glob("*.csv")):
        with candidate.open(encoding="utf-8", errors="replace") as f:
            header = [c.strip() for c in f.readline().split(",")]
        if "image" in header and "identity" in header:
            return candidate
    return None


def scan_source(source: str | Path, layout: str = "auto", flat_pattern: str = DEFAULT_FLAT_PATTERN) -> Manifest:
    """Scan a dataset given as a folder or a CSV file; ``layout`` is auto|folders|csv|flat.

    ``auto``: a CSV file (or a folder holding a CSV with ``image,identity`` header) is read
    as CSV; a folder holding a single sub-folder and no images (e.g. LFW's ``images/``) is
    descended into; a folder with sub-folders is folder-per-identity; otherwise flat.
    """
    path = Path(source).expanduser()
    if not path.exists():
        raise DatasetError(f"{path}: no such file or folder")
    if layout == "csv" or (layout == "auto" and path.is_file()):
        if path.is_dir():
            found = _find_labels_csv(path)
            if found is None:
                raise DatasetError(f"{path}: no CSV with an 'image,identity' header in this folder")
            path = found
        return scan_csv(path)
    if not path.is_dir():
        raise DatasetError(f"{path}: expected a folder (or a CSV file for the csv layout)")
    if layout == "folders":
        return scan_folders(path)
    if layout == "flat":
        return scan_flat(path, flat_pattern)
    if layout != "auto":
        raise DatasetError(f"unknown layout {layout!r}: use auto, folders, csv or flat")
    labels = _find_labels_csv(path)
    if labels is not None:
        return scan_csv(labels)
    subdirs = [p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")]
    images = [p for p in visible_files(path) if is_candidate_image(p)]
    if len(subdirs) == 1 and not images:
        return scan_source(subdirs[0], "auto", flat_pattern)
    if subdirs:
        return scan_folders(path)
    return scan_flat(path, flat_pattern)
