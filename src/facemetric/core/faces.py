"""What a face model found in a photo: the :class:`Detection` record, and :class:`NoFaceError`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from facemetric.core.errors import FacemetricError


@dataclass
class Detection:
    """What a backend found in one photo.

    ``box`` is (left, top, right, bottom) in the photo's pixels, ``landmarks`` five (x, y)
    points when the backend has them, ``faces`` how many faces were detected (the largest,
    most central one is used), ``score`` the detector's confidence where it reports one.
    """

    backend: str
    found: bool
    box: list[float] | None = None
    score: float | None = None
    landmarks: list[list[float]] | None = None
    faces: int = 0
    image_size: list[int] = field(default_factory=list)  # the photo's (width, height)

    def to_dict(self) -> dict:
        return asdict(self)


class NoFaceError(FacemetricError):
    """No face was detected in a photo (the photo itself was readable)."""
