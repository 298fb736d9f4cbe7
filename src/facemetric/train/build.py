"""From a config to a training run: the registries turn names into objects, the trainer receives them.

:func:`~facemetric.train.check.check_config` checks every name and option before any data is read;
:func:`build_run` builds the objects in a fixed order, so a seed gives the same run: the model
first (its weights are the first numbers drawn after ``train.seed``, and an over-budget model is
refused before any photo is decoded), then the data, the loss (built by what it declares), the
optimizer, the schedule and the callbacks, and a :class:`~facemetric.train.run.Run` around the
:class:`~facemetric.train.trainer.Trainer`; :func:`train` is the one-call entry point
(``facemetric train``).
"""

from __future__ import annotations

import dataclasses
import logging
import platform
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from facemetric.core.atomic import made_for_good, write_json
from facemetric.core.checkpoint import CheckpointError, load_checkpoint, model_fingerprint
from facemetric.core.config import Config
from facemetric.core.errors import ConfigError
from facemetric.core.version import VERSION
from facemetric.data.dataset import DatasetSplit, load_dataset, source_spec
from facemetric.data.loader import BatchSource
from facemetric.data.sampler import PKSampler
from facemetric.data.sources import DatasetError
from facemetric.losses import loss_needs
from facemetric.models import build_embedding_model
from facemetric.models.budget import check_budget
from facemetric.optim import build_optimizer, build_scheduler
from facemetric.train.build_callbacks import run_callbacks
from facemetric.train.build_loss import loss_for
from facemetric.train.callbacks import Callback
from facemetric.train.callbacks.base import RunContext
from facemetric.train.check import check_config, check_distributed
from facemetric.train.distributed import local_device, strategy_from_env
from facemetric.train.precision import use_bf16
from facemetric.train.run import Run, RunResult
from facemetric.train.trainer import Trainer
from facemetric.train.weights import freeze, initialise, param_groups, training_spec

log = logging.getLogger("facemetric")

__all__ = ["Run", "RunResult", "build_run", "check_config", "resolve_device", "train"]


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"train.device: {name!r} requested but CUDA is not available; use train.device=cpu")
    return torch.device(name)


def _sampler(cfg: Config, data: DatasetSplit, learns_identities: bool) -> PKSampler:
    """P identities x K images a batch; a loss that learns only a teacher's embeddings (no label loss)
    uses no identities: every photo is its own "class", drawn once per epoch, P*K per batch."""
    if learns_identities:
        sampled = (data.train.labels, cfg.sampler.p, cfg.sampler.k, cfg.sampler.short_policy, cfg.sampler.min_images)
    else:
        sampled = (np.arange(len(data.train)), cfg.sampler.p * cfg.sampler.k, 1, "repeat", 1)
    sampler = PKSampler(*sampled, cfg.train.seed, cfg.sampler.batches_per_epoch)
    log.info("sampler: %s", sampler.report.describe(cfg.sampler.k))
    return sampler


def build_run(
    cfg: Config, data: DatasetSplit | None = None, resume: bool = False, callbacks: Sequence[Callback] = ()
) -> Run:
    """Build everything ``cfg`` describes (``data`` when already loaded) into a :class:`Run`.

    ``callbacks`` are added after those the config implies (validation included, so they can read
    its report) and before the metric log and checkpoints. ``resume`` continues ``<out>/last.pt``.
    """
    check_config(cfg)
    out = Path(cfg.train.out)
    with made_for_good(out):  # a run refused while it is built leaves no empty run folder behind
        return _build_run(cfg, out, data, resume, callbacks)


def _build_run(cfg: Config, out: Path, data: DatasetSplit | None, resume: bool, callbacks: Sequence[Callback]) -> Run:
    device = local_device(resolve_device(cfg.train.device))
    strategy = strategy_from_env(cfg.train.distributed, device)
    check_distributed(cfg, strategy)
    if cfg.train.threads > 0:
        torch.set_num_threads(cfg.train.threads)
    torch.manual_seed(cfg.train.seed)
    data_spec = data.spec if data is not None else source_spec(cfg.data)
    spec = training_spec(cfg, data_spec)  # pretrained weights refuse crops cut another way, before anything is built
    model = build_embedding_model(cfg.model, spec)
    check_budget(model, cfg.model.max_params, cfg.model.name)  # before any photo is decoded
    if data is None:
        with strategy.main_first():  # rank 0 decodes (and caches) the photos, the others then read its cache
            data = load_dataset(cfg.data, cfg.train.progress and strategy.is_main, out if strategy.is_main else None)
        if data.spec != data_spec:
            raise DatasetError(f"{cfg.data.source}: its crops changed while the run was built; start it again")
    data = dataclasses.replace(data, spec=spec)
    needs = loss_needs(cfg.loss.name)
    sampler = _sampler(cfg, data, learns_identities=not needs.teacher or cfg.distill.labels > 0)
    initialise(model, cfg.model)
    frozen = freeze(model, cfg.model.freeze)
    model = model.to(device)
    bf16, why = use_bf16(cfg.train.amp, cfg.model.name, device)
    log.info("precision: %s (%s)", "bf16 autocast" if bf16 else "fp32", why)
    if cfg.train.channels_last:
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch stubs lack memory_format
    loss = loss_for(cfg, len(data.train.identity_names), strategy).to(device)
    optimizer = build_optimizer(cfg.optim, param_groups(model, loss, cfg.optim))
    source = BatchSource(
        data.train, sampler, cfg.augment, data.spec.normalization, cfg.train.seed, cfg.data.workers, strategy.share
    )
    scheduler = build_scheduler(
        cfg.scheduler, optimizer, cfg.train.epochs * source.steps_per_epoch, source.steps_per_epoch
    )
    context = RunContext(cfg, data, out, device)
    trainer = Trainer(
        model,
        loss,
        optimizer,
        source,
        cfg.train.epochs,
        scheduler,
        run_callbacks(context, needs, callbacks, strategy.is_main),
        device,
        bf16,
        cfg.train.channels_last,
        strategy,
        frozen,
    )
    if resume:
        _resume(trainer, out / "last.pt", data, device)
    if strategy.is_main:
        _write_run_files(cfg, out, strategy.describe(), device)
    return Run(cfg, trainer, data, out)


def _write_run_files(cfg: Config, out: Path, strategy: dict, device: torch.device) -> None:
    """The resolved config and the environment, beside the run's checkpoints."""
    cfg.save(out / "config.yaml")
    write_json(
        out / "environment.json",
        {
            **strategy,
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


def _resume(trainer: Trainer, path: Path, data: DatasetSplit, device: torch.device) -> None:
    if not path.exists():
        raise CheckpointError(f"--resume: no checkpoint at {path}; start without --resume")
    state = load_checkpoint(path, map_location=device)
    if state["model_fingerprint"] != model_fingerprint(trainer.model):
        raise CheckpointError(f"{path}: was trained with a different model; it cannot resume this config")
    if state["identity_names"] != data.train.identity_names:
        raise CheckpointError(f"{path}: was trained on different identities (data or split changed)")
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
