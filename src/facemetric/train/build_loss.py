"""The loss of a config, built by what it declares (:class:`~facemetric.core.needs.LossNeeds`): a
classifier head gets the class count, a pair loss its miner, a teacher loss its label head, and a
margin head that Partial FC can shard becomes Partial FC under torchrun or ``loss.sample_rate`` < 1."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from facemetric.core.config import Config
from facemetric.core.errors import ConfigError
from facemetric.losses import build_loss, loss_needs
from facemetric.losses.distill import DistillLoss
from facemetric.losses.margin import ClassifierLoss
from facemetric.losses.partial_fc import PartialFC, seeded_centres, shard_range
from facemetric.miners import build_miner
from facemetric.train.distributed import Strategy


def build_loss_from(cfg: Config, num_classes: int, miner: Any = None) -> nn.Module:
    """The loss of ``cfg`` (a classifier head gets the class count, a pair loss the miner)."""
    needs = loss_needs(cfg.loss.name)
    extra: dict[str, Any] = {}
    if needs.classes:
        extra.update(num_classes=num_classes, embedding_dim=cfg.model.embedding_dim)
    if miner is not None:
        extra["miner"] = miner
    loss = build_loss(cfg.loss.name, **cfg.loss.options, **extra)
    if needs.teacher and cfg.distill.labels > 0:
        if not isinstance(loss, DistillLoss):
            raise ConfigError(
                f"distill.labels: loss {cfg.loss.name!r} cannot add a labelled head (it is not a DistillLoss); "
                "set distill.labels=0"
            )
        label = cfg.distill.label_loss
        head = build_loss(label.name, **label.options, num_classes=num_classes, embedding_dim=cfg.model.embedding_dim)
        loss.add_label_loss(head, cfg.distill.labels)
    missing = sorted(
        {k for options in cfg.loss.schedule.values() for k in options}
        - set(vars(loss))
        - {k for k in dir(type(loss)) if isinstance(getattr(type(loss), k), property)}
    )
    if missing:
        raise ConfigError(
            f"loss.schedule: loss {cfg.loss.name!r} does not read {', '.join(missing)} at every step, "
            "so a schedule cannot change it"
        )
    return loss


def loss_for(cfg: Config, num_classes: int, strategy: Strategy) -> nn.Module:
    """The loss of ``cfg`` with its first miner; a margin head declared ``partial_fc`` becomes Partial FC
    (its centres split over the processes, ``loss.sample_rate`` of them used a step) under torchrun or when
    ``loss.sample_rate`` < 1."""
    first = cfg.miner.first()
    miner = build_miner(first.name, **first.options) if first is not None else None
    needs = loss_needs(cfg.loss.name)
    if not needs.classes or (strategy.world_size == 1 and cfg.loss.sample_rate == 1.0):
        return build_loss_from(cfg, num_classes, miner)
    if not needs.partial_fc:
        if cfg.loss.sample_rate < 1.0:
            raise ConfigError(
                f"loss.sample_rate: Partial FC samples the centres of heads that declare it (cosine margin heads "
                f"and softmax), not {cfg.loss.name}; set loss.sample_rate=1.0"
            )
        return build_loss_from(cfg, num_classes, miner)  # replicated on every rank, trained on the global batch
    if num_classes < 2 * strategy.world_size:
        raise ConfigError(f"{num_classes} training identities cannot be split over {strategy.world_size} processes")
    shard = shard_range(num_classes, strategy.rank, strategy.world_size)
    head = build_loss_from(cfg, shard[1], miner)
    if not isinstance(head, ClassifierLoss):
        raise ConfigError(
            f"loss.name: {cfg.loss.name!r} declares partial_fc but is not a ClassifierLoss with a weight per class; "
            "Partial FC cannot shard it (set loss.sample_rate=1.0, run in one process)"
        )
    with torch.no_grad():  # the same initial centres for any number of processes
        head.weight.copy_(seeded_centres(shard, head.subcenters, cfg.model.embedding_dim, cfg.train.seed))
    return PartialFC(head, num_classes, shard, cfg.loss.sample_rate)
