"""``arcface_mbf_slim``: InsightFace's MobileFaceNet (``arcface-mbf``'s network) made cheaper, at a lower input
resolution or a fraction of its width, started from the teacher's own weights: its fast CPU student (issue 33).

The layout is the one of ``w600k_mbf.onnx`` (InsightFace's ``buffalo_s`` recogniser, ``arcface-mbf``): a
stride-2 stem and a grouped 3x3 conv, fifteen depthwise blocks (1x1 expand, 3x3 depthwise, linear 1x1) in four
stages (1, 4 + 1, 6 + 1, 2 blocks, each stage halving the map), a 1x1 conv to 512, a 1x1 conv to 64, and a
linear layer from the flattened 64-channel last map (7x7 at 112 pixels) to the 512-d embedding with a batch
norm. Its convolutions carry their batch norm folded in (weight and bias), as the file does.

Two ways to make it cheaper, measured in BENCHMARKS.md:

* **``data.image_size``** below 112 (the recipe: 64, about a quarter of the cost): every convolution is
  kept, the face is seen smaller, and ``model.pretrained: arcface-mbf`` resamples the linear layer's 7x7
  weights to the smaller last map. The teacher's features then only need to adapt to the scale, which
  distillation (``configs/distill-arcface-student.yaml``) teaches.
* **``width``** below 1 scales every channel count but the last conv's 64; ``model.pretrained`` keeps the
  teacher's highest-scoring channels (:mod:`facemetric.models.mbf_prune`). Measured: half the width is a
  quarter of the cost too, but the cut loses far more (the network must learn its features again).

``width=1`` at 112 pixels is the teacher's own network. The model is registered, with its weights, in
:mod:`facemetric.models.mbf_prune`. Reads RGB faces on the ArcFace template (``facemetric
prepare --align yunet --size N``), ``(x - 127.5) / 127.5``. The weights are derived from InsightFace's:
non-commercial research only.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from facemetric.models.pretrained_onnx import ALIGN, SIDE

# (blocks, stream channels, hidden channels of the stage's first, stride-2, block, of the others) at width 1
STAGES: tuple[tuple[int, int, int, int], ...] = ((4, 128, 128, 128), (6, 256, 256, 256), (2, 256, 512, 256))
STEM = 128  # the stem's channels; its second conv is grouped in pairs
SEP = 512  # the 1x1 conv after the last stage
REDUCED = 64  # the 1x1 conv before the linear layer: 64 x 7 x 7 = 3136 inputs at 112 pixels, at every width
STRIDE = 16  # the stem and the four stages each halve the map


def final_size(input_size: tuple[int, int]) -> tuple[int, int]:
    """The last map's size: each stride-2 3x3 conv (padding 1) maps n to ceil(n / 2)."""
    h, w = input_size
    for _ in range(4):
        h, w = (h + 1) // 2, (w + 1) // 2
    return h, w


def scaled(channels: int, width: float) -> int:
    """``channels`` at ``width``, a multiple of 2 (the stem's groups) and at least 8."""
    return max(8, 2 * round(channels * width / 2))


class ConvAct(nn.Sequential):
    """A convolution with its batch norm folded in (bias), then PReLU unless ``act`` is False."""

    def __init__(self, cin: int, cout: int, kernel: int = 1, stride: int = 1, groups: int = 1, act: bool = True):
        layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups)]
        if act:
            layers.append(nn.PReLU(cout))
        super().__init__(*layers)

    @property
    def conv(self) -> nn.Conv2d:
        layer = self[0]
        assert isinstance(layer, nn.Conv2d)
        return layer


class DepthwiseBlock(nn.Module):
    """1x1 expand + PReLU, 3x3 depthwise (the stride) + PReLU, linear 1x1; the input added back in a stage."""

    def __init__(self, cin: int, hidden: int, cout: int, stride: int, residual: bool) -> None:
        super().__init__()
        self.expand = ConvAct(cin, hidden)
        self.depthwise = ConvAct(hidden, hidden, 3, stride, groups=hidden)
        self.project = ConvAct(hidden, cout, act=False)
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.depthwise(self.expand(x)))
        return x + out if self.residual else out


class MbfSlim(nn.Module):
    """The ``w600k_mbf.onnx`` network with every channel count (but the last conv's 64) times ``width``."""

    def __init__(
        self,
        embedding_dim: int = 512,
        in_channels: int = 3,
        input_size: tuple[int, int] = (SIDE, SIDE),
        width: float = 1.0,
        normalize: bool = True,
    ) -> None:
        super().__init__()
        if isinstance(width, bool) or not isinstance(width, (int, float)) or not 0 < width <= 1:
            raise ValueError(f"model.options.width: a share of arcface-mbf's channels in (0, 1], got {width!r}")
        if len(input_size) != 2 or min(input_size) < STRIDE:
            raise ValueError(
                f"arcface_mbf_slim downsamples {STRIDE}x, so it reads crops of at least {STRIDE}x{STRIDE}, not "
                f"{input_size!r}; prepare the photos with `facemetric prepare --align {ALIGN} --size N`"
            )
        self.width = float(width)
        self.embedding_dim = embedding_dim
        self.normalize = normalize
        stem = scaled(STEM, width)
        self.stem = nn.Sequential(ConvAct(in_channels, stem, 3, 2), ConvAct(stem, stem, 3, 1, groups=stem // 2))
        blocks: list[nn.Module] = []
        cin = stem
        for repeats, stream, first_hidden, hidden in STAGES:
            out = scaled(stream, width)
            blocks.append(DepthwiseBlock(cin, scaled(first_hidden, width), out, 2, residual=False))
            blocks += [DepthwiseBlock(out, scaled(hidden, width), out, 1, residual=True) for _ in range(repeats)]
            cin = out
        self.blocks = nn.Sequential(*blocks)
        self.sep = ConvAct(cin, scaled(SEP, width))
        self.reduce = ConvAct(scaled(SEP, width), REDUCED)
        self.final_size = final_size((input_size[0], input_size[1]))
        self.fc = nn.Linear(REDUCED * self.final_size[0] * self.final_size[1], embedding_dim)
        self.bn = nn.BatchNorm1d(embedding_dim, eps=1e-5)

    @property
    def stem_convs(self) -> list[nn.Conv2d]:
        """The stem's two convolutions (the second grouped in pairs)."""
        return [layer.conv for layer in self.stem if isinstance(layer, ConvAct)]

    @property
    def block_list(self) -> list[DepthwiseBlock]:
        return [block for block in self.blocks if isinstance(block, DepthwiseBlock)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.reduce(self.sep(self.blocks(self.stem(x))))
        x = self.bn(self.fc(x.flatten(1)))
        return F.normalize(x, dim=1) if self.normalize else x
