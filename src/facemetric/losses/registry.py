"""Loss registry: ``build_loss(name, **cfg)`` returns an ``nn.Module`` called as ``loss(embeddings, labels)``.

Losses with parameters of their own (classification heads such as ArcFace) declare
``needs_classes = True`` and receive ``num_classes`` and ``embedding_dim``.
"""

from __future__ import annotations

from facemetric.registry import Registry

LOSSES: Registry[type] = Registry("loss")
register_loss = LOSSES.register


def available_losses() -> list[str]:
    """Names accepted by :func:`build_loss`."""
    return LOSSES.names()


def loss_needs_classes(name: str) -> bool:
    """Whether the loss owns class weights and needs ``num_classes``/``embedding_dim``."""
    return bool(getattr(LOSSES.get(name), "needs_classes", False))


def build_loss(name: str, **cfg):
    """Build the loss registered as ``name`` with keyword settings ``cfg``."""
    return LOSSES.get(name)(**cfg)
