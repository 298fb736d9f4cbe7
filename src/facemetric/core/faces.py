"""What a face model found in a photo: the :class:`Detection` record, its :class:`Pose`, and :class:`NoFaceError`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from facemetric.core.errors import FacemetricError


@dataclass(frozen=True)
class Pose:
    """A head's pose in degrees, as the camera sees it: ``yaw`` positive when the face turns towards the
    image's right, ``pitch`` positive when it looks up, ``roll`` positive when it turns clockwise in the
    image (``facemetric.data.align.pose``); (0, 0, 0) looks straight into the camera."""

    yaw: float
    pitch: float
    roll: float

    def rounded(self, digits: int = 1) -> dict[str, float]:
        """The record's form: ``{"yaw": ..., "pitch": ..., "roll": ...}``, to ``digits`` decimals."""
        return {"yaw": round(self.yaw, digits), "pitch": round(self.pitch, digits), "roll": round(self.roll, digits)}


@dataclass
class Detection:
    """What a backend found in one photo.

    ``box`` is (left, top, right, bottom) in the photo's pixels, ``landmarks`` five (x, y)
    points when the backend has them, ``faces`` how many faces were detected (the largest,
    most central one is used), ``score`` the detector's confidence where it reports one, ``pose``
    the head's yaw, pitch and roll in degrees (:class:`Pose`) where five landmarks give it.
    """

    backend: str
    found: bool
    box: list[float] | None = None
    score: float | None = None
    landmarks: list[list[float]] | None = None
    faces: int = 0
    image_size: list[int] = field(default_factory=list)  # the photo's (width, height)
    pose: dict[str, float] | None = None  # Pose.rounded(): {"yaw": ..., "pitch": ..., "roll": ...}

    def to_dict(self) -> dict:
        return asdict(self)


class NoFaceError(FacemetricError):
    """No face was detected in a photo (the photo itself was readable)."""
