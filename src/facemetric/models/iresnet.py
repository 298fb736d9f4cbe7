"""IR-ResNet (Deng et al., ArcFace, CVPR 2019): the improved residual unit BN-conv-BN-PReLU-conv-BN.

``iresnet_tiny`` is the CPU default (about 1.3 M parameters, a few ms per 64x64 image on two
cores); ``iresnet18/34/50/100`` are the usual face-recognition depths (24.0 / 34.1 / 43.6 /
65.2 M parameters with a 512-d embedding at 112x112, as in ArcFace's insightface models).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from facemetric.models.blocks import conv_bn, conv_bn_prelu
from facemetric.models.heads import EmbeddingHead
from facemetric.models.registry import register_model


class IRBlock(nn.Module):
    """Improved residual unit; the stride sits on the second convolution as in ArcFace."""

    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.BatchNorm2d(in_ch),
            nn.Conv2d(in_ch, out_ch, 3, 1, 1, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.PReLU(out_ch),
            nn.Conv2d(out_ch, out_ch, 3, stride, 1, bias=False),
            nn.BatchNorm2d(out_ch),
        )
        self.shortcut = nn.Identity() if stride == 1 and in_ch == out_ch else conv_bn(in_ch, out_ch, 1, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.shortcut(x)


class IResNet(nn.Module):
    """Stem, four stages each halving the resolution, and an embedding head: ``flatten`` (ArcFace's:
    where features are on the face is kept) or ``gap`` (global average pool first: insensitive to
    where they are, fewer head weights)."""

    def __init__(
        self,
        layers: tuple[int, ...] = (1, 1, 1, 1),
        widths: tuple[int, ...] = (32, 64, 128, 256),
        embedding_dim: int = 128,
        in_channels: int = 3,
        input_size: tuple[int, int] = (64, 64),
        stem_stride: int = 1,
        dropout: float = 0.0,
        head: str = "flatten",
    ) -> None:
        super().__init__()
        if head not in ("flatten", "gap"):
            raise ValueError(f"head must be 'flatten' or 'gap', got {head!r}")
        if len(layers) != len(widths):
            raise ValueError(f"layers {layers} and widths {widths} must have the same length")
        self.embedding_dim = embedding_dim
        self.stem = conv_bn_prelu(in_channels, widths[0], 3, stem_stride)
        stages, ch = [], widths[0]
        for depth, width in zip(layers, widths):
            blocks = [IRBlock(ch, width, 2)] + [IRBlock(width, width, 1) for _ in range(depth - 1)]
            stages.append(nn.Sequential(*blocks))
            ch = width
        self.stages = nn.Sequential(*stages)
        h, w = input_size
        for _ in range(len(layers) + (stem_stride == 2)):
            h, w = (h + 1) // 2, (w + 1) // 2
        self.pool: nn.Module = nn.AdaptiveAvgPool2d(1) if head == "gap" else nn.Identity()
        self.head = EmbeddingHead(ch, (1, 1) if head == "gap" else (h, w), embedding_dim, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.stages(self.stem(x))))


@register_model("iresnet")
def iresnet(**cfg) -> IResNet:
    """Fully configurable IR-ResNet (``layers``, ``widths``, ``stem_stride`` ...)."""
    return IResNet(**cfg)


@register_model("iresnet_tiny")
def iresnet_tiny(**cfg) -> IResNet:
    """CPU default: one block per stage, widths 32-256, stride-2 stem."""
    return IResNet(layers=(1, 1, 1, 1), widths=(32, 64, 128, 256), **{"stem_stride": 2, **cfg})


@register_model("iresnet18")
def iresnet18(**cfg) -> IResNet:
    return IResNet(layers=(2, 2, 2, 2), widths=(64, 128, 256, 512), **cfg)


@register_model("iresnet34")
def iresnet34(**cfg) -> IResNet:
    return IResNet(layers=(3, 4, 6, 3), widths=(64, 128, 256, 512), **cfg)


@register_model("iresnet50")
def iresnet50(**cfg) -> IResNet:
    return IResNet(layers=(3, 4, 14, 3), widths=(64, 128, 256, 512), **cfg)


@register_model("iresnet100")
def iresnet100(**cfg) -> IResNet:
    return IResNet(layers=(3, 13, 30, 3), widths=(64, 128, 256, 512), **cfg)
