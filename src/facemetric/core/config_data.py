"""Config sections of the data a run reads and how it is batched: ``data``, ``sampler``, ``augment``."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator

from facemetric.core.config_section import Section


class DataConfig(Section):
    source: str | None = None  # a `facemetric prepare` output (read memory-mapped), or a folder / CSV of photos
    # more people to train on, as extra classes: other sources cut the same way (e.g. two `prepare --align dlib`
    # caches of one size); each is split like `source` and its held-out people are left out of training
    extra_sources: list[str] = Field(default_factory=list)
    layout: Literal["auto", "folders", "csv", "flat"] = "auto"
    flat_pattern: str = r"^([^.]+)"  # identity regex for the flat layout
    image_size: list[int] = Field(default_factory=lambda: [64, 64], min_length=2, max_length=2)  # height, width
    channels: Literal[1, 3] = 3  # 3 = RGB (grayscale replicated), 1 = grayscale
    crop: float = Field(1.0, gt=0.05, le=1.0)  # central fraction kept before resizing (LFW deep-funneled: 0.6)
    # held-out identities: a count (>= 1) or a fraction (< 1) of those with 2+ images
    val_identities: int | float = 0.1
    # hold out whole groups of identities: a regex whose first group names an identity's group (patches from
    # `prepare --patches`: ^([^/]+)/, the sequence), so no group is on both sides; val_identities then counts groups
    val_group: str | None = None
    # closed-set classification (same people, other images): a count (>= 1) or a fraction (< 1) of each
    # training person's images held out of training, whose identity the classifier head then predicts
    val_images: int | float = 0
    # or a folder / CSV / prepared cache of other images of the training people (a course's dev/ folder)
    dev_source: str | None = None
    split_seed: int = 0
    val_pairs: int = Field(3000, ge=1)  # at most this many genuine validation pairs (and as many impostor pairs)
    cache_dir: str | None = ".cache/facemetric"  # decoded-image cache for photo sources; null disables
    workers: int = Field(1, ge=0)  # DataLoader processes building augmented batches (0: in the training process)

    @field_validator("image_size")
    @classmethod
    def _size(cls, value: list[int]) -> list[int]:
        if min(value) < 8:
            raise ValueError(f"each side must be at least 8 pixels, got {value}")
        return value

    @field_validator("flat_pattern", "val_group")
    @classmethod
    def _pattern(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            compiled = re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression ({exc})") from None
        if compiled.groups < 1:
            raise ValueError("needs a capturing group, e.g. ^([^.]+) (flat_pattern) or ^([^/]+)/ (val_group)")
        return value

    @field_validator("val_identities", "val_images", mode="before")
    @classmethod
    def _held_out(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError("expected a count (0, 1, 2 ...) or a fraction between 0 and 1")
        if isinstance(value, float) and not 0.0 < value < 1.0:
            if value.is_integer() and value >= 0:
                return int(value)
            raise ValueError("a fraction must be between 0 and 1 (exclusive); a count is a whole number >= 0")
        if value < 0:
            raise ValueError("a count must be >= 0")
        return value


class SamplerConfig(Section):
    p: int = Field(16, ge=2)  # identities per batch
    k: int = Field(4, ge=1)  # images per identity
    short_policy: Literal["repeat", "drop"] = "repeat"  # identities with < k images: sample with replacement or drop
    min_images: int = Field(2, ge=1)  # identities with fewer images are never used for training
    batches_per_epoch: int | None = Field(None, ge=1)  # default: training images // (p * k)


class AugmentConfig(Section):
    """Random changes applied independently to each image of a batch.

    ``shift``: translation up to this fraction of the size (the uncovered border repeats the
    nearest edge pixels); ``flip``: horizontal mirror with probability 0.5; ``brightness`` /
    ``contrast`` / ``saturation``: +- relative jitter; ``grayscale``: probability of dropping
    colour; ``cutout``: probability of blanking a square of ``cutout_size`` of the side;
    ``rotate`` (degrees) / ``scale`` (+- zoom): an affine warp, the one costly part (off by
    default). Zero disables each part.
    """

    flip: bool = True
    # 0: measured on dlib-aligned LFW, translation costs 7 points at a short budget and buys robustness to
    # misalignment that aligned test photos never need (BENCHMARKS.md); unaligned photos (ORL): about 0.08
    shift: float = Field(0.0, ge=0.0, lt=0.5)
    rotate: float = Field(0.0, ge=0.0, le=180.0)
    scale: float = Field(0.0, ge=0.0, lt=1.0)
    brightness: float = Field(0.2, ge=0.0, le=1.0)
    contrast: float = Field(0.2, ge=0.0, le=1.0)
    saturation: float = Field(0.0, ge=0.0, le=1.0)
    grayscale: float = Field(0.0, ge=0.0, le=1.0)
    cutout: float = Field(0.0, ge=0.0, le=1.0)
    cutout_size: float = Field(0.3, gt=0.0, le=1.0)
