"""Loss registry: ``build_loss(name, **options)`` returns an ``nn.Module`` called as ``loss(embeddings, labels)``.

Losses with parameters of their own (classification heads such as ArcFace) declare
``needs_classes = True`` and receive ``num_classes`` and ``embedding_dim``; pair losses take a
``miner`` (:mod:`facemetric.miners`). Those arguments are supplied by the builder, not by the
config's ``loss.options``.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch.nn as nn

from facemetric.core.registry import Registry

LOSSES: Registry[Any] = Registry("loss", injected=("num_classes", "embedding_dim", "miner"))
register_loss = LOSSES.register


def available_losses() -> list[str]:
    """Names accepted by :func:`build_loss`."""
    return LOSSES.names()


def loss_needs_classes(name: str) -> bool:
    """Whether the loss owns class weights and needs ``num_classes``/``embedding_dim``."""
    return bool(getattr(LOSSES.get(name), "needs_classes", False))


def loss_takes_miner(name: str) -> bool:
    """Whether the loss learns from mined pairs or triplets (it has a ``miner`` argument)."""
    return "miner" in inspect.signature(LOSSES.get(name)).parameters


def build_loss(name: str, **options: Any) -> nn.Module:
    """The loss registered as ``name`` with keyword ``options`` (a ``ValueError`` of its own becomes a
    :class:`~facemetric.core.errors.ConfigError` naming the loss)."""
    return LOSSES.build(name, where="loss", **options)
