"""What the CSV protocol files of every task share: rows under a required header, and image paths written
relative to (and read against) the images folder given at evaluation (``--data``)."""

from __future__ import annotations

import csv
from pathlib import Path

from facemetric.eval.errors import PairsFormatError


def relative_path(path: str | Path, root: Path) -> str:
    """``path`` relative to ``root`` (POSIX separators) when it lies under it, else as given."""
    p = Path(path)
    try:
        return p.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return p.as_posix()


def read_rows(path: Path, required: list[str]) -> tuple[list[dict], list[str]]:
    """The rows of a CSV file and its header, which must name the ``required`` columns."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            header = list(reader.fieldnames or [])
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise PairsFormatError(f"{path}: cannot read it as CSV ({exc})") from exc
    missing = [c for c in required if c not in header]
    if missing:
        raise PairsFormatError(f"{path}: the header {header} lacks the column(s) {missing}; expected {required}")
    if not rows:
        raise PairsFormatError(f"{path}: no rows after the header")
    return rows, header


def resolve_path(text: str, root: Path) -> Path:
    """A path of a protocol file: as written when absolute, else under ``root``."""
    p = Path(text)
    return p if p.is_absolute() else root / p
