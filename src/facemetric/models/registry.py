"""Model registry: the config names a backbone, the registry builds it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import torch.nn as nn

from facemetric.registry import Registry

if TYPE_CHECKING:
    from facemetric.config import ModelConfig
    from facemetric.data.images import ImageSpec

MODELS: Registry[Callable[..., nn.Module]] = Registry("model")
register_model = MODELS.register


def available_models() -> list[str]:
    """Names accepted by :func:`build_model`."""
    return MODELS.names()


def build_model(name: str, **cfg) -> nn.Module:
    """Build the embedding model registered as ``name`` with keyword settings ``cfg``."""
    return MODELS.get(name)(**cfg)


def build_embedding_model(model_cfg: "ModelConfig", spec: "ImageSpec") -> nn.Module:
    """The network a config's ``model`` section describes, sized for images decoded with ``spec``."""
    return build_model(
        model_cfg.name, embedding_dim=model_cfg.embedding_dim, in_channels=spec.channels,
        input_size=(spec.height, spec.width), **model_cfg.options,
    )
