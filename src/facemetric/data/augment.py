"""Batched augmentation of uint8 batches: slicing for geometry, per-image coefficients for colour."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from facemetric.core.config import AugmentConfig

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


_LUMA = (0.299, 0.587, 0.114)
_GROUP_BYTES = 1_250_000  # float32 that finish() works on at a time: about one core's L2 cache


def _shift_flip(
    source: np.ndarray,
    rows: np.ndarray,
    out: np.ndarray,
    cfg: AugmentConfig,
    rng: np.random.Generator,
    part: slice = slice(None),
) -> np.ndarray:
    """Gather ``source[rows]`` into ``out`` translated by whole pixels and mirrored; returns which
    images were mirrored.

    Translation is one slice copy per image straight from the (memory-mapped) source; the
    uncovered border strips repeat the nearest edge row / column (as ``grid_sample``'s border
    padding does). Mirroring is a torch flip of each chosen image afterwards, their horizontal
    shift drawn reversed so the result is ``shift(flip(image))``: numpy's reversed-stride copy of
    an (H, W, C) image costs 30x more than a forward one.
    """
    n, h, w, _ = out.shape
    total = len(rows)  # the whole batch's draws, this part's images
    sy, sx = int(round(cfg.shift * h)), int(round(cfg.shift * w))
    dys, dxs = np.asarray(rng.integers(-sy, sy + 1, total)), np.asarray(rng.integers(-sx, sx + 1, total))
    flips = np.asarray(rng.random(total) < 0.5) if cfg.flip else np.zeros(total, dtype=bool)
    rows, dys, dxs, flips = rows[part], dys[part], dxs[part], flips[part]
    for i in range(n):
        src = source[rows[i]]
        dy, dx = int(dys[i]), -int(dxs[i]) if flips[i] else int(dxs[i])
        o = out[i]
        o[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = src[
            max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
        ]
        if dy > 0:
            o[:dy] = o[dy]
        elif dy < 0:
            o[h + dy :] = o[h + dy - 1]
        if dx > 0:  # after the rows, so the corners repeat the corner pixel
            o[:, :dx] = o[:, dx : dx + 1]
        elif dx < 0:
            o[:, w + dx :] = o[:, w + dx - 1 : w + dx]
    pixels = torch.from_numpy(out)
    for i in np.flatnonzero(flips).tolist():
        pixels[i] = pixels[i].flip(1)  # per image: faster than one gather + flip + scatter of the subset
    return flips


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
class Draws:
    """The random numbers of a batch's float stage, as small arrays (cheap to pass between processes)."""

    gain: np.ndarray  # (N,) contrast
    beta: np.ndarray  # (N,) brightness shift incl. the contrast pivot, in [0, 1] pixel units
    saturation: np.ndarray  # (N,) 1 = unchanged, 0 = grey
    extra: dict  # optional stages' random draws: affine angles/zooms, cutout boxes
    flipped: np.ndarray | None = None  # (N,) bool: mirrored images (a distillation teacher's view of each)


def geometry_and_draws(
    source: np.ndarray,
    rows: np.ndarray,
    out: np.ndarray,
    cfg: AugmentConfig,
    rng: np.random.Generator,
    part: slice | None = None,
) -> Draws:
    """The uint8 stage of :func:`augment_batch`: ``source[rows]`` translated and mirrored into ``out``
    (N, H, W, C); returns every random draw of the float stage.

    ``part`` makes only those images of the batch (``out`` holds just them): the random numbers are
    drawn for the whole batch, so each training process's share of a global batch is exactly those
    images of the batch one process would make."""
    n, h, w, c = out.shape
    total = len(rows)
    part = part if part is not None else slice(0, total)
    if len(range(total)[part]) != n:
        raise ValueError(f"out holds {n} images, but part {part} of the batch's {total} is {len(range(total)[part])}")
    if cfg.shift or cfg.flip:
        flipped = _shift_flip(source, rows, out, cfg, rng, part)
    else:
        out[...] = source[rows[part]]
        flipped = np.zeros(n, dtype=bool)
    gain = np.asarray(rng.uniform(1 - cfg.contrast, 1 + cfg.contrast, total))[part]
    offset = np.asarray(rng.uniform(-cfg.brightness, cfg.brightness, total))[part]
    sat = np.asarray(rng.uniform(1 - cfg.saturation, 1 + cfg.saturation, total)) if c == 3 else np.ones(total)
    if c == 3 and cfg.grayscale:
        sat[rng.random(total) < cfg.grayscale] = 0.0
    sat = sat[part]
    pivot = out[:, ::8, ::8].reshape(n, -1).mean(axis=1, dtype=np.float32) / 255.0  # mean brightness, 1/64 sample
    extra: dict = {}
    if cfg.rotate or cfg.scale:
        extra["angle"] = (rng.uniform(-cfg.rotate, cfg.rotate, total) * (math.pi / 180))[part]
        extra["zoom"] = rng.uniform(1 - cfg.scale, 1 + cfg.scale, total)[part]
    if cfg.cutout:
        side_h, side_w = max(1, int(cfg.cutout_size * h)), max(1, int(cfg.cutout_size * w))
        first = range(total)[part].start
        boxes = [
            (int(i), int(rng.integers(0, h - side_h + 1)), int(rng.integers(0, w - side_w + 1)), side_h, side_w)
            for i in np.flatnonzero(rng.random(total) < cfg.cutout)
        ]
        extra["cutout"] = [(i - first, *box) for i, *box in boxes if first <= i < first + n]
    f32 = np.float32
    return Draws(gain.astype(f32), ((1 - gain) * pivot + offset).astype(f32), sat.astype(f32), extra, flipped)


def _pixels_per_row(pixels: int, channels: int) -> int:
    """How many pixels one row of finish()'s flat view holds: enough that a row of ``channels``
    interleaved values is long enough to vectorise (16 x 3 = 48 floats), and dividing the image.
    One channel needs no pattern: per-image coefficients broadcast over the whole image."""
    if channels == 1:
        return 1
    return next(q for q in (16, 32, 8, 4, 2, 1) if pixels % q == 0)


def finish(
    pixels: torch.Tensor,
    draws: Draws,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """The float stage of a batch: ``pixels`` (N, H, W, C) uint8 after :func:`geometry_and_draws`,
    colour-jittered with its ``draws``, normalised, then the optional warp and cutout, into ``out``
    (or a new tensor).

    Per image and channel ``y = alpha * pixel + gamma`` with the contrast pivoting on the image's
    mean brightness; the saturation blend with the luma image runs only when drawn. Output:
    (N, C, H, W) float32 in channels-last memory (``out`` must be too), clipped
    to the range real pixels can take. The pixels keep their interleaved (H, W, C) order, seen
    as rows of 16 pixels: every pass is then a plain vectorised loop with per-row coefficients,
    with no transpose (``python benchmarks/finish.py`` compares the alternatives).
    """
    n, h, w, c = pixels.shape
    if out is None:
        out = torch.empty((n, c, h, w), dtype=torch.float32, memory_format=torch.channels_last)
    nhwc = out.permute(0, 2, 3, 1)
    if not nhwc.is_contiguous():
        raise ValueError("finish(out=...) needs a channels-last (N, C, H, W) tensor")
    q = _pixels_per_row(h * w, c)
    rows, src = nhwc.view(n, h * w // q, q * c), pixels.view(n, h * w // q, q * c)
    m = torch.tensor(mean, dtype=torch.float32)
    s = torch.tensor(std, dtype=torch.float32)
    gain, beta, saturation = (torch.from_numpy(a) for a in (draws.gain, draws.beta, draws.saturation))
    alpha = (gain.view(n, 1) / (255.0 * s)).repeat(1, q).view(n, 1, q * c)  # c0 c1 c2 c0 ...
    gamma = ((beta.view(n, 1) - m) / s).repeat(1, q).view(n, 1, q * c)
    low, high = (-m / s).repeat(q).view(1, 1, q * c), ((1 - m) / s).repeat(q).view(1, 1, q * c)
    grey = not bool(torch.all(saturation == 1.0))
    # in groups of images whose float32 fits a core's L2 cache, so the passes after the first read
    # from cache instead of memory (which two worker processes share)
    step = max(1, _GROUP_BYTES // (4 * c * h * w))
    for i in range(0, n, step):
        j = slice(i, i + step)
        part = rows[j]
        part.copy_(src[j])
        if grey:
            image = nhwc[j]
            luma = (image * torch.tensor(_LUMA)).sum(dim=-1, keepdim=True)
            image.copy_(torch.lerp(luma, image, saturation[j].view(-1, 1, 1, 1)))
        part.mul_(alpha[j]).add_(gamma[j]).clamp_(low, high)
    if "angle" in draws.extra:
        out.copy_(_affine(out, draws.extra["angle"], draws.extra["zoom"]))
    for i, y0, x0, sh, sw in draws.extra.get("cutout", []):
        out[i, :, y0 : y0 + sh, x0 : x0 + sw] = 0.0  # 0 = the data's mean after normalisation
    return out


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
    out = np.empty_like(images)
    draws = geometry_and_draws(images, np.arange(len(images)), out, cfg, rng)
    return finish(torch.from_numpy(out), draws, mean, std)
