"""Embedding backbones. Every module of this package is imported (``core.registry.discover``), so a new
backbone is one new file with ``@register_model("name", spec=ModelSpec(...))``."""

from facemetric.core.registry import discover
from facemetric.models.registry import (
    available_models,
    build_embedding_model,
    build_model,
    build_natural,
    model_spec,
    register_model,
)
from facemetric.models.spec import ModelSpec, PretrainedWeights

discover(__name__, __path__)

__all__ = [
    "ModelSpec",
    "PretrainedWeights",
    "available_models",
    "build_embedding_model",
    "build_model",
    "build_natural",
    "model_spec",
    "register_model",
]
