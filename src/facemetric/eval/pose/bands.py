"""TAR and FAR by band of the head's yaw, at one threshold (pure functions on arrays)."""

from __future__ import annotations

import numpy as np

from facemetric.eval.pose.result import PoseBand, PoseBreakdown, PoseCurvePoint

YAW_BANDS: tuple[tuple[float, float], ...] = ((0, 15), (15, 30), (30, 45), (45, 60), (60, 180))
CURVE_STEP = 10.0  # degrees between the points of TAR against |yaw|


def _label(low: float, high: float) -> str:
    return f"{low:g}+" if high >= 180 else f"{low:g}-{high:g}"


def _band(
    name: str, low: float | None, high: float | None, rows: np.ndarray, scores: np.ndarray, same: np.ndarray, t: float
) -> PoseBand:
    genuine, impostor = rows & (same == 1), rows & (same == 0)
    accepted, false_accepts = int(np.sum(scores[genuine] >= t)), int(np.sum(scores[impostor] >= t))
    n_genuine, n_impostor = int(genuine.sum()), int(impostor.sum())
    return PoseBand(
        band=name,
        low=low,
        high=high,
        genuine=n_genuine,
        accepted=accepted,
        tar=accepted / n_genuine if n_genuine else None,
        impostors=n_impostor,
        false_accepts=false_accepts,
        far=false_accepts / n_impostor if n_impostor else None,
    )


def pose_breakdown(
    scores: np.ndarray,
    same: np.ndarray,
    yaw1: np.ndarray,
    yaw2: np.ndarray,
    threshold: float,
    rule: str,
    source: str,
    *,
    photos: int,
    photos_with_yaw: int,
) -> PoseBreakdown:
    """Verification of the pairs (``scores``, ``same`` 1/0) by the |yaw| of each pair's more turned photo
    (``yaw1``, ``yaw2``: degrees, NaN where unknown), at ``threshold`` (a pair is accepted at or above it).

    Bands are :data:`YAW_BANDS`, (low, high], the first from 0 included; pairs with a photo of unknown yaw
    make an ``unknown`` band when there are any. The curve gives the TAR of genuine pairs per 10 degrees
    (|yaw| rounded to the nearest step, 90 and beyond at 90). ``photos`` and ``photos_with_yaw`` are the
    evaluation's photo counts, recorded with the result.
    """
    scores, same = np.asarray(scores, np.float64), np.asarray(same).astype(np.int8)
    pair_yaw = np.maximum(np.abs(np.asarray(yaw1, np.float64)), np.abs(np.asarray(yaw2, np.float64)))
    known = ~np.isnan(pair_yaw)
    yaw = np.where(known, pair_yaw, -1.0)
    bands = []
    for k, (low, high) in enumerate(YAW_BANDS):
        rows = known & (yaw <= high) & ((yaw > low) if k else (yaw >= low))
        bands.append(_band(_label(low, high), low, high, rows, scores, same, threshold))
    if not known.all():
        bands.append(_band("unknown", None, None, ~known, scores, same, threshold))
    steps = np.minimum(np.round(yaw / CURVE_STEP) * CURVE_STEP, 90.0)
    curve = []
    for step in np.unique(steps[known & (same == 1)]):
        rows = known & (same == 1) & (steps == step)
        curve.append(
            PoseCurvePoint(yaw=float(step), genuine=int(rows.sum()), tar=float(np.mean(scores[rows] >= threshold)))
        )
    return PoseBreakdown(
        source=source,
        threshold=float(threshold),
        rule=rule,
        photos=photos,
        photos_with_yaw=photos_with_yaw,
        bands=bands,
        curve=curve,
    )
