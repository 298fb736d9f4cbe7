"""A config checked before any data is read: every name against its registry, every option against its
builder's signature, and the components against each other by what they declare (a loss's
:class:`~facemetric.core.needs.LossNeeds`, a backbone's :class:`~facemetric.models.spec.ModelSpec`),
never by their names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from facemetric.core.config import Config, MinerStage
from facemetric.core.errors import ConfigError, UnknownNameError
from facemetric.losses import LOSSES, loss_needs
from facemetric.miners import MINERS
from facemetric.models.registry import MODELS
from facemetric.optim import OPTIMIZERS, SCHEDULERS
from facemetric.train.callbacks import CALLBACKS, Callback
from facemetric.train.callbacks.tracking import check_installed
from facemetric.train.distributed import Strategy
from facemetric.train.weights import pretrained_weights


def _name(registry: Any, name: str, key: str) -> None:
    try:
        registry.get(name)
    except UnknownNameError as exc:
        raise ConfigError(f"{key}: {exc}") from None


def check_config(cfg: Config) -> None:
    """Refuse, with the key's name, any component a registry does not know, options its builder does not
    take, or components that do not fit together."""
    _name(MODELS, cfg.model.name, "model.name")
    MODELS.check_options(cfg.model.name, cfg.model.options, "model.options")
    pretrained_weights(cfg.model)
    if cfg.model.init and not Path(cfg.model.init).expanduser().is_file():
        raise ConfigError(f"model.init: {cfg.model.init} does not exist; give a run's best.pt or last.pt")
    _name(LOSSES, cfg.loss.name, "loss.name")
    LOSSES.check_options(cfg.loss.name, cfg.loss.options, "loss.options")
    for epoch, options in cfg.loss.schedule.items():
        LOSSES.check_options(cfg.loss.name, options, f"loss.schedule.{epoch}")
    _check_miners(cfg)
    _check_teacher(cfg)
    _name(OPTIMIZERS, cfg.optim.name, "optim.name")
    OPTIMIZERS.check_options(cfg.optim.name, cfg.optim.options, "optim.options")
    _name(SCHEDULERS, cfg.scheduler.name, "scheduler.name")
    SCHEDULERS.check_options(cfg.scheduler.name, cfg.scheduler.options, "scheduler.options")
    for k, callback in enumerate(cfg.train.callbacks):
        _check_callback(callback.name, f"train.callbacks.{k}")
        CALLBACKS.check_options(callback.name, callback.options, f"train.callbacks.{k}.options")
    for logger in cfg.train.loggers:
        check_installed(logger)


def _implied_by(name: str) -> str | None:
    """The config key that adds the registered callback ``name`` to a run (None: it is named in a config)."""
    kind = CALLBACKS.get(name)
    return kind.implied_by if isinstance(kind, type) and issubclass(kind, Callback) else None


def _check_callback(name: str, where: str) -> None:
    """A ``train.callbacks`` entry names a registered callback that a config names (not one it implies)."""
    if name not in CALLBACKS:
        named = [n for n in CALLBACKS.names() if _implied_by(n) is None]
        raise ConfigError(f"{where}.name: unknown callback {name!r}; available: {', '.join(named)}")
    implied_by = _implied_by(name)
    if implied_by:
        raise ConfigError(
            f"{where}.name: {name!r} is added by facemetric itself from {implied_by}; "
            "set that instead of naming it here"
        )


def _check_miners(cfg: Config) -> None:
    """The miner and its schedule: registered, with options it takes, of the kind the loss declares."""
    stages = [(f"miner.schedule.{e}", s) for e, s in cfg.miner.schedule.items()]
    first = cfg.miner.first()
    if first is not None:
        stages.insert(0, ("miner", first))
    elif cfg.miner.options:
        raise ConfigError("miner.options: given without miner.name; name the miner they are for")
    needs = loss_needs(cfg.loss.name)
    if stages and needs.miner is None:
        raise ConfigError(
            f"miner: loss {cfg.loss.name!r} does not learn from mined pairs or triplets; remove the miner "
            "section or choose a pair loss"
        )
    for where, stage in stages:
        _check_miner(cfg, stage, where)


def _check_miner(cfg: Config, stage: MinerStage, where: str) -> None:
    _name(MINERS, stage.name, f"{where}.name")
    MINERS.check_options(stage.name, stage.options, f"{where}.options")
    needs = loss_needs(cfg.loss.name)
    interface = needs.miner_interface
    assert interface is not None  # checked by the caller
    kind = MINERS.get(stage.name)
    if not (isinstance(kind, type) and issubclass(kind, interface)):
        fitting = [n for n in MINERS.names() if issubclass(MINERS.get(n), interface)]
        raise ConfigError(
            f"{where}.name: {stage.name!r} does not mine {needs.miner}, which loss {cfg.loss.name!r} learns from; "
            f"available: {', '.join(fitting)}"
        )


def _check_teacher(cfg: Config) -> None:
    """A loss that learns from a teacher and ``distill.teacher`` go together; the label loss is a classifier head."""
    needs = loss_needs(cfg.loss.name)
    if needs.teacher and not cfg.distill.teacher:
        raise ConfigError(
            f"loss.name: {cfg.loss.name} learns a teacher's embeddings; name the teacher in distill.teacher "
            "(dlib-resnet, a run's best.pt, an .onnx file)"
        )
    if cfg.distill.teacher and not needs.teacher:
        learners = [n for n in LOSSES.names() if loss_needs(n).teacher]
        raise ConfigError(
            f"distill.teacher: set, but loss {cfg.loss.name!r} learns from no teacher; set loss.name: "
            f"{' or '.join(learners)}"
        )
    if needs.teacher and cfg.distill.labels > 0:
        label = cfg.distill.label_loss
        _name(LOSSES, label.name, "distill.label_loss.name")
        LOSSES.check_options(label.name, label.options, "distill.label_loss.options")
        label_needs = loss_needs(label.name)
        if not label_needs.classes or label_needs.teacher:
            raise ConfigError(
                f"distill.label_loss.name: {label.name!r} is not a classifier head; use arcface, cosface, "
                "softmax ... (a pair loss needs P x K batches, which unlabelled distillation does not draw)"
            )


def check_distributed(cfg: Config, strategy: Strategy) -> None:
    """What several processes cannot do (yet), refused before any data is read."""
    if strategy.world_size == 1:
        return
    if loss_needs(cfg.loss.name).teacher:
        raise ConfigError(
            f"loss.name: {cfg.loss.name} learns from a teacher, which trains in one process only (the teacher's "
            "targets are not gathered across ranks); run it without torchrun"
        )
    batch = cfg.sampler.p * cfg.sampler.k
    if batch % strategy.world_size:
        raise ConfigError(
            f"sampler: a global batch of p x k = {batch} images cannot be split into {strategy.world_size} equal "
            f"shares; choose p x k divisible by the number of processes"
        )
