"""Model registry: the config names a backbone, the registry builds it."""

from __future__ import annotations

from typing import Callable

import torch.nn as nn

from facemetric.registry import Registry

MODELS: Registry[Callable[..., nn.Module]] = Registry("model")
register_model = MODELS.register


def available_models() -> list[str]:
    """Names accepted by :func:`build_model`."""
    return MODELS.names()


def build_model(name: str, **cfg) -> nn.Module:
    """Build the embedding model registered as ``name`` with keyword settings ``cfg``."""
    return MODELS.get(name)(**cfg)
