"""Typed results of verification by head pose (``eval.json``'s ``pose`` section)."""

from __future__ import annotations

from facemetric.core.results import Result


class PoseBand(Result):
    """Pairs whose more turned photo has |yaw| in (``low``, ``high``] degrees (the first band from 0 included),
    and how they fared at the breakdown's threshold; a rate is None where the band has no such pair."""

    band: str  # "0-15", "60+", or "unknown" (a photo without a yaw)
    low: float | None
    high: float | None
    genuine: int
    accepted: int  # genuine pairs at or above the threshold
    tar: float | None
    impostors: int
    false_accepts: int  # impostor pairs at or above the threshold
    far: float | None


class PoseCurvePoint(Result):
    """Genuine pairs whose more turned photo has |yaw| nearest ``yaw`` (10-degree steps), and the TAR among them."""

    yaw: float
    genuine: int
    tar: float | None


class PoseBreakdown(Result):
    """Verification by the head's yaw: per band and per 10 degrees, at one threshold."""

    source: str  # where the yaws came from, in words
    threshold: float
    rule: str  # how the threshold was chosen
    photos: int
    photos_with_yaw: int
    bands: list[PoseBand]
    curve: list[PoseCurvePoint]
