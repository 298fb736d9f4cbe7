"""Model registry: the config names a backbone, the registry builds it."""

from __future__ import annotations

from typing import Callable

import torch.nn as nn

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator: make ``build_model(name, **cfg)`` call the decorated builder."""

    def wrap(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _MODELS:
            raise KeyError(f"model {name!r} registered twice")
        _MODELS[name] = builder
        return builder

    return wrap


def available_models() -> list[str]:
    """Names accepted by :func:`build_model`."""
    return sorted(_MODELS)


def build_model(name: str, **cfg) -> nn.Module:
    """Build the embedding model registered as ``name`` with keyword settings ``cfg``."""
    if name not in _MODELS:
        raise KeyError(f"unknown model {name!r}; available: {', '.join(available_models())}")
    return _MODELS[name](**cfg)
