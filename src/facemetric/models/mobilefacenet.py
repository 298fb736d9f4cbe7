"""MobileFaceNet (Chen et al., 2018): a MobileNetV2-style network made for face verification.

Two changes make MobileNetV2 work well on faces: PReLU instead of ReLU6, and a *global
depthwise convolution* (GDConv) in place of global average pooling. Average pooling weights
every position of the final map equally, whereas on an aligned face the centre and the corners
matter differently; a depthwise conv whose kernel covers the whole final map learns one weight
per position and channel, for a fraction of the parameters a flatten + linear head would need.

The paper's network (0.99 M parameters with a 128-d output, 221 M multiply-adds at 112x112)
is ``mobilefacenet``; ``mobilefacenet_v3`` swaps the bottlenecks for MobileNetV3-style ones
(squeeze-and-excitation after the depthwise conv, hard-swish activations). The network
downsamples 16x, so any input of at least 16x16 works: the GDConv kernel is sized from
``input_size``.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from facemetric.models.blocks import conv_bn, conv_bn_prelu
from facemetric.models.registry import register_model
from facemetric.models.spec import ModelSpec

# (t expansion, c output channels, n repeats, s stride of the first repeat): the paper's Table 1
BOTTLENECKS: tuple[tuple[int, int, int, int], ...] = (
    (2, 64, 5, 2),
    (4, 128, 1, 2),
    (2, 128, 6, 1),
    (4, 128, 1, 2),
    (2, 128, 2, 1),
)
STEM_CHANNELS = 64
LAST_CHANNELS = 512
BLOCKS = ("v2", "v3")
# depthwise convolutions train slower in bf16 on a CPU (python -m facemetric.bench.models, BENCHMARKS.md)
SPEC = ModelSpec(bf16_slower_on_cpu=True)


def make_divisible(value: float, divisor: int = 8) -> int:
    """``value`` rounded to the nearest multiple of ``divisor``, never below it nor 10% under ``value``."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def total_stride() -> int:
    """How much the network downsamples: the stride-2 stem times every stride-2 bottleneck stage."""
    return 2 * math.prod(s for _, _, _, s in BOTTLENECKS)


def final_size(input_size: tuple[int, int]) -> tuple[int, int]:
    """Spatial size of the last feature map; each stride-2 3x3 conv (padding 1) maps n to ceil(n / 2)."""
    h, w = input_size
    for _ in range(int(math.log2(total_stride()))):
        h, w = (h + 1) // 2, (w + 1) // 2
    return h, w


class SqueezeExcite(nn.Module):
    """MobileNetV3 channel attention: global pool -> 1x1 reduce -> ReLU -> 1x1 expand -> hard-sigmoid gate."""

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        squeezed = make_divisible(channels / reduction)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(channels, squeezed, 1)
        self.act = nn.ReLU(inplace=True)
        self.expand = nn.Conv2d(squeezed, channels, 1)
        self.gate = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.expand(self.act(self.reduce(self.pool(x)))))


class Bottleneck(nn.Module):
    """Inverted residual: 1x1 expand, 3x3 depthwise (carries the stride), linear 1x1 projection.

    ``block="v2"`` is MobileFaceNet's (PReLU after expand and depthwise); ``"v3"`` uses
    hard-swish and adds squeeze-and-excitation after the depthwise conv. The input is added
    back when the block keeps both resolution and channel count.
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int, expansion: int, block: str = "v2") -> None:
        super().__init__()
        hidden = in_ch * expansion

        def act() -> nn.Module:
            return nn.PReLU(hidden) if block == "v2" else nn.Hardswish()

        layers: list[nn.Module] = [
            *conv_bn(in_ch, hidden, 1),
            act(),
            *conv_bn(hidden, hidden, 3, stride, groups=hidden),
            act(),
        ]
        if block == "v3":
            layers.append(SqueezeExcite(hidden))
        layers += [*conv_bn(hidden, out_ch, 1)]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return x + out if self.residual else out


class MobileFaceNet(nn.Module):
    """Stem, the five bottleneck stages, 1x1 conv to 512, GDConv, linear 1x1 to the embedding, BN, L2 norm."""

    def __init__(
        self,
        embedding_dim: int = 128,
        in_channels: int = 3,
        input_size: tuple[int, int] = (112, 112),
        width_mult: float = 1.0,
        block: str = "v2",
    ) -> None:
        super().__init__()
        if block not in BLOCKS:
            raise ValueError(f"unknown MobileFaceNet block {block!r}; expected one of {', '.join(BLOCKS)}")
        if isinstance(width_mult, bool) or not isinstance(width_mult, (int, float)) or not width_mult > 0:
            raise ValueError(f"width_mult must be a number > 0, got {width_mult!r}")
        if len(input_size) != 2:
            raise ValueError(f"input_size must be (height, width), got {input_size!r}")
        minimum = total_stride()
        if min(input_size) < minimum:
            raise ValueError(
                f"MobileFaceNet downsamples {minimum}x, so input_size must be at least {minimum}x{minimum}; "
                f"got {input_size[0]}x{input_size[1]}"
            )
        self.embedding_dim = embedding_dim
        self.block = block

        ch = make_divisible(STEM_CHANNELS * width_mult)
        self.stem = nn.Sequential(
            conv_bn_prelu(in_channels, ch, 3, 2),
            conv_bn_prelu(ch, ch, 3, 1, groups=ch),  # depthwise
        )
        stages = []
        for t, c, n, s in BOTTLENECKS:
            out_ch = make_divisible(c * width_mult)
            stages.append(
                nn.Sequential(
                    *(Bottleneck(ch if i == 0 else out_ch, out_ch, s if i == 0 else 1, t, block) for i in range(n))
                )
            )
            ch = out_ch
        self.stages = nn.Sequential(*stages)
        last = make_divisible(LAST_CHANNELS * width_mult)
        self.conv_last = conv_bn_prelu(ch, last, 1)

        self.feature_size = final_size((input_size[0], input_size[1]))
        # global depthwise conv: one weight per position and channel of the final map; linear (no activation)
        self.gdconv = nn.Sequential(
            nn.Conv2d(last, last, self.feature_size, groups=last, bias=False),
            nn.BatchNorm2d(last),
        )
        # the paper's "linear 1x1 conv" on a 1x1 map; a Linear also fails loudly on a wrongly sized input
        self.embedding = nn.Linear(last, embedding_dim, bias=False)
        self.bn_out = nn.BatchNorm1d(embedding_dim)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last feature map, (N, 512 * width, h / 16, w / 16) rounded up: what the GDConv covers."""
        return self.conv_last(self.stages(self.stem(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.gdconv(self.features(x)).flatten(1)
        return F.normalize(self.bn_out(self.embedding(x)), dim=1)


@register_model("mobilefacenet", spec=SPEC)
def mobilefacenet(**cfg) -> MobileFaceNet:
    """The paper's MobileFaceNet (``width_mult``, ``block`` configurable)."""
    return MobileFaceNet(**cfg)


@register_model("mobilefacenet_v3", spec=SPEC)
def mobilefacenet_v3(**cfg) -> MobileFaceNet:
    """MobileFaceNet with MobileNetV3 bottlenecks (squeeze-and-excitation, hard-swish)."""
    if cfg.get("block", "v3") != "v3":
        raise ValueError(f"mobilefacenet_v3 always uses block='v3', got block={cfg['block']!r}; use mobilefacenet")
    return MobileFaceNet(**{**cfg, "block": "v3"})
