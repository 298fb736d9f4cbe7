"""L2-Net (Tian et al., CVPR 2017) and HardNet (Mishchuk et al., NeurIPS 2017): patch descriptors.

Seven convolutions on a small (32x32 grayscale in the papers) patch: 3x3 convs 32-32-64/2-64-128/2-128,
then one valid convolution whose kernel covers the whole remaining map (input/4), so the last layer
acts as a fully connected layer and the output is 1x1 with ``embedding_dim`` channels. Every conv
has no bias and is followed by BatchNorm *without* learnable affine (the descriptor's scale is
fixed by the final L2 normalisation anyway); ReLU follows all but the last. HardNet is the same
network trained with a hardest-in-batch triplet loss and dropout 0.3 before the last conv; with a
128-d output it has 1,334,560 parameters (all in the convolutions).

Both papers normalise every input patch by its own mean and standard deviation before the net
(``input_norm``, on by default for both), which makes the descriptor invariant to affine
brightness changes ``x -> a x + b`` (``a > 0``) of the patch. ``normalize=False`` drops the final L2
normalisation during training (the descriptor's length is then free; evaluation and every embedder
still compare unit vectors) and ``batch_norm=False`` every BatchNorm (convolutions get biases): the
"no normalisation" of the collapsing recipe reproduced in BENCHMARKS.md. The last BatchNorm is what
makes the network itself resist collapse: it keeps every output dimension's batch variance at 1, so
the descriptors of a batch cannot all coincide.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from facemetric.models.registry import register_model
from facemetric.models.spec import ModelSpec

PATCH = ModelSpec(input_size=(32, 32), channels=1, embedding_dim=128)  # the papers' 32x32 grey patches


def conv_bn_free(
    in_ch: int, out_ch: int, kernel: int | tuple[int, int], stride: int = 1, padding: int = 0, batch_norm: bool = True
) -> list[nn.Module]:
    """Convolution (no bias) and a BatchNorm without affine parameters, as in L2-Net; without batch norm,
    a convolution with a bias."""
    if not batch_norm:
        return [nn.Conv2d(in_ch, out_ch, kernel, stride, padding, bias=True)]
    return [nn.Conv2d(in_ch, out_ch, kernel, stride, padding, bias=False), nn.BatchNorm2d(out_ch, affine=False)]


def patch_normalize(x: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Standardise each sample by the mean and (population) std of all its pixels and channels.

    Written with plain mean/sqrt so it exports to ONNX without relying on a ``std`` operator.
    """
    flat = x.flatten(1)
    mean = flat.mean(dim=1)
    std = ((flat - mean[:, None]) ** 2).mean(dim=1).sqrt() + eps
    return (x - mean[:, None, None, None]) / std[:, None, None, None]


class L2Net(nn.Module):
    """The L2-Net / HardNet descriptor network; ``dropout`` is 0 for L2-Net and 0.3 for HardNet.

    ``input_size`` may be any ``(h, w)`` with both sides divisible by 4 and at least 8: the two
    stride-2 convs bring it to ``(h/4, w/4)`` and the last conv uses exactly that kernel.
    """

    def __init__(
        self,
        embedding_dim: int = 128,
        in_channels: int = 1,
        input_size: tuple[int, int] = (32, 32),
        dropout: float = 0.0,
        input_norm: bool = True,
        normalize: bool = True,
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        h, w = input_size
        if h % 4 or w % 4 or h < 8 or w < 8:
            raise ValueError(
                f"L2-Net needs input sides divisible by 4 and at least 8 (two stride-2 convs, then a "
                f"valid conv over the remaining input/4 map); got input_size {tuple(input_size)}"
            )
        self.embedding_dim = embedding_dim
        self.input_norm, self.normalize = input_norm, normalize
        layers: list[nn.Module] = []
        ch = in_channels
        for width, stride in ((32, 1), (32, 1), (64, 2), (64, 1), (128, 2), (128, 1)):
            layers += [*conv_bn_free(ch, width, 3, stride, 1, batch_norm), nn.ReLU(inplace=True)]
            ch = width
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers += conv_bn_free(ch, embedding_dim, (h // 4, w // 4), batch_norm=batch_norm)
        self.features = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_norm:
            x = patch_normalize(x)
        out = self.features(x).flatten(1)
        return F.normalize(out, dim=1) if self.normalize else out


@register_model("l2net", spec=PATCH)
def l2net(**cfg) -> L2Net:
    """L2-Net: no dropout, per-patch input normalisation; defaults to 32x32 grayscale, 128-d."""
    return L2Net(**{"dropout": 0.0, **cfg})


@register_model("hardnet", spec=PATCH)
def hardnet(**cfg) -> L2Net:
    """HardNet: the L2-Net architecture with dropout 0.3 before the last conv."""
    return L2Net(**{"dropout": 0.3, **cfg})
