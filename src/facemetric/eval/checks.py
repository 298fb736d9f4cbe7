"""Argument checks shared by the evaluation metrics: clear ValueErrors instead of numpy's."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike


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
