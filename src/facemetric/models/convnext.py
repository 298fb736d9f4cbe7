"""ConvNeXt (Liu et al., "A ConvNet for the 2020s", CVPR 2022) re-sized for aligned 112x112 faces.

The block is the paper's: depthwise 7x7 conv -> LayerNorm over channels -> 1x1 expand x4 (a
``Linear`` on channels-last features) -> GELU -> 1x1 project -> layer scale -> stochastic depth
-> residual add. Stages are joined by LayerNorm + 2x2 stride-2 conv downsampling.

Two changes for faces:

* **Stem.** The original patchifies with a 4x4 stride-4 conv, which turns a 112 face into a
  28x28 grid before any mixing; here the stem is a 2x2 stride-2 conv + LayerNorm, so the four
  stages run at 56, 28, 14 and 7 for a 112x112 input (an ``input_size`` side must be at least
  ``2 ** len(depths)``).
* **Head.** The default is the project's :class:`EmbeddingHead` (BN -> dropout -> flatten ->
  FC -> BN -> L2): faces are aligned, so flattening keeps *where* a feature is (eyes vs mouth),
  which ArcFace found beats global pooling for verification. The price is parameters: the FC
  has ``C * h * w * embedding_dim`` weights (9.6 M of ``convnext_face_tiny``'s 14.5 M at
  512-d). ``head="gap"`` selects the original's global-average-pool -> LayerNorm -> linear head
  (plus BN1d and L2), which is size-agnostic and much smaller.

Weights of the convolutions and linears in the trunk are initialised as in the paper
(truncated normal, std 0.02, zero bias). Everything exports to ONNX in eval mode: stochastic
depth is an identity there and LayerNorm is taken over the last (channel) dimension.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from facemetric.models.heads import EmbeddingHead
from facemetric.models.registry import register_model


class DropPath(nn.Module):
    """Stochastic depth per sample: zero a residual branch with probability ``p`` in training.

    Surviving branches are scaled by ``1 / (1 - p)`` so the expectation is unchanged; in eval mode
    (and when ``p == 0``) it is an identity, so nothing of it reaches an exported graph.
    """

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p:.3f}"


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an ``(N, C, H, W)`` map (each pixel normalised on its own)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class ConvNeXtBlock(nn.Module):
    """dwconv 7x7 -> LN -> 1x1 expand x4 -> GELU -> 1x1 project -> layer scale -> drop path, + x.

    ``layer_scale <= 0`` leaves out the per-channel scale (as the original code does).
    """

    def __init__(self, dim: int, drop_path: float = 0.0, layer_scale: float = 1e-6) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), float(layer_scale))) if layer_scale > 0 else None
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dwconv(x).permute(0, 2, 3, 1)  # channels last: the 1x1 convs are Linears
        y = self.pwconv2(self.act(self.pwconv1(self.norm(y))))
        if self.gamma is not None:
            y = self.gamma * y
        return x + self.drop_path(y.permute(0, 3, 1, 2))


class GAPHead(nn.Module):
    """The original ConvNeXt head for embeddings: global average pool -> LN -> linear -> BN1d -> L2."""

    def __init__(self, channels: int, embedding_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels, eps=1e-6)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(channels, embedding_dim)
        self.bn_out = nn.BatchNorm1d(embedding_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dropout(self.norm(x.mean(dim=(2, 3))))
        return F.normalize(self.bn_out(self.fc(x)), dim=1)


class ConvNeXtFace(nn.Module):
    """Stem (2x2/2 conv + LN), stages of :class:`ConvNeXtBlock` joined by LN + 2x2/2 conv, and a head."""

    def __init__(
        self,
        depths: Sequence[int] = (2, 2, 6, 2),
        dims: Sequence[int] = (48, 96, 192, 384),
        embedding_dim: int = 128,
        in_channels: int = 3,
        input_size: tuple[int, int] = (112, 112),
        drop_path: float = 0.1,
        layer_scale: float = 1e-6,
        head: str = "flatten",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        depths, dims = tuple(int(d) for d in depths), tuple(int(d) for d in dims)
        if not depths or len(depths) != len(dims):
            raise ValueError(f"depths {depths} and dims {dims} must be non-empty and have the same length")
        if min(depths) < 1 or min(dims) < 1:
            raise ValueError(f"depths {depths} and dims {dims} must all be positive")
        if not 0.0 <= drop_path < 1.0:
            raise ValueError(f"drop_path must be in [0, 1), got {drop_path}")
        if layer_scale < 0:
            raise ValueError(f"layer_scale must be >= 0 (0 disables it), got {layer_scale}")
        if head not in ("flatten", "gap"):
            raise ValueError(f"head must be 'flatten' or 'gap', got {head!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        factor = 2 ** len(depths)  # the stem and each downsampling halve (floor) the map
        h, w = (int(s) for s in input_size)
        if h < factor or w < factor:
            raise ValueError(
                f"input_size {tuple(input_size)} is too small for {len(depths)} ConvNeXt stages: "
                f"each side must be at least {factor} pixels"
            )
        self.embedding_dim = embedding_dim

        self.stem = nn.Sequential(nn.Conv2d(in_channels, dims[0], 2, stride=2), LayerNorm2d(dims[0], eps=1e-6))
        n = sum(depths)  # drop-path rate rises linearly from 0 at the first block to drop_path at the last
        rates = [drop_path * i / max(n - 1, 1) for i in range(n)]
        self.downsamples = nn.ModuleList([nn.Identity()])
        self.stages = nn.ModuleList()
        start = 0
        for i, (depth, dim) in enumerate(zip(depths, dims)):
            if i > 0:
                self.downsamples.append(
                    nn.Sequential(LayerNorm2d(dims[i - 1], eps=1e-6), nn.Conv2d(dims[i - 1], dim, 2, stride=2))
                )
            blocks = [ConvNeXtBlock(dim, rates[start + j], layer_scale) for j in range(depth)]
            self.stages.append(nn.Sequential(*blocks))
            start += depth
        self.apply(_init_weights)  # before the head, so the head keeps PyTorch's defaults

        for _ in range(len(depths)):
            h, w = h // 2, w // 2
        self.head: nn.Module = (
            EmbeddingHead(dims[-1], (h, w), embedding_dim, dropout)
            if head == "flatten"
            else GAPHead(dims[-1], embedding_dim, dropout)
        )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last stage's feature map, ``(N, dims[-1], H / 2**stages, W / 2**stages)``."""
        x = self.stem(x)
        for down, stage in zip(self.downsamples, self.stages):
            x = stage(down(x))
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))


def _init_weights(m: nn.Module) -> None:
    if isinstance(m, (nn.Conv2d, nn.Linear)):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)


@register_model("convnext_face")
def convnext_face(**cfg) -> ConvNeXtFace:
    """Fully configurable (``depths``, ``dims``, ``drop_path``, ``layer_scale``, ``head``, ``dropout``)."""
    return ConvNeXtFace(**cfg)


@register_model("convnext_face_tiny")
def convnext_face_tiny(**cfg) -> ConvNeXtFace:
    """Depths (2, 2, 6, 2), dims 48-384: 14.5 M parameters at 512-d / 112x112 (9.6 M of them the head)."""
    return ConvNeXtFace(depths=(2, 2, 6, 2), dims=(48, 96, 192, 384), **cfg)


@register_model("convnext_face_small")
def convnext_face_small(**cfg) -> ConvNeXtFace:
    """Depths (3, 3, 9, 3), dims 64-512: 25.3 M parameters at 512-d / 112x112, 15.7 M at 128-d."""
    return ConvNeXtFace(depths=(3, 3, 9, 3), dims=(64, 128, 256, 512), **cfg)
