"""``ImageSpec``: how a photo becomes a model input, stored with every checkpoint and export.

Evaluation, the gallery and exported models read it so that they see images exactly as
training did: the size and channels, the crop (or the detection backend that cut the face),
and the pixel normalisation.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class ImageSpec:
    """How a file becomes a model input.

    ``crop`` keeps the central fraction of the image first (LFW's deep-funneled 250x250
    images hold the face in roughly the central 0.6); the result is then resized to
    ``height`` x ``width``, cropping the excess so the aspect ratio is not distorted.
    """

    height: int = 64
    width: int = 64
    channels: int = 3
    crop: float = 1.0
    # how the pixels were cut from the photo: crop (the fraction above) or a prepare backend, with the settings
    # that differ from its defaults after a "?" (dlib-chip?detector=yunet), so the same cut is made at inference
    align: str = "crop"
    mean: tuple[float, ...] = ()  # per-channel normalisation of [0, 1] pixels; empty: 0.5 (inputs in [-1, 1])
    std: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))
        for name in ("mean", "std"):
            if getattr(self, name) and len(getattr(self, name)) != self.channels:
                raise ValueError(f"{name} needs one value per channel ({self.channels}), got {getattr(self, name)}")
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {self.channels}")
        if not 0.05 <= self.crop <= 1.0:
            raise ValueError(f"crop must be a fraction in (0.05, 1], got {self.crop}")
        if self.height < 8 or self.width < 8:
            raise ValueError(f"image size must be at least 8x8, got {self.height}x{self.width}")

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def align_name(self) -> str:
        """The backend of :attr:`align`, without its settings (``dlib-chip`` of ``dlib-chip?detector=yunet``)."""
        return self.align.partition("?")[0]

    @property
    def align_options(self) -> dict[str, Any]:
        """The backend settings written in :attr:`align` after its ``?`` (values read as YAML scalars)."""
        import yaml

        options: dict[str, Any] = {}
        for item in filter(None, self.align.partition("?")[2].split("&")):
            key, _, value = item.partition("=")
            options[key] = yaml.safe_load(value)
        return options

    @property
    def normalization(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """(mean, std) per channel applied to pixels scaled to [0, 1]."""
        return self.mean or (0.5,) * self.channels, self.std or (0.5,) * self.channels
