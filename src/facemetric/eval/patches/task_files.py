"""hpatches-benchmark's task list files (its ``tasks/`` folder): read them, so the published protocol is exact, and
write facemetric's drawn lists in the same format.

For a split X (``full``, ``illum``, ``view``, ``a``, ``b``, ``c``) the folder holds, as ``python/utils/tasks.py``
writes and reads them (commit e0c993c; format described in its ``docs/tasks.md``)::

    verif_pos_split-X.csv         s1,t1,idx1,s2,t2,idx2   positive pairs
    verif_neg_intra_split-X.csv   s1,t1,idx1,s2,t2,idx2   negatives within a sequence (row k: positive k's)
    verif_neg_inter_split-X.csv   s1,t1,idx1,s2,t2,idx2   negatives across sequences
    retr_queries_split-X.csv      s,idx                   retrieval queries (reference patches)
    retr_distractors_split-X.csv  s,idx                   distractors (reference patches), in pool order

``s`` is a sequence name, ``t`` an image id (0 ``ref``, k the level's k-th target) and ``idx`` the patch's
index in the sequence (0-based).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from facemetric.eval.patches.pairs import PairList, PatchIndex, PatchProtocolError, TaskLists

PAIR_HEADER = ("s1", "t1", "idx1", "s2", "t2", "idx2")
POINT_HEADER = ("s", "idx")
PAIR_FILES = {"positives": "verif_pos", "intra": "verif_neg_intra", "inter": "verif_neg_inter"}
POINT_FILES = {"queries": "retr_queries", "distractors": "retr_distractors"}


def task_file(folder: Path, stem: str, split: str) -> Path:
    """``folder/<stem>_split-<split>.csv``."""
    return Path(folder) / f"{stem}_split-{split}.csv"


def has_task_files(folder: str | Path, split: str) -> bool:
    """Whether ``folder`` holds all five list files of ``split``."""
    stems = (*PAIR_FILES.values(), *POINT_FILES.values())
    return all(task_file(Path(folder), stem, split).is_file() for stem in stems)


def _rows(path: Path, header: tuple[str, ...]) -> list[list[str]]:
    """The rows of a list file, its header checked."""
    if not path.is_file():
        raise PatchProtocolError(
            f"{path}: no such file; an hpatches-benchmark tasks folder holds verif_pos, verif_neg_intra, "
            "verif_neg_inter, retr_queries and retr_distractors _split-<split>.csv for the evaluated split"
        )
    with path.open(newline="") as f:
        rows = [[cell.strip() for cell in row] for row in csv.reader(f) if row]
    if not rows or tuple(rows[0]) != header:
        raise PatchProtocolError(f"{path}: the first line must be the header {','.join(header)}")
    bad = next((k for k, row in enumerate(rows[1:], start=2) if len(row) != len(header)), None)
    if bad is not None:
        raise PatchProtocolError(f"{path} line {bad}: {len(header)} comma-separated values expected")
    return rows[1:]


def _points(path: Path, line0: int, names: list[str], idx: list[str], index: PatchIndex) -> np.ndarray:
    """Points of (sequence name, patch index) cells, or an error naming the file and line."""
    seq_of = {name: s for s, name in enumerate(index.names)}
    out = np.empty(len(names), np.int64)
    for k, (name, i) in enumerate(zip(names, idx)):
        where = f"{path} line {line0 + k}"
        if name not in seq_of:
            raise PatchProtocolError(
                f"{where}: sequence {name!r} is not among the evaluated ones; give the lists of the split evaluated "
                "(--patch-split) and the release they were made for"
            )
        s = seq_of[name]
        try:
            point = int(i)
        except ValueError:
            raise PatchProtocolError(f"{where}: patch index {i!r} is not an integer") from None
        if not 0 <= point < index.size[s]:
            raise PatchProtocolError(f"{where}: sequence {name} has {index.size[s]} patches, no index {point}")
        out[k] = index.start[s] + point
    return out


def _images(path: Path, values: list[str]) -> np.ndarray:
    """Image ids 0..5, or an error naming the file."""
    try:
        ids = np.array([int(v) for v in values], np.int64)
    except ValueError:
        raise PatchProtocolError(f"{path}: image ids (t1, t2) must be integers 0..5") from None
    if len(ids) and (ids.min() < 0 or ids.max() > 5):
        raise PatchProtocolError(f"{path}: image ids (t1, t2) must be 0 (ref) .. 5, found {ids.min()}..{ids.max()}")
    return ids


def _pair_list(path: Path, index: PatchIndex) -> PairList:
    rows = _rows(path, PAIR_HEADER)
    cols = list(zip(*rows)) if rows else [()] * 6
    return PairList(
        _points(path, 2, list(cols[0]), list(cols[2]), index),
        _images(path, list(cols[1])),
        _points(path, 2, list(cols[3]), list(cols[5]), index),
        _images(path, list(cols[4])),
    )


def read_task_lists(folder: str | Path, split: str, index: PatchIndex) -> TaskLists:
    """The lists of ``split`` in an hpatches-benchmark ``tasks`` folder, as points of ``index``."""
    folder = Path(folder)
    pairs = {key: _pair_list(task_file(folder, stem, split), index) for key, stem in PAIR_FILES.items()}
    points = {}
    for key, stem in POINT_FILES.items():
        path = task_file(folder, stem, split)
        rows = _rows(path, POINT_HEADER)
        points[key] = _points(path, 2, [r[0] for r in rows], [r[1] for r in rows], index)
    n = len(pairs["positives"])
    if n == 0 or any(len(pairs[key]) != n for key in ("intra", "inter")):
        raise PatchProtocolError(
            f"{folder}: split {split} has {n} positives, {len(pairs['intra'])} intra and {len(pairs['inter'])} inter "
            "negatives; the benchmark's lists hold one negative of each kind per positive (and at least one)"
        )
    return TaskLists(pairs["positives"], pairs["intra"], pairs["inter"], points["queries"], points["distractors"])


def write_task_lists(folder: str | Path, split: str, lists: TaskLists, index: PatchIndex) -> None:
    """Write ``lists`` as the five files of ``split`` in ``folder`` (the benchmark's format)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)

    def cell(point: int) -> tuple[str, int]:
        return index.names[index.sequence[point]], int(index.patch_index[point])

    for key, stem in PAIR_FILES.items():
        pairs: PairList = getattr(lists, key)
        with task_file(folder, stem, split).open("w", newline="") as f:
            out = csv.writer(f, lineterminator="\n")
            out.writerow(PAIR_HEADER)
            for a, i, b, j in zip(pairs.point1, pairs.image1, pairs.point2, pairs.image2):
                out.writerow((cell(a)[0], int(i), cell(a)[1], cell(b)[0], int(j), cell(b)[1]))
    for key, stem in POINT_FILES.items():
        with task_file(folder, stem, split).open("w", newline="") as f:
            out = csv.writer(f, lineterminator="\n")
            out.writerow(POINT_HEADER)
            out.writerows(cell(p) for p in getattr(lists, key))
