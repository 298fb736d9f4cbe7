"""Protocol files: verification pairs (LFW format or CSV) and open-set splits (CSV), written and read.

Pairs CSV, one pair per row (header required)::

    path1,path2,same,fold
    alice/1.jpg,alice/4.jpg,1,0
    alice/2.jpg,bob/7.jpg,0,0

``same`` is 1 (same person) or 0; ``fold`` a 0-based fold id (optional column: without it the
evaluation draws stratified folds). Open-set split CSV, one image per row::

    path,identity,subset
    alice/1.jpg,alice,gallery
    alice/2.jpg,alice,val_known
    carol/1.jpg,carol,test_unknown

``subset`` is one of gallery, val_known, val_unknown, test_known, test_unknown. Relative paths are
relative to the images folder given at evaluation (``--images``; default: the CSV's own folder).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facemetric.core.atomic import write_csv
from facemetric.data.sources import scan_source
from facemetric.eval.lfw_pairs import Pair, PairsFormatError, write_pairs
from facemetric.eval.protocols import (
    SUBSETS,
    OpenSetSplit,
    PairProtocol,
    ProtocolError,
    build_open_set_split,
    build_pair_protocol,
)

_LFW_NAME = re.compile(r"(?P<name>.+)_(?P<index>[0-9]{4})\.[A-Za-z0-9]+")


def _relative(path: str | Path, root: Path) -> str:
    """``path`` relative to ``root`` (POSIX separators) when it lies under it, else as given."""
    p = Path(path)
    try:
        return p.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return p.as_posix()


def write_pairs_csv(path: str | Path, protocol: PairProtocol, paths: list[str], root: str | Path) -> Path:
    """Write ``path1,path2,same,fold`` rows, paths relative to ``root`` (the dataset folder)."""
    root = Path(root)
    rows = [
        [_relative(paths[a], root), _relative(paths[b], root), int(s), int(f)]
        for a, b, s, f in zip(protocol.i, protocol.j, protocol.same, protocol.fold)
    ]
    return write_csv(path, ["path1", "path2", "same", "fold"], rows)


def write_pairs_lfw(path: str | Path, protocol: PairProtocol, paths: list[str], identities: list[str]) -> Path:
    """Write the LFW pairs format (``F N`` header): needs LFW file naming, ``<name>/<name>_0001.jpg``.

    Raises :class:`ProtocolError` naming an image that does not follow it (write a .csv instead).
    """
    where: list[tuple[str, int]] = []
    for p, name in zip(paths, identities):
        m = _LFW_NAME.fullmatch(Path(p).name)
        if m is None or m["name"] != name or Path(p).parent.name != name:
            raise ProtocolError(
                f"{p} (identity {name!r}) is not named like LFW (<name>/<name>_0001.jpg), so the LFW pairs format "
                "cannot refer to it; write the protocol as .csv instead"
            )
        where.append((name, int(m["index"])))
    pairs = []
    for a, b, s, f in zip(protocol.i, protocol.j, protocol.same, protocol.fold):
        (n1, i1), (n2, i2) = where[a], where[b]
        pairs.append(Pair(n1, i1, n2, i2, bool(s), int(f), 0))
    write_pairs(path, pairs, folds=protocol.n_folds)
    return Path(path)


@dataclass
class PairsList:
    """Resolved pairs read from a CSV: image paths, 1/0 labels, fold ids (None without a fold column)."""

    path1: list[Path]
    path2: list[Path]
    same: np.ndarray
    fold: np.ndarray | None
    lines: list[int]


def _read_rows(path: Path, required: list[str]) -> tuple[list[dict], list[str]]:
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


def _resolve(text: str, root: Path) -> Path:
    p = Path(text)
    return p if p.is_absolute() else root / p


def read_pairs_csv(path: str | Path, images_root: str | Path | None = None) -> PairsList:
    """Read a pairs CSV (module docstring); errors name the line and what is wrong."""
    path = Path(path)
    root = Path(images_root) if images_root is not None else path.parent
    rows, header = _read_rows(path, ["path1", "path2", "same"])
    has_fold = "fold" in header
    p1, p2, same, fold, lines = [], [], [], [], []
    for k, row in enumerate(rows):
        line = k + 2
        if not row["path1"] or not row["path2"]:
            raise PairsFormatError(f"{path}, line {line}: empty path")
        if row["same"] not in ("0", "1"):
            raise PairsFormatError(f"{path}, line {line}: same must be 1 or 0, got {row['same']!r}")
        if has_fold and not (row["fold"] or "").isdigit():
            raise PairsFormatError(f"{path}, line {line}: fold must be a 0-based integer, got {row['fold']!r}")
        p1.append(_resolve(row["path1"], root))
        p2.append(_resolve(row["path2"], root))
        same.append(int(row["same"]))
        fold.append(int(row["fold"]) if has_fold else 0)
        lines.append(line)
    return PairsList(p1, p2, np.array(same, np.int8), np.array(fold, np.int64) if has_fold else None, lines)


def write_open_set_csv(
    path: str | Path, split: OpenSetSplit, paths: list[str], identities: list[str], root: str | Path
) -> Path:
    """Write ``path,identity,subset`` rows, paths relative to ``root``."""
    root = Path(root)
    rows = [[_relative(p, root), name, s] for p, name, s in zip(paths, identities, split.subset)]
    return write_csv(path, ["path", "identity", "subset"], rows)


@dataclass
class OpenSetList:
    """An open-set split read from CSV: image paths, identity names and subset names."""

    paths: list[Path]
    identities: np.ndarray
    subset: np.ndarray


def read_open_set_csv(path: str | Path, images_root: str | Path | None = None) -> OpenSetList:
    """Read an open-set split CSV; checks the subset names and that the unknowns are never enrolled."""
    path = Path(path)
    root = Path(images_root) if images_root is not None else path.parent
    rows, _ = _read_rows(path, ["path", "identity", "subset"])
    for k, row in enumerate(rows):
        if row["subset"] not in SUBSETS:
            raise PairsFormatError(f"{path}, line {k + 2}: subset {row['subset']!r} is not one of {', '.join(SUBSETS)}")
        if not row["path"] or not row["identity"]:
            raise PairsFormatError(f"{path}, line {k + 2}: empty path or identity")
    identities = np.array([r["identity"] for r in rows])
    subset = np.array([r["subset"] for r in rows])
    enrolled = set(identities[subset == "gallery"].tolist())
    leaked = sorted(set(identities[np.char.endswith(subset, "_unknown")].tolist()) & enrolled)
    if leaked:
        raise PairsFormatError(f"{path}: identities {leaked[:5]} are in the gallery and also listed as unknown probes")
    strays = sorted(set(identities[np.char.endswith(subset, "_known")].tolist()) - enrolled)
    if strays:
        raise PairsFormatError(f"{path}: known probes of identities {strays[:5]} that have no gallery image")
    return OpenSetList([_resolve(r["path"], root) for r in rows], identities, subset)


def make_pair_protocol(
    data: str | Path,
    output: str | Path,
    folds: int = 10,
    pairs_per_fold: int = 300,
    seed: int = 0,
    layout: str = "auto",
) -> dict:
    """``facemetric protocol pairs``: identity-disjoint pair folds of a dataset, written to ``output``
    (``.csv``, or the LFW format for any other suffix). Returns a summary with the notes and the
    command that evaluates a model on it."""
    manifest = scan_source(data, layout)
    paths, names = [str(p) for p in manifest.paths], list(manifest.identities)
    made = build_pair_protocol(np.array(names), folds, pairs_per_fold, seed)
    if Path(output).suffix.lower() == ".csv":
        write_pairs_csv(output, made, paths, manifest.root)
    else:
        write_pairs_lfw(output, made, paths, names)
    return {
        "output": str(output),
        "folds": made.n_folds,
        "pairs_per_class_per_fold": made.pairs_per_class,
        "pairs": len(made),
        "notes": made.notes,
        "usage": f"facemetric eval --model MODEL --pairs {output} --images {manifest.root}",
    }


def make_open_set_split(
    data: str | Path,
    output: str | Path,
    unknown_fraction: float = 0.3,
    gallery_per_identity: int = 1,
    seed: int = 0,
    layout: str = "auto",
) -> dict:
    """``facemetric protocol open-set``: a gallery / known / unknown split of a dataset as CSV."""
    manifest = scan_source(data, layout)
    paths, names = [str(p) for p in manifest.paths], list(manifest.identities)
    split = build_open_set_split(np.array(names), unknown_fraction, gallery_per_identity, seed)
    write_open_set_csv(output, split, paths, names, manifest.root)
    return {
        "output": str(output),
        **split.counts(),
        "notes": split.notes,
        "usage": f"facemetric eval --model MODEL --open-set {output} --images {manifest.root}",
    }
