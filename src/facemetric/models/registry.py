"""Model registry: the config names a backbone, the registry builds it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch.nn as nn

from facemetric.core.config import ModelConfig
from facemetric.core.registry import Registry
from facemetric.core.spec import ImageSpec

MODELS: Registry[Callable[..., nn.Module]] = Registry("model", injected=("embedding_dim", "in_channels", "input_size"))
register_model = MODELS.register


def available_models() -> list[str]:
    """Names accepted by :func:`build_model`."""
    return MODELS.names()


def build_model(name: str, **options: Any) -> nn.Module:
    """Build the embedding model registered as ``name`` with keyword ``options``."""
    return MODELS.build(name, where="model", **options)


def build_embedding_model(model_cfg: ModelConfig, spec: ImageSpec) -> nn.Module:
    """The network a config's ``model`` section describes, sized for images decoded with ``spec``."""
    MODELS.check_options(model_cfg.name, model_cfg.options, "model.options")
    return MODELS.build(
        model_cfg.name,
        where="model",
        embedding_dim=model_cfg.embedding_dim,
        in_channels=spec.channels,
        input_size=(spec.height, spec.width),
        **model_cfg.options,
    )
