"""Embedding backbones; importing this package registers them all."""

from facemetric.models import (  # noqa: F401  (registers)
    convnext,
    dlib_resnet,
    inception_resnet,
    iresnet,
    l2net,
    mobilefacenet,
)
from facemetric.models.registry import available_models, build_embedding_model, build_model, register_model

__all__ = ["available_models", "build_embedding_model", "build_model", "register_model"]
