"""Each photo's yaw (degrees, 0 = frontal): from its file name where a dataset encodes it, else from the detector.

A name scheme is a regular expression on the file's stem with a ``yaw`` group (and a ``pitch`` group where the
name has one) and the value of a frontal face; a dataset whose every photo matches one scheme is read that way
(``auto``), which is exact where the detector's estimate is not (it reads about 0.73 of a turn on QMUL's heads:
BENCHMARKS.md). Adding a dataset's naming is one entry of :data:`NAME_SCHEMES`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

POSE_SOURCES = ("auto", "names", "detector", "none")


@dataclass(frozen=True)
class NameScheme:
    """How a dataset writes the pose in its file names: ``pattern`` searched in the stem, ``frontal`` the value
    of its ``yaw`` group for a frontal face (degrees)."""

    pattern: str
    frontal: float
    description: str

    def yaw(self, path: str | Path) -> float | None:
        match = re.search(self.pattern, Path(path).stem)
        return None if match is None else float(match.group("yaw")) - self.frontal


NAME_SCHEMES: dict[str, NameScheme] = {
    "qmul": NameScheme(
        r"_(?P<pitch>\d{3})_(?P<yaw>\d{3})$",
        90.0,
        "QMUL multi-view: <Name>_<tilt>_<pan>, pan 000-180 with 090 frontal",
    ),
}


def yaws_from_names(paths: Sequence[str | Path]) -> tuple[np.ndarray, str] | None:
    """The yaw of every photo from its name, by the first scheme every name matches; None when none does."""
    for scheme in NAME_SCHEMES.values():
        yaws = [scheme.yaw(p) for p in paths]
        if paths and all(y is not None for y in yaws):
            return np.array(yaws, np.float64), f"file names ({scheme.description})"
    return None


def yaws_from_detections(paths: Sequence[str | Path], records: Sequence[dict[str, Any]] | None) -> np.ndarray | None:
    """The detector's yaw of each photo (NaN where it recorded none); None when it recorded no pose at all."""
    by_path = {r["path"]: r.get("pose") for r in records or []}
    yaws = np.array(
        [float(pose["yaw"]) if pose else np.nan for pose in (by_path.get(str(p)) for p in paths)], np.float64
    )
    return None if np.isnan(yaws).all() else yaws


def photo_yaws(
    paths: Sequence[str | Path], records: Sequence[dict[str, Any]] | None, source: str = "auto"
) -> tuple[np.ndarray, str] | None:
    """(yaw of each photo, NaN where unknown; where it came from), or None when ``source`` gives none.

    ``source``: ``names`` (a scheme of :data:`NAME_SCHEMES`), ``detector`` (``records``: detection rows
    with ``path`` and ``pose``), ``auto`` (names where every photo matches a scheme, else the detector) or
    ``none``.
    """
    if source not in POSE_SOURCES:
        raise ValueError(f"pose source must be one of {', '.join(POSE_SOURCES)}, got {source!r}")
    if source in ("auto", "names"):
        named = yaws_from_names(paths)
        if named is not None or source == "names":
            return named
    if source in ("auto", "detector"):
        detected = yaws_from_detections(paths, records)
        if detected is not None:
            return detected, "the detector's estimate from five landmarks"
    return None
