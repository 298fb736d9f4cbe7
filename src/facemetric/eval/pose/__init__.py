"""Verification by head pose: how acceptance falls as the head turns.

Each photo's yaw comes from its file name where a dataset encodes it (:data:`~.angles.NAME_SCHEMES`) or from
the detector's estimate from five landmarks (:mod:`facemetric.data.align.pose`); a pair counts in the band of
its more turned photo. :func:`~.bands.pose_breakdown` gives TAR and FAR per band of |yaw| at one threshold,
and TAR per 10 degrees (:mod:`.result`), what ``facemetric eval`` adds to ``eval.json`` and the report.
"""

from facemetric.eval.pose.angles import NAME_SCHEMES, POSE_SOURCES, NameScheme, photo_yaws
from facemetric.eval.pose.bands import YAW_BANDS, pose_breakdown
from facemetric.eval.pose.result import PoseBand, PoseBreakdown, PoseCurvePoint

__all__ = [
    "NAME_SCHEMES",
    "POSE_SOURCES",
    "YAW_BANDS",
    "NameScheme",
    "PoseBand",
    "PoseBreakdown",
    "PoseCurvePoint",
    "photo_yaws",
    "pose_breakdown",
]
