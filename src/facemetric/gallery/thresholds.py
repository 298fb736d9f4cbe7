"""The calibrated thresholds a gallery keeps: :class:`~facemetric.core.results.CalibratedThreshold`, plus the
impostor scores behind it.

A calibration (:mod:`facemetric.gallery.calibration`) sets one threshold for identify answers and one for
verify answers. The store keeps each as the threshold record the API answers, plus
``impostor_quantiles``: :data:`QUANTILES` points of the impostor score distribution it was set on, from
which every answer's ``far_at_score`` is read (how often a stranger scored at least this high). The
quantiles are stored, never answered. In the store (and an export file) they are one JSON object,
``{"identify": {...}, "verify": {...}}``, ``{}`` before any calibration.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from facemetric.core.results import CalibratedThreshold
from facemetric.gallery.interface import GalleryError

QUANTILES = 2001  # points kept of each impostor score distribution, for far_at_score


class StoredThreshold(CalibratedThreshold):
    """A calibrated threshold as the gallery keeps it: the answered record and its impostor quantiles."""

    impostor_quantiles: list[float] = Field(
        description="the impostor scores' quantiles at evenly spaced levels from 0 to 1 (stored, never answered)"
    )

    @classmethod
    def of(cls, threshold: CalibratedThreshold, impostor_scores: np.ndarray) -> StoredThreshold:
        """``threshold`` with the quantiles of the impostor scores it was set on."""
        quantiles = np.quantile(np.asarray(impostor_scores), np.linspace(0, 1, QUANTILES)).round(6)
        return cls(**threshold.model_dump(), impostor_quantiles=quantiles.tolist())

    def answered(self) -> CalibratedThreshold:
        """The record the API answers: everything but the quantiles."""
        return CalibratedThreshold(**self.model_dump(exclude={"impostor_quantiles"}))

    def far_at(self, score: float) -> float:
        """Fraction of the calibration's impostor scores >= ``score`` (read from the stored quantiles)."""
        q = np.asarray(self.impostor_quantiles, np.float64)
        levels = np.linspace(0.0, 1.0, len(q))
        return float(max(0.0, 1.0 - np.interp(score, q, levels, left=0.0, right=1.0)))


class StoredThresholds(BaseModel):
    """Both thresholds of a gallery; each None until it is calibrated."""

    model_config = ConfigDict(extra="forbid")

    identify: StoredThreshold | None = None
    verify: StoredThreshold | None = None

    @property
    def calibrated(self) -> bool:
        """Whether any threshold is set."""
        return self.identify is not None or self.verify is not None

    def as_dict(self) -> dict[str, Any]:
        """The JSON object the stores and export files hold: only the thresholds that are set."""
        return self.model_dump(exclude={kind for kind, threshold in self if threshold is None})

    def to_json(self) -> str:
        return json.dumps(self.as_dict())

    @classmethod
    def from_json(cls, data: str | dict[str, Any], where: str) -> StoredThresholds:
        """The thresholds of the JSON (text or parsed) stored at ``where``; :class:`GalleryError` when damaged."""
        try:
            return cls.model_validate(json.loads(data) if isinstance(data, str) else data)
        except ValueError as exc:  # not JSON, or not the record (pydantic's ValidationError is a ValueError)
            first = (str(exc).splitlines() or [type(exc).__name__])[0]
            raise GalleryError(
                f"{where}: the calibrated thresholds stored there are damaged ({first}); calibrate again"
            ) from None
