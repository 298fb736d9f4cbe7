"""Batched augmentation of uint8 batches: slicing for geometry, one matrix product per image for colour."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

MEAN, STD = 0.5, 0.5  # default pixel normalisation, uint8 -> [-1, 1] (ImageSpec.mean/std override it)


def to_tensor(
    images: np.ndarray | torch.Tensor, mean: tuple[float, ...] | None = None, std: tuple[float, ...] | None = None
) -> torch.Tensor:
    """(N, H, W, C) uint8 -> (N, C, H, W) float32, ``(pixel / 255 - mean) / std`` per channel.

    Without ``mean``/``std``: 0.5 and 0.5, i.e. inputs in [-1, 1].
    """
    x = torch.as_tensor(np.ascontiguousarray(images) if isinstance(images, np.ndarray) else images)
    x = x.permute(0, 3, 1, 2).float().div_(255.0)
    c = x.shape[1]
    m = torch.tensor(mean if mean else (MEAN,) * c).view(1, c, 1, 1)
    s = torch.tensor(std if std else (STD,) * c).view(1, c, 1, 1)
    return x.sub_(m).div_(s)


@dataclass
class AugmentConfig:
    """Random changes applied independently to each image of a batch.

    ``shift``: translation up to this fraction of the size (the uncovered border takes the data's
    mean colour); ``flip``: horizontal mirror with probability 0.5; ``brightness`` /
    ``contrast`` / ``saturation``: +- relative jitter; ``grayscale``: probability of dropping
    colour; ``cutout``: probability of blanking a square of ``cutout_size`` of the side;
    ``rotate`` (degrees) / ``scale`` (+- zoom): an affine warp, the one costly part (off by
    default). Zero disables each part.
    """

    flip: bool = True
    shift: float = 0.08
    rotate: float = 0.0
    scale: float = 0.0
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.0
    grayscale: float = 0.0
    cutout: float = 0.0
    cutout_size: float = 0.3

    def to_dict(self) -> dict:
        return asdict(self)


_LUMA = (0.299, 0.587, 0.114)


def _shift_flip(images: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator, fill: np.ndarray) -> np.ndarray:
    """Integer translation and mirroring on uint8: one slice copy per image, only the uncovered
    border strips are filled (with the data's mean colour)."""
    n, h, w, _ = images.shape
    sy, sx = int(round(cfg.shift * h)), int(round(cfg.shift * w))
    dys, dxs = rng.integers(-sy, sy + 1, n), rng.integers(-sx, sx + 1, n)
    flips = rng.random(n) < 0.5 if cfg.flip else np.zeros(n, dtype=bool)
    out = np.empty_like(images)
    for i in range(n):
        src = images[i, :, ::-1] if flips[i] else images[i]
        dy, dx = int(dys[i]), int(dxs[i])
        o = out[i]
        o[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = src[max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)]
        if dy > 0:
            o[:dy] = fill
        elif dy < 0:
            o[h + dy :] = fill
        if dx > 0:
            o[:, :dx] = fill
        elif dx < 0:
            o[:, w + dx :] = fill
    return out


def _affine(x: torch.Tensor, angle: np.ndarray, zoom: np.ndarray) -> torch.Tensor:
    n = x.shape[0]
    angle_t = torch.as_tensor(angle, dtype=torch.float32)
    zoom_t = torch.as_tensor(zoom, dtype=torch.float32)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1] = torch.cos(angle_t) / zoom_t, -torch.sin(angle_t) / zoom_t
    theta[:, 1, 0], theta[:, 1, 1] = torch.sin(angle_t) / zoom_t, torch.cos(angle_t) / zoom_t
    grid = F.affine_grid(theta.to(x.device), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


@dataclass
class UInt8Batch:
    """A batch after the uint8 stage: pixels moved/mirrored, the colour jitter drawn but not applied.

    Workers produce it cheaply (4x less to pass between processes than float32); :func:`finish`
    applies jitter + normalisation in one fused pass where the batch is consumed (on the GPU
    when there is one).
    """

    images: torch.Tensor  # (N, H, W, C) uint8
    labels: torch.Tensor
    gain: torch.Tensor  # (N,) contrast
    beta: torch.Tensor  # (N,) brightness shift incl. the contrast pivot, in [0, 1] pixel units
    saturation: torch.Tensor  # (N,) 1 = unchanged, 0 = grey
    extra: dict  # optional stages' random draws: affine angles/zooms, cutout boxes


def geometry_and_draws(
    images: np.ndarray, labels: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator, mean: tuple[float, ...]
) -> UInt8Batch:
    """The uint8 stage of :func:`augment_batch` (translation + flip) and every random draw of the rest."""
    n, h, w, c = images.shape
    if cfg.shift or cfg.flip:
        images = _shift_flip(images, cfg, rng, np.round(np.asarray(mean) * 255).astype(np.uint8))
    gain = rng.uniform(1 - cfg.contrast, 1 + cfg.contrast, n)
    offset = rng.uniform(-cfg.brightness, cfg.brightness, n)
    sat = rng.uniform(1 - cfg.saturation, 1 + cfg.saturation, n) if c == 3 else np.ones(n)
    if c == 3 and cfg.grayscale:
        sat[rng.random(n) < cfg.grayscale] = 0.0
    pivot = images[:, ::8, ::8].reshape(n, -1).mean(axis=1, dtype=np.float32) / 255.0  # mean brightness, 1/64 sample
    extra: dict = {}
    if cfg.rotate or cfg.scale:
        extra["angle"] = rng.uniform(-cfg.rotate, cfg.rotate, n) * (math.pi / 180)
        extra["zoom"] = rng.uniform(1 - cfg.scale, 1 + cfg.scale, n)
    if cfg.cutout:
        side_h, side_w = max(1, int(cfg.cutout_size * h)), max(1, int(cfg.cutout_size * w))
        extra["cutout"] = [
            (int(i), int(rng.integers(0, h - side_h + 1)), int(rng.integers(0, w - side_w + 1)), side_h, side_w)
            for i in np.flatnonzero(rng.random(n) < cfg.cutout)
        ]
    f32 = torch.float32
    return UInt8Batch(
        torch.from_numpy(np.ascontiguousarray(images)), torch.as_tensor(labels),
        torch.as_tensor(gain, dtype=f32), torch.as_tensor((1 - gain) * pivot + offset, dtype=f32),
        torch.as_tensor(sat, dtype=f32), extra,
    )


def finish(batch: UInt8Batch, mean: tuple[float, ...], std: tuple[float, ...], device: str | torch.device = "cpu") -> torch.Tensor:
    """Colour jitter + normalisation (one fused pass from uint8), then the optional float stages.

    Per image and channel ``y = alpha * pixel + gamma`` with the contrast pivoting on the image's
    mean brightness; the saturation blend with the luma image runs only when drawn. Output:
    (N, C, H, W) float32 in channels-last memory on ``device``, clipped to the range real pixels can take.
    """
    pixels = batch.images.to(device, non_blocking=True).permute(0, 3, 1, 2)  # uint8 view, NCHW
    n, c = pixels.shape[:2]
    m = torch.tensor(mean, dtype=torch.float32, device=device).view(1, c, 1, 1)
    s = torch.tensor(std, dtype=torch.float32, device=device).view(1, c, 1, 1)
    g = batch.gain.to(device).view(n, 1, 1, 1)
    alpha, gamma = g / (255.0 * s), (batch.beta.to(device).view(n, 1, 1, 1) - m) / s
    if bool(torch.all(batch.saturation == 1.0)):
        x = torch.addcmul(gamma, pixels, alpha)
    else:
        x = pixels.float()
        luma = (x * torch.tensor(_LUMA, device=device).view(1, 3, 1, 1)).sum(dim=1, keepdim=True)
        x = torch.lerp(luma, x, batch.saturation.to(device).view(n, 1, 1, 1))
        x = torch.addcmul(gamma, x, alpha)
    low, high = (0 - m) / s, (1 - m) / s
    if bool(torch.all(low == low.flatten()[0])) and bool(torch.all(high == high.flatten()[0])):
        x = x.clamp_(float(low.flatten()[0]), float(high.flatten()[0]))  # scalar bounds: a faster kernel
    else:
        x = x.clamp_(low, high)
    if "angle" in batch.extra:
        x = _affine(x.contiguous(), batch.extra["angle"], batch.extra["zoom"])
    for i, y0, x0, sh, sw in batch.extra.get("cutout", []):
        x[i, :, y0 : y0 + sh, x0 : x0 + sw] = 0.0  # 0 = the data's mean after normalisation
    return x


def augment_batch(
    images: np.ndarray,
    cfg: AugmentConfig,
    rng: np.random.Generator,
    mean: tuple[float, ...] | None = None,
    std: tuple[float, ...] | None = None,
) -> torch.Tensor:
    """(N, H, W, C) uint8 -> augmented, normalised (N, C, H, W) float32; deterministic for ``rng``'s state.

    :func:`geometry_and_draws` (uint8 slicing) then :func:`finish` (one fused colour +
    normalisation pass, optional rotation/zoom warp and cutout).
    """
    c = images.shape[-1]
    mean = tuple(mean) if mean else (MEAN,) * c
    std = tuple(std) if std else (STD,) * c
    return finish(geometry_and_draws(images, np.zeros(len(images), np.int64), cfg, rng, mean), mean, std)
