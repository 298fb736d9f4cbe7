"""Loss registry: ``build_loss(name, **cfg)`` returns an ``nn.Module`` called as ``loss(embeddings, labels)``.

Losses with parameters of their own (classification heads such as ArcFace) declare
``needs_classes = True`` and receive ``num_classes`` and ``embedding_dim``.
"""

from __future__ import annotations

from typing import Callable

import torch.nn as nn

_LOSSES: dict[str, Callable[..., nn.Module]] = {}


def register_loss(name: str) -> Callable[[type], type]:
    """Class decorator: make ``build_loss(name, **cfg)`` construct the class."""

    def wrap(cls: type) -> type:
        if name in _LOSSES:
            raise KeyError(f"loss {name!r} registered twice")
        _LOSSES[name] = cls
        return cls

    return wrap


def available_losses() -> list[str]:
    """Names accepted by :func:`build_loss`."""
    return sorted(_LOSSES)


def loss_needs_classes(name: str) -> bool:
    """Whether the loss owns class weights and needs ``num_classes``/``embedding_dim``."""
    return bool(getattr(_get(name), "needs_classes", False))


def _get(name: str) -> Callable[..., nn.Module]:
    if name not in _LOSSES:
        raise KeyError(f"unknown loss {name!r}; available: {', '.join(available_losses())}")
    return _LOSSES[name]


def build_loss(name: str, **cfg) -> nn.Module:
    """Build the loss registered as ``name`` with keyword settings ``cfg``."""
    return _get(name)(**cfg)
