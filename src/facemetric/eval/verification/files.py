"""Verification protocol files: pairs as a CSV or in LFW's format, written and read
(``facemetric protocol pairs``).

Pairs CSV, one pair per row (header required)::

    path1,path2,same,fold
    alice/1.jpg,alice/4.jpg,1,0
    alice/2.jpg,bob/7.jpg,0,0

``same`` is 1 (same person) or 0; ``fold`` a 0-based fold id (optional column: without it the
evaluation draws stratified folds). Relative paths are relative to the images folder given at
evaluation (``--data``; default: the CSV's own folder). The LFW format is
:mod:`facemetric.eval.verification.lfw_pairs`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facemetric.core.atomic import write_csv
from facemetric.data.sources import scan_source
from facemetric.eval.errors import PairsFormatError, ProtocolError
from facemetric.eval.protocol_csv import read_rows, relative_path, resolve_path
from facemetric.eval.verification.lfw_pairs import Pair, write_pairs
from facemetric.eval.verification.protocol import PairProtocol, build_pair_protocol
from facemetric.eval.verification.result import PairProtocolSummary

_LFW_NAME = re.compile(r"(?P<name>.+)_(?P<index>[0-9]{4})\.[A-Za-z0-9]+")


def write_pairs_csv(path: str | Path, protocol: PairProtocol, paths: list[str], root: str | Path) -> Path:
    """Write ``path1,path2,same,fold`` rows, paths relative to ``root`` (the dataset folder)."""
    root = Path(root)
    rows = [
        [relative_path(paths[a], root), relative_path(paths[b], root), int(s), int(f)]
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


def read_pairs_csv(path: str | Path, images_root: str | Path | None = None) -> PairsList:
    """Read a pairs CSV (module docstring); errors name the line and what is wrong."""
    path = Path(path)
    root = Path(images_root) if images_root is not None else path.parent
    rows, header = read_rows(path, ["path1", "path2", "same"])
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
        p1.append(resolve_path(row["path1"], root))
        p2.append(resolve_path(row["path2"], root))
        same.append(int(row["same"]))
        fold.append(int(row["fold"]) if has_fold else 0)
        lines.append(line)
    return PairsList(p1, p2, np.array(same, np.int8), np.array(fold, np.int64) if has_fold else None, lines)


def make_pair_protocol(
    data: str | Path,
    output: str | Path,
    folds: int = 10,
    pairs_per_fold: int = 300,
    seed: int = 0,
    layout: str = "auto",
) -> PairProtocolSummary:
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
    return PairProtocolSummary(
        output=str(output),
        folds=made.n_folds,
        pairs_per_class_per_fold=made.pairs_per_class,
        pairs=len(made),
        notes=made.notes,
        usage=f"facemetric eval --model MODEL --pairs {output} --data {manifest.root}",
    )
