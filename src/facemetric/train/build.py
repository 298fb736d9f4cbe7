"""From a config to a training run: the registries turn names into objects, the trainer receives them.

:func:`check_config` checks every name (model, loss, miner, optimizer, scheduler, callbacks)
against its registry and every option against its builder's signature, before any data is read;
:func:`build_run` builds the objects (in a fixed order, so a seed gives the same run), the
callbacks a config implies, and a :class:`Run` around the :class:`~facemetric.train.trainer.Trainer`;
:func:`train` is the one-call entry point (``facemetric train``).
"""

from __future__ import annotations

import dataclasses
import logging
import platform
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from facemetric.core.atomic import write_json
from facemetric.core.checkpoint import CheckpointError, load_checkpoint, model_fingerprint
from facemetric.core.config import Config, MinerStage
from facemetric.core.errors import ConfigError, UnknownNameError
from facemetric.core.mining import PairMiner, TripletMiner
from facemetric.core.version import VERSION
from facemetric.data.dataset import DatasetSplit, load_dataset
from facemetric.data.loader import BatchSource
from facemetric.data.sampler import PKSampler
from facemetric.losses import LOSSES, build_loss, loss_needs_classes, loss_takes_miner
from facemetric.losses.distill import DistillLoss
from facemetric.losses.margin import ClassifierLoss
from facemetric.losses.partial_fc import PartialFC, seeded_centres, shard_range, supports_partial_fc
from facemetric.miners import MINERS, build_miner
from facemetric.models import build_embedding_model
from facemetric.models.budget import check_budget
from facemetric.models.registry import MODELS
from facemetric.optim import OPTIMIZERS, SCHEDULERS, build_optimizer, build_scheduler
from facemetric.train.callbacks import CALLBACKS, Callback, build_callback
from facemetric.train.callbacks.checkpoint import CheckpointCallback
from facemetric.train.callbacks.classification import ClassificationCallback
from facemetric.train.callbacks.collapse import CollapseCallback
from facemetric.train.callbacks.distill import DistillCallback, OnlineDistillCallback
from facemetric.train.callbacks.metrics_log import MetricsLogCallback
from facemetric.train.callbacks.progress import ProgressCallback
from facemetric.train.callbacks.schedules import LossScheduleCallback, MinerScheduleCallback
from facemetric.train.callbacks.tracking import TrackerCallback, check_installed
from facemetric.train.callbacks.validation import ValidationCallback
from facemetric.train.distributed import Strategy, local_device, strategy_from_env
from facemetric.train.precision import use_bf16
from facemetric.train.start import freeze, initialise, param_groups, training_spec
from facemetric.train.teacher import center_table, teacher_mean, teacher_table
from facemetric.train.trainer import Trainer

log = logging.getLogger("facemetric")

MINING_OPTIONS = ("mining", "semi_hard", "fallback", "epsilon")  # loss options of facemetric 0.1, now miners'


def _name(registry: Any, name: str, key: str) -> None:
    try:
        registry.get(name)
    except UnknownNameError as exc:
        raise ConfigError(f"{key}: {exc}") from None


def _check_miner(cfg: Config, stage: MinerStage, where: str) -> None:
    _name(MINERS, stage.name, f"{where}.name")
    MINERS.check_options(stage.name, stage.options, f"{where}.options")
    kind = MINERS.get(stage.name)
    needs = TripletMiner if cfg.loss.name == "triplet" else PairMiner
    if not (isinstance(kind, type) and issubclass(kind, needs)):
        raise ConfigError(
            f"{where}.name: {stage.name!r} does not mine {'triplets' if needs is TripletMiner else 'pairs'}"
            f", which loss {cfg.loss.name!r} learns from; available: "
            f"{', '.join(n for n in MINERS.names() if issubclass(MINERS.get(n), needs))}"
        )


def check_config(cfg: Config) -> None:
    """Refuse, with the key's name, any component a registry does not know or options its builder does not take."""
    _name(MODELS, cfg.model.name, "model.name")
    MODELS.check_options(cfg.model.name, cfg.model.options, "model.options")
    if cfg.model.pretrained == "dlib" and cfg.model.name != "dlib_resnet":
        raise ConfigError(f"model.pretrained: dlib's weights are for model.name dlib_resnet, not {cfg.model.name}")
    if cfg.model.init and not Path(cfg.model.init).expanduser().is_file():
        raise ConfigError(f"model.init: {cfg.model.init} does not exist; give a run's best.pt or last.pt")
    _name(LOSSES, cfg.loss.name, "loss.name")
    try:
        LOSSES.check_options(cfg.loss.name, cfg.loss.options, "loss.options")
    except ConfigError as exc:
        moved = [k for k in MINING_OPTIONS if k in cfg.loss.options]
        if moved:
            raise ConfigError(
                f"{exc} ({', '.join(moved)}: which pairs or triplets a loss learns from is now the "
                "miner section, e.g. miner: {name: semi_hard, options: {fallback: hardest}})"
            ) from None
        raise
    for epoch, options in cfg.loss.schedule.items():
        LOSSES.check_options(cfg.loss.name, options, f"loss.schedule.{epoch}")
    stages = [(f"miner.schedule.{e}", s) for e, s in cfg.miner.schedule.items()]
    first = _first_miner(cfg)
    if first is not None:
        stages.insert(0, ("miner", first))
    elif cfg.miner.options:
        raise ConfigError("miner.options: given without miner.name; name the miner they are for")
    if stages and not loss_takes_miner(cfg.loss.name):
        raise ConfigError(
            f"miner: loss {cfg.loss.name!r} does not learn from mined pairs (it is a classifier "
            "head); remove the miner section or choose a pair loss"
        )
    for where, stage in stages:
        _check_miner(cfg, stage, where)
    _check_distill(cfg)
    _name(OPTIMIZERS, cfg.optim.name, "optim.name")
    OPTIMIZERS.check_options(cfg.optim.name, cfg.optim.options, "optim.options")
    _name(SCHEDULERS, cfg.scheduler.name, "scheduler.name")
    SCHEDULERS.check_options(cfg.scheduler.name, cfg.scheduler.options, "scheduler.options")
    for k, callback in enumerate(cfg.train.callbacks):
        _name(CALLBACKS, callback.name, f"train.callbacks.{k}.name")
        CALLBACKS.check_options(callback.name, callback.options, f"train.callbacks.{k}.options")
    for logger in cfg.train.loggers:
        if logger != "tensorboard":
            check_installed(logger)


def _check_distill(cfg: Config) -> None:
    """``loss.name: distill`` and ``distill.teacher`` go together; the label loss is a classifier head."""
    if cfg.loss.name == "distill" and not cfg.distill.teacher:
        raise ConfigError(
            "loss.name: distill learns a teacher's embeddings; name the teacher in distill.teacher "
            "(dlib-resnet, a run's best.pt, an .onnx file)"
        )
    if cfg.distill.teacher and cfg.loss.name != "distill":
        raise ConfigError(f"distill.teacher: set, but loss.name is {cfg.loss.name!r}; set loss.name: distill")
    if cfg.loss.name == "distill" and cfg.distill.labels > 0:
        label = cfg.distill.label_loss
        _name(LOSSES, label.name, "distill.label_loss.name")
        LOSSES.check_options(label.name, label.options, "distill.label_loss.options")
        if not loss_needs_classes(label.name) or label.name == "distill":
            raise ConfigError(
                f"distill.label_loss.name: {label.name!r} is not a classifier head; use arcface, cosface, "
                "softmax ... (a pair loss needs P x K batches, which unlabelled distillation does not draw)"
            )


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"train.device: {name!r} requested but CUDA is not available; use train.device=cpu")
    return torch.device(name)


def build_loss_from(cfg: Config, num_classes: int, miner: Any = None) -> nn.Module:
    """The loss of ``cfg`` (classifier heads get the class count, pair losses the miner)."""
    extra: dict[str, Any] = {}
    if loss_needs_classes(cfg.loss.name):
        extra.update(num_classes=num_classes, embedding_dim=cfg.model.embedding_dim)
    if miner is not None:
        extra["miner"] = miner
    loss = build_loss(cfg.loss.name, **cfg.loss.options, **extra)
    if cfg.loss.name == "distill" and cfg.distill.labels > 0:
        label = cfg.distill.label_loss
        head = build_loss(label.name, **label.options, num_classes=num_classes, embedding_dim=cfg.model.embedding_dim)
        assert isinstance(loss, DistillLoss)
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


def _distill_callback(cfg: Config, data: DatasetSplit) -> DistillCallback | OnlineDistillCallback:
    """The teacher's table over the training photos (computed once, cached), or the teacher itself
    (``distill.online``), as the callback that feeds each batch's targets to the distill loss."""
    from facemetric.embedders import load_embedder

    assert cfg.distill.teacher  # check_config
    teacher = load_embedder(cfg.distill.teacher)
    if teacher.dim != cfg.model.embedding_dim:
        raise ConfigError(
            f"model.embedding_dim: {cfg.model.embedding_dim}, but the teacher {teacher.name} gives {teacher.dim}-d "
            f"embeddings; set model.embedding_dim={teacher.dim}"
        )
    if cfg.distill.online:
        theirs, ours = (teacher.spec.align, teacher.spec.crop), (data.spec.align, data.spec.crop)
        if theirs != ours:
            raise ConfigError(
                f"distill.online: the teacher {teacher.name} reads crops cut by {theirs[0]!r} (crop {theirs[1]}), "
                f"but data.source holds crops cut by {ours[0]!r} (crop {ours[1]}); "
                "prepare the photos the teacher's way (for dlib-resnet: "
                "facemetric prepare PHOTOS OUT --align dlib-chip --size 112) or set distill.online=false"
            )
        mean = teacher_mean(teacher, data.train.images) if cfg.distill.center else None
        return OnlineDistillCallback(teacher, data.spec.normalization, mean)
    table = teacher_table(teacher, list(data.train.paths), cfg.distill.mirror, cfg.distill.workers, cfg.train.progress)
    return DistillCallback(center_table(table) if cfg.distill.center else table)


def _first_miner(cfg: Config) -> MinerStage | None:
    """The miner a run starts with (None: the loss's own default)."""
    return MinerStage(name=cfg.miner.name, options=cfg.miner.options) if cfg.miner.name else None


def _miner(stage: MinerStage) -> Any:
    return build_miner(stage.name, **stage.options)


@dataclass
class RunResult:
    out_dir: Path
    epochs: int
    global_step: int
    val: dict[str, Any] | None  # last validation report
    best_accuracy: float | None


class Run:
    """A training run built from a config: its :class:`Trainer`, data, and validation."""

    def __init__(self, cfg: Config, trainer: Trainer, data: DatasetSplit, out: Path) -> None:
        self.cfg, self.trainer, self.data, self.out = cfg, trainer, data, out
        self.validation: ValidationCallback | None = trainer.callback(ValidationCallback)

    @property
    def model(self) -> nn.Module:
        return self.trainer.model

    def fit(self) -> RunResult:
        """Train to ``train.epochs``, validating and checkpointing along the way; writes ``summary.json``."""
        strategy = self.trainer.strategy
        try:
            history = self.trainer.fit()
        except RuntimeError as exc:
            explained = strategy.explain(exc, str(self.out))
            if explained is exc:
                raise
            raise explained from exc
        finally:
            strategy.close()
        classification = self.trainer.callback(ClassificationCallback)
        val = self.validation.last if self.validation else (classification.last if classification else None)
        best = self.validation.best_accuracy if self.validation else None
        if not self.trainer.strategy.is_main:
            return RunResult(self.out, self.trainer.epoch, self.trainer.global_step, None, None)
        write_json(
            self.out / "summary.json",
            {
                "epochs": self.trainer.epoch,
                "global_step": self.trainer.global_step,
                "best_accuracy": best,
                "val": val,
                "data_wait_fraction": [h["data_wait_fraction"] for h in history],
            },
        )
        return RunResult(self.out, self.trainer.epoch, self.trainer.global_step, val, best)

    def validate_untrained(self) -> dict[str, Any]:
        """Held-out verification of the network as the run starts (freshly initialised and seeded by
        ``train.seed``, or the ``model.pretrained`` / ``model.init`` weights): the baseline that shows
        how much training adds. Leaves the RNG state alone."""
        if self.validation is None:
            raise ConfigError("data.val_identities: no held-out identities, so there is nothing to validate on")
        with torch.random.fork_rng():
            torch.manual_seed(self.cfg.train.seed)
            untrained = build_embedding_model(self.cfg.model, self.data.spec)
            initialise(untrained, self.cfg.model)
            untrained = untrained.to(self.trainer.device)
        return self.validation.evaluate(untrained)


def build_run(
    cfg: Config, data: DatasetSplit | None = None, resume: bool = False, callbacks: Sequence[Callback] = ()
) -> Run:
    """Build everything ``cfg`` describes (``data`` when already loaded) into a :class:`Run`.

    ``callbacks`` are added after those the config implies (validation included, so they can read
    its report) and before the metric log and checkpoints. ``resume`` continues ``<out>/last.pt``.
    """
    check_config(cfg)
    out = Path(cfg.train.out)
    out.mkdir(parents=True, exist_ok=True)
    device = local_device(resolve_device(cfg.train.device))
    strategy = strategy_from_env(cfg.train.distributed, device)
    _check_distributed(cfg, strategy)
    if cfg.train.threads > 0:
        torch.set_num_threads(cfg.train.threads)
    torch.manual_seed(cfg.train.seed)
    if cfg.model.max_params is not None:  # refuse an over-budget model before any data is decoded
        from facemetric.data.dataset import image_spec

        with torch.random.fork_rng():
            check_budget(
                build_embedding_model(cfg.model, data.spec if data else image_spec(cfg.data)),
                cfg.model.max_params,
                cfg.model.name,
            )
    if data is None:
        with strategy.main_first():  # rank 0 decodes (and caches) the photos, the others then read its cache
            data = load_dataset(cfg.data, cfg.train.progress and strategy.is_main, out if strategy.is_main else None)
    data = dataclasses.replace(data, spec=training_spec(cfg, data.spec))
    distill = _distill_callback(cfg, data) if cfg.loss.name == "distill" else None
    sampled = (data.train.labels, cfg.sampler.p, cfg.sampler.k, cfg.sampler.short_policy, cfg.sampler.min_images)
    if distill is not None and cfg.distill.labels == 0:
        # no identities used: every photo is its own "class", drawn once per epoch, P*K per batch
        sampled = (np.arange(len(data.train)), cfg.sampler.p * cfg.sampler.k, 1, "repeat", 1)
    sampler = PKSampler(*sampled, cfg.train.seed, cfg.sampler.batches_per_epoch)
    log.info("sampler: %s", sampler.report.describe(cfg.sampler.k))
    model = build_embedding_model(cfg.model, data.spec)
    initialise(model, cfg.model)
    frozen = freeze(model, cfg.model.freeze)
    if frozen:
        log.info("model.freeze: %d parameter tensors fixed (%s ... %s)", len(frozen), frozen[0], frozen[-1])
    model = model.to(device)
    bf16, why = use_bf16(cfg.train.amp, cfg.model.name, device)
    log.info("precision: %s (%s)", "bf16 autocast" if bf16 else "fp32", why)
    if cfg.train.channels_last:
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch stubs lack memory_format
    first = _first_miner(cfg)
    loss = _loss_for(cfg, len(data.train.identity_names), _miner(first) if first else None, strategy).to(device)
    optimizer = build_optimizer(cfg.optim, param_groups(model, loss, cfg.optim))
    source = BatchSource(
        data.train, sampler, cfg.augment, data.spec.normalization, cfg.train.seed, cfg.data.workers, strategy.share
    )
    scheduler = build_scheduler(
        cfg.scheduler, optimizer, cfg.train.epochs * source.steps_per_epoch, source.steps_per_epoch
    )
    trainer = Trainer(
        model,
        loss,
        optimizer,
        source,
        cfg.train.epochs,
        scheduler,
        ([distill] if distill else []) + _callbacks(cfg, data, out, device, callbacks, strategy.is_main),
        device,
        bf16,
        cfg.train.channels_last,
        strategy,
    )
    if resume:
        _resume(trainer, out / "last.pt", data, device)
    if not strategy.is_main:
        return Run(cfg, trainer, data, out)
    cfg.save(out / "config.yaml")
    write_json(
        out / "environment.json",
        {
            **strategy.describe(),
            "facemetric": VERSION,
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "numpy": np.__version__,
            "platform": platform.platform(),
            "device": str(device),
            "threads": torch.get_num_threads(),
            "command": sys.argv,
        },
    )
    return Run(cfg, trainer, data, out)


def _check_distributed(cfg: Config, strategy: Strategy) -> None:
    """What several processes cannot do (yet), refused before any data is read."""
    if strategy.world_size == 1:
        return
    if cfg.loss.name == "distill":
        raise ConfigError(
            "loss.name: distill trains in one process only (the teacher's targets are not gathered across "
            "ranks); run it without torchrun"
        )
    batch = cfg.sampler.p * cfg.sampler.k
    if batch % strategy.world_size:
        raise ConfigError(
            f"sampler: a global batch of p x k = {batch} images cannot be split into {strategy.world_size} equal "
            f"shares; choose p x k divisible by the number of processes"
        )


def _loss_for(cfg: Config, num_classes: int, miner: Any, strategy: Strategy) -> nn.Module:
    """The loss of ``cfg``; a margin head becomes Partial FC (its centres split over the processes,
    ``loss.sample_rate`` of them used a step) under torchrun or when ``loss.sample_rate`` < 1."""
    if not loss_needs_classes(cfg.loss.name) or (strategy.world_size == 1 and cfg.loss.sample_rate == 1.0):
        return build_loss_from(cfg, num_classes, miner)
    probe = build_loss_from(cfg, 2, miner)
    if not supports_partial_fc(probe):
        if cfg.loss.sample_rate < 1.0:
            raise ConfigError(
                f"loss.sample_rate: Partial FC samples the centres of cosine margin heads and softmax, "
                f"not {cfg.loss.name}; set loss.sample_rate=1.0"
            )
        return build_loss_from(cfg, num_classes, miner)  # replicated on every rank, trained on the global batch
    if num_classes < 2 * strategy.world_size:
        raise ConfigError(f"{num_classes} training identities cannot be split over {strategy.world_size} processes")
    shard = shard_range(num_classes, strategy.rank, strategy.world_size)
    head = build_loss_from(cfg, shard[1], miner)
    assert isinstance(head, ClassifierLoss)  # supports_partial_fc
    with torch.no_grad():  # the same initial centres for any number of processes
        head.weight.copy_(seeded_centres(shard, head.subcenters, cfg.model.embedding_dim, cfg.train.seed))
    return PartialFC(head, num_classes, shard, cfg.loss.sample_rate)


def _callbacks(
    cfg: Config, data: DatasetSplit, out: Path, device: torch.device, extra: Sequence[Callback], main: bool = True
) -> list[Callback]:
    """The callbacks a config implies; only the checkpoint callback (which may gather state) runs on
    every process, the others on rank 0 alone (``main``)."""
    if not main:
        meta = {"config": cfg.to_dict(), "image_spec": data.spec.to_dict(), "identity_names": data.train.identity_names}
        return [CheckpointCallback(out, meta, cfg.train.checkpoint_every_steps)]
    callbacks: list[Callback] = []
    if cfg.monitor.enabled:
        callbacks.append(CollapseCallback(cfg.monitor))
    if cfg.loss.schedule:
        callbacks.append(LossScheduleCallback(cfg.loss.schedule, cfg.loss.name))
    if cfg.miner.schedule:
        callbacks.append(MinerScheduleCallback(_first_miner(cfg), cfg.miner.schedule, _miner))
    if data.val is not None:
        callbacks.append(
            ValidationCallback(
                data.val,
                data.spec.normalization,
                cfg.train.val_every,
                cfg.data.val_pairs,
                cfg.data.split_seed,
                device,
                mirror=cfg.model.mirror,
            )
        )
    if data.dev is not None:
        callbacks.append(
            ClassificationCallback(
                data.dev,
                data.train,
                data.spec.normalization,
                cfg.train.val_every,
                device,
                mirror=cfg.model.mirror,
                seed=cfg.data.split_seed,
            )
        )
    callbacks += [
        build_callback(c.name, f"train.callbacks.{k}", **c.options) for k, c in enumerate(cfg.train.callbacks)
    ]
    callbacks += list(extra)
    meta = {"config": cfg.to_dict(), "image_spec": data.spec.to_dict(), "identity_names": data.train.identity_names}
    callbacks += [
        MetricsLogCallback(out, tensorboard="tensorboard" in cfg.train.loggers),
        CheckpointCallback(out, meta, cfg.train.checkpoint_every_steps),
        *_trackers(cfg, out),  # after the checkpoints: a run's end sends its best.pt
        ProgressCallback(cfg.train.progress),
    ]
    return callbacks


def _trackers(cfg: Config, out: Path) -> list[TrackerCallback]:
    """The external trackers of ``train.loggers`` (TensorBoard is the metric log's own)."""
    trackers: list[TrackerCallback] = []
    for logger in dict.fromkeys(cfg.train.loggers):
        if logger == "mlflow":
            from facemetric.train.callbacks.mlflow_tracker import MlflowTracker

            trackers.append(MlflowTracker(cfg, out))
        elif logger == "wandb":
            from facemetric.train.callbacks.wandb_tracker import WandbTracker

            trackers.append(WandbTracker(cfg, out))
    return trackers


def _resume(trainer: Trainer, path: Path, data: DatasetSplit, device: torch.device) -> None:
    if not path.exists():
        raise CheckpointError(f"--resume: no checkpoint at {path}; start without --resume")
    state = load_checkpoint(path, map_location=device)
    if state["model_fingerprint"] != model_fingerprint(trainer.model):
        raise CheckpointError(f"{path}: was trained with a different model; it cannot resume this config")
    if state["identity_names"] != data.train.identity_names:
        raise CheckpointError(f"{path}: was trained on different identities (data or split changed)")
    if "callbacks" not in state:
        raise CheckpointError(
            f"{path}: written by an older facemetric, which saved no scheduler or callback state; "
            "it can be evaluated and exported, not resumed"
        )
    trainer.load_state_dict(state)
    log.info(
        "resumed from %s at epoch %d, step %d (global step %d)",
        path,
        trainer.epoch + 1,
        trainer.step_in_epoch,
        trainer.global_step,
    )


def train(cfg: Config, resume: bool = False, callbacks: Sequence[Callback] = ()) -> RunResult:
    """Train the model a config describes; the one-call library entry point."""
    return build_run(cfg, resume=resume, callbacks=callbacks).fit()
