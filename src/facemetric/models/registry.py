"""Model registry: the config names a backbone, the registry builds it and keeps its declared spec."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import torch.nn as nn

from facemetric.core.config import ModelConfig
from facemetric.core.registry import Registry
from facemetric.core.spec import ImageSpec
from facemetric.models.spec import ModelSpec

MODELS: Registry[Callable[..., nn.Module]] = Registry("model", injected=("embedding_dim", "in_channels", "input_size"))
_SPECS: dict[str, ModelSpec] = {}
T = TypeVar("T", bound=Callable[..., nn.Module])


def register_model(name: str, spec: ModelSpec | None = None) -> Callable[[T], T]:
    """Decorator registering a backbone builder (class or function) as ``name`` with its
    :class:`ModelSpec` (default: a face model on 112x112 RGB crops, 512-d)."""

    def wrap(builder: T) -> T:
        MODELS.register(name)(builder)
        _SPECS[name] = spec or ModelSpec()
        return builder

    return wrap


def model_spec(name: str) -> ModelSpec:
    """What the backbone registered as ``name`` declared (an unknown name: :class:`UnknownNameError`)."""
    MODELS.get(name)
    return _SPECS.get(name, ModelSpec())


def available_models() -> list[str]:
    """Names accepted by :func:`build_model`."""
    return MODELS.names()


def build_model(name: str, **options: Any) -> nn.Module:
    """Build the embedding model registered as ``name`` with keyword ``options``."""
    return MODELS.build(name, where="model", **options)


def build_natural(name: str, embedding_dim: int | None = None, **options: Any) -> nn.Module:
    """``name`` built for its natural input (:class:`ModelSpec`), at its usual embedding size by default."""
    spec = model_spec(name)
    return build_model(
        name,
        embedding_dim=embedding_dim or spec.embedding_dim,
        in_channels=spec.channels,
        input_size=spec.input_size,
        **options,
    )


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
