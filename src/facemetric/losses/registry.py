"""Loss registry: ``build_loss(name, **options)`` returns an ``nn.Module`` called as ``loss(embeddings, labels)``.

Each loss is registered with what it needs (:class:`~facemetric.core.needs.LossNeeds`): a
classification head (ArcFace ...) declares ``classes`` and receives ``num_classes`` and
``embedding_dim``; a pair loss declares its miner kind and receives a ``miner``
(:mod:`facemetric.miners`). Those arguments are supplied by the builder, not by the config's
``loss.options``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import torch.nn as nn

from facemetric.core.needs import LossNeeds
from facemetric.core.registry import Registry

LOSSES: Registry[Any] = Registry("loss", injected=("num_classes", "embedding_dim", "miner"))
_NEEDS: dict[str, LossNeeds] = {}
T = TypeVar("T", bound=Callable[..., Any])


def register_loss(name: str, needs: LossNeeds | None = None) -> Callable[[T], T]:
    """Decorator registering a loss class (or builder) as ``name``, with what it ``needs`` from a run
    (default: nothing injected, no miner)."""

    def wrap(builder: T) -> T:
        LOSSES.register(name)(builder)
        _NEEDS[name] = needs or LossNeeds()
        return builder

    return wrap


def available_losses() -> list[str]:
    """Names accepted by :func:`build_loss`."""
    return LOSSES.names()


def loss_needs(name: str) -> LossNeeds:
    """What the loss registered as ``name`` declared it needs (an unknown name: :class:`UnknownNameError`)."""
    LOSSES.get(name)
    return _NEEDS.get(name, LossNeeds())


def loss_needs_classes(name: str) -> bool:
    """Whether the loss owns class weights and needs ``num_classes``/``embedding_dim`` (its declaration)."""
    return loss_needs(name).classes


def build_loss(name: str, **options: Any) -> nn.Module:
    """The loss registered as ``name`` with keyword ``options`` (a ``ValueError`` of its own becomes a
    :class:`~facemetric.core.errors.ConfigError` naming the loss)."""
    return LOSSES.build(name, where="loss", **options)
