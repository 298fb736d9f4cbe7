"""Loss registry: ``build_loss(name, **cfg)`` returns an ``nn.Module`` called as ``loss(embeddings, labels)``.

Losses with parameters of their own (classification heads such as ArcFace) declare
``needs_classes = True`` and receive ``num_classes`` and ``embedding_dim``.
"""

from __future__ import annotations

import torch

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


def rebuild_loss(current, name: str, **cfg):
    """A new ``name`` loss with settings ``cfg`` that shares ``current``'s parameters and buffers.

    Used by loss schedules (e.g. semi-hard -> hard mining): the optimizer keeps pointing at
    the same class weights, so a schedule never resets what the loss has learned.
    """
    new = build_loss(name, **cfg)
    old_modules = dict(current.named_modules())
    for path, module in new.named_modules():
        source = old_modules.get(path)
        for kind in ("_parameters", "_buffers"):
            mine, theirs = getattr(module, kind), getattr(source, kind, {}) if source is not None else {}
            if set(mine) != set(theirs) or any(
                mine[k] is not None and theirs[k] is not None and mine[k].shape != theirs[k].shape for k in mine
            ):
                raise ValueError(f"loss schedule: {name} with {cfg} has different parameters from the running loss")
            mine.update(theirs)
    return new.to(next(iter(current.parameters()), torch.empty(0)).device)
