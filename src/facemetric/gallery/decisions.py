"""What a verify or identify answer says about its score: the threshold, the false-accept rates, the warnings.

Every answer carries the score, the threshold and the false-accept rate behind it: the threshold's
calibrated FAR, and ``far_at_score``, the fraction of the calibration's impostor scores at or above this
score (how often a stranger scores this high). Without a calibration the answer has the score and the
candidates but no decision, and a note saying what to do. A threshold may no longer hold: it was
calibrated with another template, or (identify) for a gallery with far fewer people, where a stranger had
fewer chances to match someone; the answer then carries a warning.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from facemetric.gallery.thresholds import StoredThreshold

GROWTH_WARNING = 1.5  # identify answers warn once the gallery has this many times the people it was calibrated with
NOT_CALIBRATED = "not calibrated: run `facemetric gallery calibrate --data PHOTOS --far 1e-3` for decisions"


@dataclass(frozen=True)
class Calibration:
    """The fields of :class:`~facemetric.gallery.schemas.Decision` besides the score and the detection."""

    threshold: float | None
    target_far: float | None
    achieved_far: float | None = None
    far_at_score: float | None = None
    calibrated_on: str | None = None
    note: str | None = None
    warning: str | None = None

    def fields(self) -> dict[str, Any]:
        """As keyword arguments of an answer."""
        return asdict(self)

    def accepts(self, score: float) -> bool | None:
        """Whether ``score`` passes the threshold (None without one)."""
        return None if self.threshold is None else bool(score >= self.threshold)


def calibration_of(
    threshold: StoredThreshold | None, kind: str, score: float | None, template: str, identities: int
) -> Calibration:
    """What an answer of ``kind`` ("identify", "verify") with ``score`` (None: nobody to score) says, given the
    gallery's stored ``threshold`` of that kind, the ``template`` scores use and the people enrolled now."""
    if threshold is None:
        return Calibration(threshold=None, target_far=None, note=NOT_CALIBRATED)
    warning = None
    then = threshold.gallery_identities
    if threshold.template is not None and threshold.template != template:
        warning = (
            f"the threshold was calibrated with template {threshold.template!r} but scores "
            f"use {template!r}: calibrate again with this template"
        )
    elif kind == "identify" and then is not None and identities > GROWTH_WARNING * then:
        # more people enrolled: a stranger has more chances to match someone, the real FAR is higher
        warning = (
            f"calibrated with {then} people enrolled, now {identities}: the false-alarm rate is "
            "likely above target; calibrate again"
        )
    return Calibration(
        threshold=threshold.value,
        target_far=threshold.target_far,
        achieved_far=threshold.achieved_far,
        far_at_score=None if score is None else threshold.far_at(score),
        calibrated_on=threshold.source,
        warning=warning,
    )
