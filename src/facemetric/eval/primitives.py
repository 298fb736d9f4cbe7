"""The metric primitives every evaluation task shares: argument checks, pair scores, the average precision
of a ranking and the threshold at a stated false-accept rate.

Pure functions on arrays, with clear ValueErrors instead of numpy's. :func:`calibrate_threshold` is the
one rule that turns impostor scores into a threshold for a target rate: verification
(``far_calibration``), open-set identification, the course's known-or-nobody mapping and the gallery
all use it, so one false-accept rate means one thing everywhere.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from facemetric.core.results import CalibratedThreshold
from facemetric.eval.errors import ProtocolError

# --------------------------------------------------------------------------- argument checks


def check_labels(labels: ArrayLike, n: int, name: str, emb_name: str) -> np.ndarray:
    """Return ``labels`` as a 1-D array with one label per row of ``emb_name``."""
    y = np.asarray(labels)
    if y.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one label per row), got shape {y.shape}")
    if len(y) != n:
        raise ValueError(f"{name} has {len(y)} labels but {emb_name} has {n} rows; give one label per row")
    return y


def check_positive_int(value: Any, name: str) -> int:
    """Return ``value`` as an int >= 1 (bools refused), or raise ValueError."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def check_scores(scores: ArrayLike, name: str) -> np.ndarray:
    """Return ``scores`` as a non-empty, finite 1-D float64 array."""
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {s.shape}")
    if len(s) == 0:
        raise ValueError(f"{name} is empty")
    if not np.all(np.isfinite(s)):
        raise ValueError(f"{name} contains {int(np.sum(~np.isfinite(s)))} NaN/inf values")
    return s


def check_far(far: Any, name: str) -> float:
    """Return ``far`` as a float in [0, 1], or raise ValueError."""
    if isinstance(far, (bool, np.bool_)) or not isinstance(far, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a number in [0, 1], got {far!r}")
    f = float(far)
    if not 0.0 <= f <= 1.0:  # also rejects NaN
        raise ValueError(f"{name} must be a false-alarm rate in [0, 1], got {far!r}")
    return f


def as_labels(labels: ArrayLike) -> np.ndarray:
    """One identity per item as a non-empty 1-D array (what a protocol builder is given), else ProtocolError."""
    y = np.asarray(labels)
    if y.ndim != 1 or len(y) == 0:
        raise ProtocolError(f"labels must be a non-empty 1-D array (one identity per image), got shape {y.shape}")
    return y


# --------------------------------------------------------------------------- scores and rankings


def cosine_scores(embeddings: np.ndarray, i: np.ndarray, j: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """Cosine similarity of rows i[k] and j[k] (embeddings are unit length), in chunks."""
    out = np.empty(len(i), dtype=np.float32)
    for s in range(0, len(i), chunk):
        out[s : s + chunk] = np.einsum("nd,nd->n", embeddings[i[s : s + chunk]], embeddings[j[s : s + chunk]])
    return out


def ap_of_ranking(correct: np.ndarray, n_positive: int) -> float:
    """Average precision of a ranked list of hits (``correct`` in rank order), recall over ``n_positive``."""
    if n_positive == 0:
        return float("nan")
    hits = np.cumsum(correct)
    precision = hits / np.arange(1, len(correct) + 1)
    return float(np.sum(precision[correct.astype(bool)]) / n_positive)


# --------------------------------------------------------------------------- threshold at a false-accept rate


def threshold_at_far(unknown_sorted: np.ndarray, far: float, rejected: int = 0) -> tuple[float, int]:
    """Loosest threshold, among the unknown scores and "above them all", with FAR <= ``far``.

    ``unknown_sorted`` is ascending. With n unknown probes at most
    k = floor(far * n) may score >= the threshold. The threshold is the k-th
    highest unknown score; if that score is tied with the (k+1)-th, every copy
    of it would alarm, so the threshold moves up to the next higher distinct
    score. With k = 0 it is the next float above the highest unknown score.
    ``rejected`` more unknown probes were turned away before any search: they
    count in n but never alarm (when k reaches the scored ones, the threshold is
    the lowest unknown score; with none scored, -1, the lowest cosine).
    Returns ``(threshold, number of unknown scores >= threshold)``.
    """
    n = len(unknown_sorted)
    k = int(math.floor(far * (n + rejected) + 1e-9))
    if n == 0:
        return -1.0, 0
    above_all = (float(np.nextafter(unknown_sorted[-1], np.inf)), 0)
    if k == 0:
        return above_all
    if k >= n:
        return float(unknown_sorted[0]), n
    value = unknown_sorted[n - k]
    if np.searchsorted(unknown_sorted, value, side="left") == n - k:
        return float(value), k
    right = int(np.searchsorted(unknown_sorted, value, side="right"))
    if right == n:
        return above_all
    return float(unknown_sorted[right]), n - right


def calibrate_threshold(
    unknown_top_scores: ArrayLike, target_far: float, source: str = "validation unknown probes"
) -> CalibratedThreshold:
    """Threshold at which a fraction ``target_far`` of unknown probes would raise a false alarm.

    Pass the top scores of unknown probes from a *validation* split (people not
    in the gallery, and not the people of the test unknowns): calibrating on the
    test probes makes the test FAR meet its target by construction. The rule is
    the one of :func:`facemetric.eval.identification.open_set.dir_at_far` (k-th highest
    score, ties and resolution alike), which errs on the strict side: on held-out
    impostors from the same distribution the expected FAR is k / (n + 1) <= target.
    """
    f = check_far(target_far, "target_far")
    unknown = np.sort(check_scores(unknown_top_scores, "unknown_top_scores"))
    t, alarms = threshold_at_far(unknown, f)
    n = len(unknown)
    return CalibratedThreshold(
        value=t,
        target_far=f,
        achieved_far=alarms / n,
        n_impostors=n,
        source=str(source),
        below_resolution=f < 1.0 / n,
    )
