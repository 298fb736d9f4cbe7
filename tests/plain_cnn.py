"""A small convolutional model without batch norm, registered as ``test_plain_cnn``, and ``python -m plain_cnn
ARGS``: the facemetric command line with it registered (what torchrun runs in the multi-node test).

No batch norm: with it, each process normalises its own share of the batch (on CPU there is no
SyncBatchNorm), and several processes would differ from one by design, not by a bug.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from facemetric.models.registry import MODELS, register_model
from facemetric.ops.normalize import normalize_rows

MODEL = "test_plain_cnn"


class PlainCNN(nn.Module):
    def __init__(self, embedding_dim: int, in_channels: int, input_size: tuple[int, int]) -> None:
        super().__init__()
        h, w = input_size
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, 8, 3, 2, 1), nn.PReLU(8), nn.Conv2d(8, 16, 3, 2, 1), nn.PReLU(16), nn.Flatten()
        )
        self.fc = nn.Linear(16 * ((h + 3) // 4) * ((w + 3) // 4), embedding_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return normalize_rows(self.fc(self.body(x)))


def register() -> None:
    if MODEL not in MODELS:
        register_model(MODEL)(PlainCNN)


if __name__ == "__main__":
    register()
    from facemetric.cli import main

    raise SystemExit(main())
