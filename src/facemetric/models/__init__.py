"""Embedding backbones; importing this package registers them all."""

from facemetric.models import convnext, inception_resnet, iresnet, l2net, mobilefacenet  # noqa: F401  (registers)
from facemetric.models.registry import available_models, build_embedding_model, build_model, register_model

__all__ = ["available_models", "build_embedding_model", "build_model", "register_model"]
