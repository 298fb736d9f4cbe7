"""Procedural synthetic identity dataset of cartoon faces.

Used by ``facemetric demo`` when the user has no data, so the whole train and
evaluate loop runs on CPU in minutes. Each identity is a fixed
:class:`IdentityStyle` (face shape, skin tone, hair, eyes, brows, nose, mouth,
accessories); every rendered image of it varies in rotation, shift, scale,
lighting, background, clothing, expression and noise, so an embedding model
has to learn invariance instead of matching raw pixels.

Seeding is hierarchical: identity ``i`` depends only on ``(seed, i)`` and its
image ``j`` only on ``(seed, i, j)``, so a larger dataset generated with the
same seed starts with exactly the files of a smaller one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from tqdm import tqdm

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

_SUPERSAMPLE = 3  # draw at 3x the output size, then box-reduce (antialiasing)
_MARGIN = 0.3  # extra layer border (fraction of the output) so shifts never expose an edge
_FACE_CENTER_Y = 0.48  # face centre in the output, as a fraction of its height
# Stream tag at a fixed position keeps identity and image seed sequences disjoint
# (SeedSequence pads short entropy with zeros, so [s, i] and [s, i, 0] would collide).
_ID_STREAM, _IMAGE_STREAM = 0, 1


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
class _Variation:
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


def _random_variation(rng: np.random.Generator) -> _Variation:
    return _Variation(
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


def _shade(color: Color, factor: float) -> Color:
    r, g, b = (min(255, int(c * factor)) for c in color)
    return (r, g, b)


class _Face:
    """Maps face units (u, v) to pixels on the high-resolution drawing layer."""

    def __init__(self, draw: ImageDraw.ImageDraw, cx: float, cy: float, half_w: float, half_h: float) -> None:
        self.draw, self.cx, self.cy, self.half_w, self.half_h = draw, cx, cy, half_w, half_h

    def pt(self, u: float, v: float) -> tuple[float, float]:
        return (self.cx + u * self.half_w, self.cy + v * self.half_h)

    def box(self, u: float, v: float, ru: float, rv: float) -> tuple[float, float, float, float]:
        """Bounding box of an ellipse centred at (u, v) with radii (ru, rv) in face units."""
        x, y = self.pt(u, v)
        return (x - ru * self.half_w, y - rv * self.half_h, x + ru * self.half_w, y + rv * self.half_h)

    def circle(self, u: float, v: float, r: float) -> tuple[float, float, float, float]:
        """Bounding box of a circle of radius ``r`` face-width units centred at (u, v)."""
        return self.box(u, v, r, r * self.half_w / self.half_h)

    def px(self, length: float) -> int:
        """A stroke width in pixels for a length in face-width units."""
        return max(1, round(length * self.half_w))


def _draw_body(face: _Face, style: IdentityStyle, var: _Variation, layer_size: int) -> None:
    """Neck and shoulders; the shirt colour is per image, like clothing across photos."""
    face.draw.rectangle(face.box(0, 1.1, 0.45, 0.5), fill=_shade(style.skin, 0.85))
    left, top = face.pt(-2.3, 1.35)
    right, _ = face.pt(2.3, 1.35)
    face.draw.rounded_rectangle((left, top, right, layer_size), radius=0.8 * face.half_w, fill=var.shirt)


def _draw_hair_back(face: _Face, style: IdentityStyle) -> None:
    if style.hair_style == "bald":
        return
    vol = style.hair_volume
    face.draw.ellipse(face.box(0, -0.12 * vol, 1.08 * vol, 0.95 * vol), fill=style.hair_color)
    if style.hair_style == "long":
        x0, y0 = face.pt(-1.2 * vol, -0.2)
        x1, y1 = face.pt(1.2 * vol, 1.25)
        face.draw.rounded_rectangle((x0, y0, x1, y1), radius=0.3 * face.half_w, fill=style.hair_color)


def _draw_head(face: _Face, style: IdentityStyle) -> None:
    ear_v = style.eye_height + 0.15
    for side in (-1, 1):
        face.draw.ellipse(face.box(side * 0.98, ear_v, style.ear_size, 1.6 * style.ear_size), fill=style.skin)
    face.draw.ellipse(face.box(0, 0, 1, 1), fill=style.skin)


def _draw_hair_front(face: _Face, style: IdentityStyle) -> None:
    d, color, bbox = face.draw, style.hair_color, face.box(0, 0, 1.02, 1.02)
    if style.hair_style == "fringe":
        d.chord(bbox, 195, 345, fill=color)
    elif style.hair_style == "side_part":
        d.chord(bbox, 185, 290, fill=color)
        d.chord(bbox, 290, 330, fill=color)
    elif style.hair_style == "spiky":
        spikes = 7
        points = [face.pt(-0.95, -0.55)]
        for k in range(spikes):
            u = -0.95 + 1.9 * (k + 0.5) / spikes
            points += [face.pt(u, -1.0 - 0.3 * style.hair_volume), face.pt(u + 0.95 / spikes, -0.7)]
        points.append(face.pt(0.95, -0.55))
        d.polygon(points, fill=color)


def _draw_eyes(face: _Face, style: IdentityStyle, var: _Variation) -> None:
    ru = style.eye_size
    rv = ru * (face.half_w / face.half_h) * 0.75 * var.eye_open
    for side in (-1, 1):
        u, v = side * style.eye_spacing, style.eye_height
        white = face.box(u, v, ru, rv)
        face.draw.ellipse(white, fill=(245, 245, 240), outline=(40, 30, 30), width=face.px(0.02))
        face.draw.ellipse(_clip_box(face.circle(u, v, 0.55 * ru), white), fill=style.eye_color)
        face.draw.ellipse(_clip_box(face.circle(u, v, 0.22 * ru), white), fill=(10, 10, 10))


def _clip_box(
    box: tuple[float, float, float, float], bound: tuple[float, float, float, float]
) -> tuple[float, float, float, float]:
    """``box`` limited vertically to ``bound``, so a half-closed eye also hides the iris."""
    return (box[0], max(box[1], bound[1]), box[2], min(box[3], bound[3]))


def _draw_brows(face: _Face, style: IdentityStyle, var: _Variation) -> None:
    half_len = 1.3 * style.eye_size
    tilt = math.tan(math.radians(style.brow_angle)) * half_len * face.half_w / face.half_h
    v = style.eye_height - style.brow_gap - var.brow_raise
    color = _shade(style.hair_color, 0.8) if style.hair_style != "bald" else (60, 45, 35)
    for side in (-1, 1):
        inner = face.pt(side * (style.eye_spacing - half_len), v + tilt)
        outer = face.pt(side * (style.eye_spacing + half_len), v - tilt)
        face.draw.line((inner, outer), fill=color, width=face.px(style.brow_thickness))


def _draw_nose(face: _Face, style: IdentityStyle) -> None:
    top = style.eye_height + 0.08
    bottom = top + style.nose_length
    points = [face.pt(0, top), face.pt(-style.nose_width, bottom), face.pt(style.nose_width, bottom)]
    face.draw.polygon(points, fill=_shade(style.skin, 0.78))


def _draw_beard(face: _Face, style: IdentityStyle) -> None:
    face.draw.chord(face.box(0, 0, 1.01, 1.01), 15, 165, fill=style.hair_color)
    x0, y0 = face.pt(-style.mouth_width - 0.08, style.mouth_y - 0.1)
    x1, y1 = face.pt(style.mouth_width + 0.08, style.mouth_y - 0.02)
    face.draw.rounded_rectangle((x0, y0, x1, y1), radius=0.05 * face.half_w, fill=style.hair_color)


def _draw_mouth(face: _Face, style: IdentityStyle, var: _Variation) -> None:
    curve = style.mouth_curve + var.smile
    ts = np.linspace(-1.0, 1.0, 13)
    upper = [face.pt(t * style.mouth_width, style.mouth_y + curve * (1 - t * t)) for t in ts]
    lower_curve = curve + style.mouth_height
    lower = [face.pt(t * style.mouth_width, style.mouth_y + lower_curve * (1 - t * t)) for t in ts[::-1]]
    face.draw.polygon(upper + lower, fill=(150, 50, 55), outline=(90, 30, 35))


def _draw_glasses(face: _Face, color: Color, style: IdentityStyle) -> None:
    r = 1.7 * style.eye_size
    width = face.px(0.04)
    for side in (-1, 1):
        lens = face.circle(side * style.eye_spacing, style.eye_height, r)
        face.draw.ellipse(lens, outline=color, width=width)
    left = face.pt(-style.eye_spacing + r, style.eye_height)
    right = face.pt(style.eye_spacing - r, style.eye_height)
    face.draw.line((left, right), fill=color, width=width)


def _draw_mole(face: _Face, position: tuple[float, float]) -> None:
    face.draw.ellipse(face.circle(position[0], position[1], 0.04), fill=(60, 35, 25))


def _draw_layer(style: IdentityStyle, var: _Variation, size: int) -> Image.Image:
    """The person (body, head, features) on a transparent high-resolution layer
    that is larger than the output by ``_MARGIN`` on every side."""
    hi = size * _SUPERSAMPLE
    margin = round(_MARGIN * hi)
    layer_size = hi + 2 * margin
    layer = Image.new("RGBA", (layer_size, layer_size), (0, 0, 0, 0))
    face = _Face(
        ImageDraw.Draw(layer),
        margin + 0.5 * hi,
        margin + _FACE_CENTER_Y * hi,
        style.face_width * hi,
        style.face_height * hi,
    )
    _draw_body(face, style, var, layer_size)
    _draw_hair_back(face, style)
    _draw_head(face, style)
    if style.beard:
        _draw_beard(face, style)
    _draw_hair_front(face, style)
    _draw_eyes(face, style, var)
    _draw_brows(face, style, var)
    _draw_nose(face, style)
    _draw_mouth(face, style, var)
    if style.mole is not None:
        _draw_mole(face, style.mole)
    if style.glasses is not None:
        _draw_glasses(face, style.glasses, style)
    return layer


def _pose(layer: Image.Image, var: _Variation, size: int) -> np.ndarray:
    """Rotate, scale and shift the layer about the output centre, then reduce it to
    ``size``. Returns the premultiplied RGBA as float32 (size, size, 4)."""
    hi = size * _SUPERSAMPLE
    out_c = hi / 2
    in_c = layer.width / 2
    cos, sin = math.cos(math.radians(var.angle)) / var.scale, math.sin(math.radians(var.angle)) / var.scale
    ox, oy = out_c + var.shift[0] * hi, out_c + var.shift[1] * hi
    # PIL maps each output pixel back to the layer: x_in = a*x + b*y + c, y_in = d*x + e*y + f.
    coeffs = (cos, sin, in_c - cos * ox - sin * oy, -sin, cos, in_c + sin * ox - cos * oy)
    premultiplied = layer.convert("RGBa")  # so transparent pixels do not bleed black into the edges
    posed = premultiplied.transform((hi, hi), Image.Transform.AFFINE, coeffs, Image.Resampling.BILINEAR)
    return np.asarray(posed.reduce(_SUPERSAMPLE), dtype=np.float32)


def _gradient(size: int, angle: float) -> np.ndarray:
    """A linear ramp over the image in direction ``angle``, in [-1, 1], shape (size, size, 1)."""
    coords = np.linspace(-1.0, 1.0, size, dtype=np.float32)
    ramp = math.cos(angle) * coords[None, :] + math.sin(angle) * coords[:, None]
    return (ramp / math.sqrt(2))[:, :, None]


def _background(var: _Variation, size: int) -> np.ndarray:
    t = (_gradient(size, var.background_angle) + 1) / 2
    c0, c1 = (np.array(c, dtype=np.float32) for c in var.background)
    return c0 * (1 - t) + c1 * t


def _photometric(image: np.ndarray, var: _Variation, rng: np.random.Generator) -> np.ndarray:
    """Directional lighting, brightness/contrast, colour cast and sensor noise."""
    image = image * (1 + var.light_strength * _gradient(image.shape[0], var.light_angle))
    mean = image.mean()
    image = (image - mean) * var.contrast + mean * var.brightness
    image = image * np.array(var.color_cast, dtype=np.float32)
    image = image + rng.normal(0.0, var.noise, image.shape).astype(np.float32)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def render_face(style: IdentityStyle, rng: np.random.Generator, size: int = 64) -> np.ndarray:
    """Render one image of ``style`` as a uint8 (size, size, 3) array.

    Pose, expression, clothing, background, lighting and noise are all drawn
    from ``rng``, so two calls with different generators give different images
    of the same person.
    """
    if size < 16:
        raise ValueError(f"size must be at least 16, got {size}")
    var = _random_variation(rng)
    posed = _pose(_draw_layer(style, var, size), var, size)
    alpha = posed[:, :, 3:] / 255.0
    composite = posed[:, :, :3] + _background(var, size) * (1 - alpha)  # "over" with premultiplied colour
    return _photometric(composite, var, rng)


def identity_rng(seed: int, identity: int) -> np.random.Generator:
    """Generator for identity ``identity``'s style; depends only on (seed, identity)."""
    return np.random.default_rng([seed, identity, _ID_STREAM])


def image_rng(seed: int, identity: int, image: int) -> np.random.Generator:
    """Generator for image ``image`` of an identity; depends only on (seed, identity, image)."""
    return np.random.default_rng([seed, identity, _IMAGE_STREAM, image])


def generate_dataset(
    root: str | Path,
    num_identities: int = 60,
    images_per_identity: int = 12,
    size: int = 64,
    seed: int = 0,
    progress: bool = True,
) -> Path:
    """Write a folder-per-identity PNG dataset: ``root/person_000/person_000_0001.png``, ...

    File names follow LFW's ``name/name_0001`` convention, so LFW-format pairs files can
    refer to the images (the demo evaluates through one).

    Output is byte-identical for a given seed, and a run with more identities or
    images reproduces every file of a smaller run with the same seed. Returns ``root``.
    """
    root = Path(root)
    total = num_identities * images_per_identity
    with tqdm(total=total, desc="synthetic faces", unit="img", disable=not progress) as bar:
        for i in range(num_identities):
            style = random_identity(identity_rng(seed, i))
            person = f"person_{i:03d}"
            person_dir = root / person
            person_dir.mkdir(parents=True, exist_ok=True)
            for j in range(images_per_identity):
                image = render_face(style, image_rng(seed, i, j), size)
                Image.fromarray(image).save(person_dir / f"{person}_{j + 1:04d}.png")
                bar.update()
    return root
