"""What a backbone declares beside its builder: the input it is meant for, and what builders need to know.

``@register_model("l2net", spec=ModelSpec(input_size=(32, 32), channels=1, embedding_dim=128))``
(as timm's ``pretrained_cfg``): ``facemetric models`` builds each backbone at its natural input,
training reads whether bf16 autocast pays on a CPU, and ``model.pretrained`` names trained weights
a backbone declares, with the crops they were trained on. Builders read these declarations, never
a model's name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch.nn as nn

Normalization = tuple[tuple[float, ...], tuple[float, ...]]


@dataclass(frozen=True)
class PretrainedWeights:
    """Trained weights a backbone can start from (``model.pretrained: <name>``) and what they expect.

    Args:
        load: copies the weights into a freshly built model; returns the names of the tensors left
            as initialised (an embedding layer of another size).
        align: the ``facemetric prepare --align`` backend that cut the crops they were trained on.
        input_size: (height, width) of those crops.
        min_side: the smallest side the network runs at (smaller crops of the same cut are allowed).
        channels: channels of those crops.
        normalization: (mean, std) per channel of [0, 1] pixels the weights expect.
    """

    load: Callable[[nn.Module], list[str]]
    align: str
    input_size: tuple[int, int]
    min_side: int
    channels: int = 3
    normalization: Normalization | None = None


@dataclass(frozen=True)
class ModelSpec:
    """A backbone's declaration; the defaults describe a face model on 112x112 RGB crops (the ArcFace
    template).

    Args:
        input_size: natural (height, width): what ``facemetric models`` builds and measures it at.
        channels: natural input channels.
        embedding_dim: its usual embedding size.
        normalization: (mean, std) per channel of [0, 1] pixels it is trained with; None: the data's own
            (0.5, inputs in [-1, 1]).
        bf16_slower_on_cpu: ``train.amp: auto`` keeps fp32 on a CPU (measured slower in bf16 there,
            e.g. depthwise convolutions).
        pretrained: trained weights by ``model.pretrained`` name.
    """

    input_size: tuple[int, int] = (112, 112)
    channels: int = 3
    embedding_dim: int = 512
    normalization: Normalization | None = None
    bf16_slower_on_cpu: bool = False
    pretrained: Mapping[str, PretrainedWeights] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {self.channels}")
        if self.normalization is not None and any(len(v) != self.channels for v in self.normalization):
            raise ValueError(f"normalization needs one mean and one std per channel ({self.channels})")

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of the natural input."""
        return self.channels, self.input_size[0], self.input_size[1]
