"""Who a synthetic person is and how one photo of them varies: :class:`IdentityStyle` (fixed per
identity) and :class:`Variation` (per image: pose, expression, clothing, background, lighting, noise),
drawn from seeded generators."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

Color = tuple[int, int, int]

HAIR_STYLES = ("bald", "short", "long", "fringe", "side_part", "spiky")

_SKIN_TONES: tuple[Color, ...] = (
    (255, 224, 196),
    (241, 194, 158),
    (224, 172, 130),
    (198, 134, 92),
    (160, 102, 66),
    (110, 70, 45),
)
_HAIR_COLORS: tuple[Color, ...] = (
    (25, 20, 18),
    (70, 45, 30),
    (120, 80, 45),
    (200, 160, 90),
    (160, 70, 35),
    (150, 150, 150),
)
_EYE_COLORS: tuple[Color, ...] = (
    (70, 45, 25),
    (40, 30, 20),
    (60, 110, 170),
    (70, 130, 80),
    (110, 120, 125),
)
_GLASSES_COLORS: tuple[Color, ...] = ((20, 20, 20), (120, 80, 40), (170, 170, 180))


@dataclass(frozen=True)
class IdentityStyle:
    """Fixed structure of one synthetic person, shared by all of their images.

    Lengths are fractions: ``face_width``/``face_height`` are half-axes as a
    fraction of the image; feature positions and sizes are in face units
    (``u`` across, -1..1 over the face width; ``v`` down, -1..1 over its height).
    """

    face_width: float
    face_height: float
    skin: Color
    hair_color: Color
    hair_style: str
    hair_volume: float
    ear_size: float
    eye_spacing: float
    eye_height: float
    eye_size: float
    eye_color: Color
    brow_thickness: float
    brow_angle: float
    brow_gap: float
    nose_length: float
    nose_width: float
    mouth_y: float
    mouth_width: float
    mouth_height: float
    mouth_curve: float
    glasses: Color | None
    beard: bool
    mole: tuple[float, float] | None


@dataclass(frozen=True)
class Variation:
    """Per-image nuisance factors; none of them carries identity."""

    angle: float
    shift: tuple[float, float]
    scale: float
    eye_open: float
    smile: float
    brow_raise: float
    shirt: Color
    background: tuple[Color, Color]
    background_angle: float
    light_angle: float
    light_strength: float
    brightness: float
    contrast: float
    color_cast: tuple[float, float, float]
    noise: float


def _jitter(rng: np.random.Generator, palette: tuple[Color, ...], amount: float) -> Color:
    """A palette colour with uniform per-channel jitter, so palettes give near-duplicates."""
    base = np.array(palette[rng.integers(len(palette))], dtype=float)
    color = np.clip(base + rng.uniform(-amount, amount, 3), 0, 255)
    return (int(color[0]), int(color[1]), int(color[2]))


def random_identity(rng: np.random.Generator) -> IdentityStyle:
    """Draw one identity. Factors are independent, so many identities are distinct
    but some pairs end up close (same palette entries, similar proportions)."""
    return IdentityStyle(
        face_width=float(rng.uniform(0.25, 0.31)),
        face_height=float(rng.uniform(0.30, 0.37)),
        skin=_jitter(rng, _SKIN_TONES, 12),
        hair_color=_jitter(rng, _HAIR_COLORS, 15),
        hair_style=HAIR_STYLES[rng.integers(len(HAIR_STYLES))],
        hair_volume=float(rng.uniform(1.0, 1.2)),
        ear_size=float(rng.uniform(0.10, 0.18)),
        eye_spacing=float(rng.uniform(0.30, 0.48)),
        eye_height=float(rng.uniform(-0.22, 0.0)),
        eye_size=float(rng.uniform(0.11, 0.19)),
        eye_color=_jitter(rng, _EYE_COLORS, 15),
        brow_thickness=float(rng.uniform(0.05, 0.12)),
        brow_angle=float(rng.uniform(-20.0, 20.0)),
        brow_gap=float(rng.uniform(0.14, 0.26)),
        nose_length=float(rng.uniform(0.22, 0.42)),
        nose_width=float(rng.uniform(0.07, 0.17)),
        mouth_y=float(rng.uniform(0.44, 0.62)),
        mouth_width=float(rng.uniform(0.20, 0.40)),
        mouth_height=float(rng.uniform(0.03, 0.09)),
        mouth_curve=float(rng.uniform(-0.06, 0.14)),
        glasses=_GLASSES_COLORS[rng.integers(len(_GLASSES_COLORS))] if rng.random() < 0.25 else None,
        beard=bool(rng.random() < 0.2),
        mole=(float(rng.uniform(-0.6, 0.6)), float(rng.uniform(-0.1, 0.6))) if rng.random() < 0.2 else None,
    )


def _muted_color(rng: np.random.Generator, low: float, high: float, tint: float) -> Color:
    """A grey of random level in [low, high] with a per-channel tint of up to ``tint``."""
    c = np.clip(rng.uniform(low, high) + rng.uniform(-tint, tint, 3), 0, 255)
    return (int(c[0]), int(c[1]), int(c[2]))


def _clipped_normal(rng: np.random.Generator, sigma: float, bound: float) -> float:
    """Mostly small values, occasionally up to ``bound``: like a face detector's alignment error."""
    return float(np.clip(rng.normal(0.0, sigma), -bound, bound))


def random_variation(rng: np.random.Generator) -> Variation:
    return Variation(
        angle=_clipped_normal(rng, 6.0, 12.0),
        shift=(_clipped_normal(rng, 0.05, 0.12), _clipped_normal(rng, 0.05, 0.12)),
        scale=float(rng.uniform(0.9, 1.1)),
        eye_open=float(rng.uniform(0.55, 1.1)),
        smile=float(rng.normal(0.0, 0.04)),
        brow_raise=float(rng.normal(0.0, 0.03)),
        shirt=_muted_color(rng, 30, 220, 70),
        background=(_muted_color(rng, 70, 190, 30), _muted_color(rng, 70, 190, 30)),
        background_angle=float(rng.uniform(0.0, 2 * math.pi)),
        light_angle=float(rng.uniform(0.0, 2 * math.pi)),
        light_strength=float(rng.uniform(0.0, 0.3)),
        brightness=float(rng.uniform(0.85, 1.15)),
        contrast=float(rng.uniform(0.8, 1.2)),
        color_cast=_triple(rng.uniform(0.92, 1.08, 3)),
        noise=float(rng.uniform(2.0, 8.0)),
    )


def _triple(values: np.ndarray) -> tuple[float, float, float]:
    return float(values[0]), float(values[1]), float(values[2])
