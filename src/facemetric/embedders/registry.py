"""Pretrained embedders by name (``dlib-resnet``): what ``--model NAME`` opens besides checkpoint files."""

from __future__ import annotations

from typing import Any

from facemetric.core.registry import Registry

PRETRAINED: Registry[Any] = Registry("pretrained model")
register_pretrained = PRETRAINED.register


def available_pretrained() -> list[str]:
    """Names ``load_embedder`` opens without a file."""
    return PRETRAINED.names()
