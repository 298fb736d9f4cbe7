"""Drawing a synthetic face: the person on a supersampled transparent layer, posed, over a background,
with lighting and sensor noise (:mod:`facemetric.data.synthetic` puts the steps together)."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from facemetric.data.synthetic_style import Color, IdentityStyle, Variation

_SUPERSAMPLE = 3  # draw at 3x the output size, then box-reduce (antialiasing)
_MARGIN = 0.3  # extra layer border (fraction of the output) so shifts never expose an edge
_FACE_CENTER_Y = 0.48  # face centre in the output, as a fraction of its height


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


def _draw_body(face: _Face, style: IdentityStyle, var: Variation, layer_size: int) -> None:
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


def _draw_eyes(face: _Face, style: IdentityStyle, var: Variation) -> None:
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


def _draw_brows(face: _Face, style: IdentityStyle, var: Variation) -> None:
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


def _draw_mouth(face: _Face, style: IdentityStyle, var: Variation) -> None:
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


def draw_layer(style: IdentityStyle, var: Variation, size: int) -> Image.Image:
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


def pose(layer: Image.Image, var: Variation, size: int) -> np.ndarray:
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


def background(var: Variation, size: int) -> np.ndarray:
    t = (_gradient(size, var.background_angle) + 1) / 2
    c0, c1 = (np.array(c, dtype=np.float32) for c in var.background)
    return c0 * (1 - t) + c1 * t


def photometric(image: np.ndarray, var: Variation, rng: np.random.Generator) -> np.ndarray:
    """Directional lighting, brightness/contrast, colour cast and sensor noise."""
    image = image * (1 + var.light_strength * _gradient(image.shape[0], var.light_angle))
    mean = image.mean()
    image = (image - mean) * var.contrast + mean * var.brightness
    image = image * np.array(var.color_cast, dtype=np.float32)
    image = image + rng.normal(0.0, var.noise, image.shape).astype(np.float32)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)
