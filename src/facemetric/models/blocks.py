"""Small building blocks shared by backbones."""

from __future__ import annotations

import torch.nn as nn


def conv_bn(in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    """Convolution (no bias) followed by batch norm."""
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel, stride, padding=kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out_ch),
    )


def conv_bn_prelu(in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    """Convolution, batch norm and PReLU: the stem / stage unit of face backbones."""
    return nn.Sequential(*conv_bn(in_ch, out_ch, kernel, stride, groups), nn.PReLU(out_ch))
