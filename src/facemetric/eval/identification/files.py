"""Identification protocol files: the open-set split CSV, written and read (``facemetric protocol
open-set``), and the per-probe decisions an evaluation writes (``decisions.csv``).

Open-set split CSV, one image per row (header required)::

    path,identity,subset
    alice/1.jpg,alice,gallery
    alice/2.jpg,alice,val_known
    carol/1.jpg,carol,test_unknown

``subset`` is one of gallery, val_known, val_unknown, test_known, test_unknown. Relative paths are
relative to the images folder given at evaluation (``--data``; default: the CSV's own folder).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from facemetric.core.atomic import write_atomic, write_csv
from facemetric.data.sources import scan_source
from facemetric.eval.errors import PairsFormatError
from facemetric.eval.identification.protocol import SUBSETS, OpenSetSplit, build_open_set_split
from facemetric.eval.identification.result import OpenSetSplitSummary
from facemetric.eval.protocol_csv import read_rows, relative_path, resolve_path


def write_open_set_csv(
    path: str | Path, split: OpenSetSplit, paths: list[str], identities: list[str], root: str | Path
) -> Path:
    """Write ``path,identity,subset`` rows, paths relative to ``root``."""
    root = Path(root)
    rows = [[relative_path(p, root), name, s] for p, name, s in zip(paths, identities, split.subset)]
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
    rows, _ = read_rows(path, ["path", "identity", "subset"])
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
    return OpenSetList([resolve_path(r["path"], root) for r in rows], identities, subset)


def make_open_set_split(
    data: str | Path,
    output: str | Path,
    unknown_fraction: float = 0.3,
    gallery_per_identity: int = 1,
    seed: int = 0,
    layout: str = "auto",
) -> OpenSetSplitSummary:
    """``facemetric protocol open-set``: a gallery / known / unknown split of a dataset as CSV."""
    manifest = scan_source(data, layout)
    paths, names = [str(p) for p in manifest.paths], list(manifest.identities)
    split = build_open_set_split(np.array(names), unknown_fraction, gallery_per_identity, seed)
    write_open_set_csv(output, split, paths, names, manifest.root)
    return OpenSetSplitSummary(
        output=str(output),
        **split.counts(),
        notes=split.notes,
        usage=f"facemetric eval --model MODEL --open-set {output} --data {manifest.root}",
    )


def write_decisions_csv(path: str | Path, probe_ids: Sequence[Any], decisions: Sequence[Any]) -> Path:
    """Write ``id,label`` rows (the course competition format), atomically.

    One row per probe, ids and labels written as ``str()`` of what is given, in
    order. Ids must be non-empty and unique; ids and labels must not contain a
    comma or a line break (the format has no quoting). The file is written to a
    temporary name beside ``path`` and renamed, so a reader never sees half a file.
    """
    ids = [str(i) for i in probe_ids]
    labels = [str(d) for d in decisions]
    if len(ids) != len(labels):
        raise ValueError(
            f"probe_ids has {len(ids)} entries but decisions has {len(labels)}; give one decision per probe"
        )
    for what, values in (("probe id", ids), ("label", labels)):
        bad = [v for v in values if any(c in v for c in ",\n\r")]
        if bad:
            raise ValueError(
                f"{len(bad)} {what}s contain a comma or line break, which the id,label CSV "
                f"cannot hold: {bad[:3]!r}; rename them"
            )
    if any(not i for i in ids):
        raise ValueError("probe_ids contains an empty id; every row needs an id")
    if len(set(ids)) != len(ids):
        dup = [i for i, count in Counter(ids).items() if count > 1]
        raise ValueError(f"probe_ids are not unique (e.g. {dup[:3]!r}); one row per probe")
    text = "id,label\n" + "".join(f"{i},{label}\n" for i, label in zip(ids, labels))
    return write_atomic(path, text, fsync=True)
