"""Inception-ResNet-v1 (Szegedy et al., "Inception-v4, Inception-ResNet and the Impact of Residual
Connections on Learning", arXiv 2016 / AAAI 2017, Figs. 14, 10, 7, 11, 12, 13): FaceNet's trunk.

Layout (channels; spatial sizes for a 112x112 input)::

    stem          conv3x3/2 32 v (55) - conv3x3 32 v (53) - conv3x3 64 s (53) - maxpool3x3/2 (26)
                  - conv1x1 80 (26) - conv3x3 192 v (24) - conv3x3/2 256 v (11)
    repeats[0] x  Inception-ResNet-A (block35, 256 ch, residual scale 0.17)
    Reduction-A   k, l, m, n = 192, 192, 256, 384 -> 896 ch (5)
    repeats[1] x  Inception-ResNet-B (block17, 896 ch, scale 0.10)
    Reduction-B   -> 1792 ch (2)
    repeats[2] x  Inception-ResNet-C (block8, 1792 ch, scale 0.20; the last one without ReLU)
    head          global average pool - dropout - linear (no bias) - BN1d - L2 normalise

Every convolution is conv + BN + ReLU except the linear 1x1 convs that map each residual branch
back to the trunk width (conv with bias, no BN, no activation), as in the paper and FaceNet.
"v" is valid (unpadded), "s" same padding; all stride-2 layers are valid, so a side must be at
least :data:`MIN_INPUT_SIZE` (75) pixels, and anything from there up works.

Differences from FaceNet's TensorFlow implementation (davidsandberg/facenet), on purpose:
``repeats[2]`` counts *all* C blocks, as in the paper's Figure 15 (5 x Inception-ResNet-C),
whereas that code runs five C blocks and then a sixth with residual scale 1.0 and no ReLU
(about 1.6 M more parameters); BN layers here have a learnt scale and shift (TF-slim's had a
shift only). ``dropout`` is the *drop* probability (PyTorch's convention): the default 0.2 is
FaceNet's ``keep_probability=0.8``. BN uses TF's ``eps=1e-3``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from facemetric.models.registry import register_model

_BN_EPS = 1e-3


def _after(n: int, kernel: int, stride: int) -> int:
    """Output side of an unpadded ``kernel``/``stride`` layer on an ``n`` side (< 1 means impossible)."""
    return (n - kernel) // stride + 1 if n >= kernel else 0


def spatial_sizes(n: int) -> list[int]:
    """Sides after each size-changing layer: stem (7 entries), Reduction-A, Reduction-B."""
    sizes = []
    for kernel, stride in ((3, 2), (3, 1), (1, 1), (3, 2), (1, 1), (3, 1), (3, 2), (3, 2), (3, 2)):
        n = _after(n, kernel, stride)
        sizes.append(n)
    return sizes


MIN_INPUT_SIZE = next(n for n in range(1, 1000) if spatial_sizes(n)[-1] >= 1)  # 75


class BasicConv2d(nn.Sequential):
    """Conv (no bias) + BN + ReLU; ``kernel`` and ``padding`` may be ``(h, w)`` pairs (1x7, 7x1 ...)."""

    def __init__(self, in_ch: int, out_ch: int, kernel, stride: int = 1, padding=0) -> None:
        super().__init__(
            nn.Conv2d(in_ch, out_ch, kernel, stride, padding, bias=False),
            nn.BatchNorm2d(out_ch, eps=_BN_EPS),
            nn.ReLU(inplace=True),
        )


class _ResidualInception(nn.Module):
    """``x + scale * up(concat(branches(x)))``, then ReLU unless ``activate=False``."""

    branches: nn.ModuleList
    up: nn.Conv2d

    def __init__(self, scale: float, activate: bool) -> None:
        super().__init__()
        self.scale = scale
        self.activate = activate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.up(torch.cat([b(x) for b in self.branches], dim=1))
        out = x + self.scale * y
        return F.relu(out) if self.activate else out


class Block35(_ResidualInception):
    """Inception-ResNet-A (Fig. 10) on 256 channels: 1x1 | 1x1-3x3 | 1x1-3x3-3x3, 32 wide."""

    def __init__(self, scale: float = 0.17, activate: bool = True) -> None:
        super().__init__(scale, activate)
        self.branches = nn.ModuleList(
            [
                BasicConv2d(256, 32, 1),
                nn.Sequential(BasicConv2d(256, 32, 1), BasicConv2d(32, 32, 3, padding=1)),
                nn.Sequential(
                    BasicConv2d(256, 32, 1), BasicConv2d(32, 32, 3, padding=1), BasicConv2d(32, 32, 3, padding=1)
                ),
            ]
        )
        self.up = nn.Conv2d(96, 256, 1)


class Block17(_ResidualInception):
    """Inception-ResNet-B (Fig. 11) on 896 channels: 1x1 | 1x1-1x7-7x1, 128 wide."""

    def __init__(self, scale: float = 0.10, activate: bool = True) -> None:
        super().__init__(scale, activate)
        self.branches = nn.ModuleList(
            [
                BasicConv2d(896, 128, 1),
                nn.Sequential(
                    BasicConv2d(896, 128, 1),
                    BasicConv2d(128, 128, (1, 7), padding=(0, 3)),
                    BasicConv2d(128, 128, (7, 1), padding=(3, 0)),
                ),
            ]
        )
        self.up = nn.Conv2d(256, 896, 1)


class Block8(_ResidualInception):
    """Inception-ResNet-C (Fig. 13) on 1792 channels: 1x1 | 1x1-1x3-3x1, 192 wide."""

    def __init__(self, scale: float = 0.20, activate: bool = True) -> None:
        super().__init__(scale, activate)
        self.branches = nn.ModuleList(
            [
                BasicConv2d(1792, 192, 1),
                nn.Sequential(
                    BasicConv2d(1792, 192, 1),
                    BasicConv2d(192, 192, (1, 3), padding=(0, 1)),
                    BasicConv2d(192, 192, (3, 1), padding=(1, 0)),
                ),
            ]
        )
        self.up = nn.Conv2d(384, 1792, 1)


class _Concat(nn.Module):
    """Run branches side by side and concatenate their channels (the reduction modules)."""

    def __init__(self, *branches: nn.Module) -> None:
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([b(x) for b in self.branches], dim=1)


class ReductionA(_Concat):
    """Fig. 7 with k, l, m, n = 192, 192, 256, 384: 256 -> 384 + 256 + 256 = 896 channels, stride 2."""

    def __init__(self, k: int = 192, l: int = 192, m: int = 256, n: int = 384) -> None:  # noqa: E741
        super().__init__(
            BasicConv2d(256, n, 3, stride=2),
            nn.Sequential(BasicConv2d(256, k, 1), BasicConv2d(k, l, 3, padding=1), BasicConv2d(l, m, 3, stride=2)),
            nn.MaxPool2d(3, stride=2),
        )


class ReductionB(_Concat):
    """Fig. 12: 896 -> 384 + 256 + 256 + 896 (max pool) = 1792 channels, stride 2."""

    def __init__(self) -> None:
        super().__init__(
            nn.Sequential(BasicConv2d(896, 256, 1), BasicConv2d(256, 384, 3, stride=2)),
            nn.Sequential(BasicConv2d(896, 256, 1), BasicConv2d(256, 256, 3, stride=2)),
            nn.Sequential(
                BasicConv2d(896, 256, 1), BasicConv2d(256, 256, 3, padding=1), BasicConv2d(256, 256, 3, stride=2)
            ),
            nn.MaxPool2d(3, stride=2),
        )


class InceptionResNetV1(nn.Module):
    """Stem, ``repeats`` A/B/C blocks around the two reductions, and an average-pool embedding head."""

    def __init__(
        self,
        repeats: Sequence[int] = (5, 10, 5),
        embedding_dim: int = 128,
        in_channels: int = 3,
        input_size: tuple[int, int] = (112, 112),
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        repeats = tuple(repeats)
        if len(repeats) != 3 or any(not isinstance(r, int) or r < 0 for r in repeats):
            raise ValueError(f"repeats must be three non-negative ints (A, B, C blocks), got {repeats}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout is a drop probability in [0, 1), got {dropout}")
        if min(input_size) < MIN_INPUT_SIZE:
            raise ValueError(
                f"input_size {tuple(input_size)} is too small for Inception-ResNet-v1: "
                f"each side must be at least {MIN_INPUT_SIZE} pixels"
            )
        self.embedding_dim = embedding_dim
        self.stem = nn.Sequential(
            BasicConv2d(in_channels, 32, 3, stride=2),
            BasicConv2d(32, 32, 3),
            BasicConv2d(32, 64, 3, padding=1),
            nn.MaxPool2d(3, stride=2),
            BasicConv2d(64, 80, 1),
            BasicConv2d(80, 192, 3),
            BasicConv2d(192, 256, 3, stride=2),
        )
        a, b, c = repeats
        self.blocks_a = nn.Sequential(*[Block35() for _ in range(a)])
        self.reduction_a = ReductionA()
        self.blocks_b = nn.Sequential(*[Block17() for _ in range(b)])
        self.reduction_b = ReductionB()
        self.blocks_c = nn.Sequential(*[Block8(activate=i < c - 1) for i in range(c)])
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(1792, embedding_dim, bias=False)
        self.bn_out = nn.BatchNorm1d(embedding_dim, eps=_BN_EPS)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The 1792-channel map after the last C block (2x2 for a 112x112 input)."""
        x = self.blocks_a(self.stem(x))
        x = self.blocks_b(self.reduction_a(x))
        return self.blocks_c(self.reduction_b(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dropout(self.forward_features(x).mean(dim=(2, 3)))
        return F.normalize(self.bn_out(self.fc(x)), dim=1)


@register_model("inception_resnet_v1")
def inception_resnet_v1(**cfg) -> InceptionResNetV1:
    """The full network, 5 / 10 / 5 blocks (``repeats`` and ``dropout`` may be overridden)."""
    return InceptionResNetV1(**cfg)


@register_model("inception_resnet_v1_small")
def inception_resnet_v1_small(**cfg) -> InceptionResNetV1:
    """A reduced 1 / 2 / 1-block variant for CPU training."""
    return InceptionResNetV1(**{"repeats": (1, 2, 1), **cfg})
