"""Batched augmentation on whole tensors (one affine warp per batch, no per-image Python loop)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

MEAN, STD = 0.5, 0.5  # pixel normalisation: uint8 -> [-1, 1]; stored in checkpoints


def to_tensor(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """(N, H, W, C) uint8 -> (N, C, H, W) float32 normalised to [-1, 1]."""
    x = torch.as_tensor(np.ascontiguousarray(images) if isinstance(images, np.ndarray) else images)
    return (x.permute(0, 3, 1, 2).float().div_(255.0) - MEAN) / STD


@dataclass
class AugmentConfig:
    """Random geometric and photometric changes applied independently to each image.

    ``shift`` is a fraction of the image size, ``rotate`` degrees, ``scale`` the +- relative
    zoom, ``brightness``/``contrast`` +- relative changes. Zero disables each part.
    """

    flip: bool = True
    shift: float = 0.08
    rotate: float = 8.0
    scale: float = 0.08
    brightness: float = 0.2
    contrast: float = 0.2

    def to_dict(self) -> dict:
        return asdict(self)


def augment(x: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator | None = None) -> torch.Tensor:
    """Augment a normalised (N, C, H, W) batch; deterministic for a given ``generator`` state."""
    n = x.shape[0]

    def uniform(low: float, high: float) -> torch.Tensor:
        return torch.rand(n, generator=generator) * (high - low) + low

    if cfg.shift or cfg.rotate or cfg.scale or cfg.flip:
        angle = uniform(-cfg.rotate, cfg.rotate) * (math.pi / 180)
        zoom = uniform(1 - cfg.scale, 1 + cfg.scale)
        sign = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0) if cfg.flip else torch.ones(n)
        cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
        theta = torch.zeros(n, 2, 3)
        theta[:, 0, 0], theta[:, 0, 1] = cos * sign, -sin
        theta[:, 1, 0], theta[:, 1, 1] = sin * sign, cos
        theta[:, 0, 2] = uniform(-2 * cfg.shift, 2 * cfg.shift)  # grid units: the image spans [-1, 1]
        theta[:, 1, 2] = uniform(-2 * cfg.shift, 2 * cfg.shift)
        grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid.to(x.device), mode="bilinear", padding_mode="border", align_corners=False)
    if cfg.brightness or cfg.contrast:
        gain = uniform(1 - cfg.contrast, 1 + cfg.contrast).view(n, 1, 1, 1).to(x)
        offset = uniform(-cfg.brightness, cfg.brightness).view(n, 1, 1, 1).to(x)
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = ((x - mean) * gain + mean + offset * 2).clamp_(-1.0, 1.0)
    return x
