"""``model.mirror``: a network that embeds a face together with its mirror image.

The embedding is the unit-length sum of the network's embeddings of the image and of the image
flipped left to right (the test-time augmentation face-recognition papers report with). It is
built into the model used for inference, not into training: validation, ``facemetric eval``,
galleries, ``serve`` and the ONNX export all get it, at twice the cost of one embedding.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class MirrorMean(nn.Module):
    """``normalize(net(x) + net(flip(x)))``; the same for an image and its mirror image."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.embedding_dim = int(getattr(net, "embedding_dim", 0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.net(x) + self.net(torch.flip(x, dims=[3])), dim=1)


def for_inference(model: nn.Module, mirror: bool) -> nn.Module:
    """``model`` as inference uses it: wrapped in :class:`MirrorMean` when ``model.mirror`` is set."""
    return MirrorMean(model) if mirror and not isinstance(model, MirrorMean) else model
