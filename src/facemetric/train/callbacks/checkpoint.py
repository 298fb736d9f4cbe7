"""Checkpoints of a run: ``last.pt`` after every epoch (and every N steps), ``best.pt`` when validation
improved, and ``last.pt`` again when the run is interrupted or stops on collapse."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facemetric.core.checkpoint import model_fingerprint, save_checkpoint
from facemetric.core.version import VERSION
from facemetric.train.callbacks.base import Callback, RunContext, StepOutput
from facemetric.train.callbacks.collapse import CollapseError
from facemetric.train.callbacks.registry import register_callback

if TYPE_CHECKING:
    from facemetric.train.trainer import Trainer

log = logging.getLogger("facemetric")


@register_callback("checkpoint")
class CheckpointCallback(Callback):
    """Saves the trainer's state plus ``meta`` (what rebuilds the model: the config, the image spec,
    the identities trained on) into ``out``. ``every_steps`` > 0 also saves mid-epoch.

    Under torchrun every rank runs this callback (a Partial FC run gathers each rank's shard into
    the state) and only rank 0 writes; each file is written atomically, so a rank killed at any
    moment leaves the previous checkpoint whole."""

    implied_by = "train.out"

    def __init__(self, out: str | Path, meta: dict[str, Any], every_steps: int = 0) -> None:
        self.out, self.meta, self.every_steps = Path(out), meta, every_steps

    @classmethod
    def from_run(cls, run: RunContext) -> CheckpointCallback:
        """Checkpoints in the run folder, with what rebuilds the model: the config, the image spec as
        training read it and the identities trained on."""
        data = run.data
        meta = {
            "config": run.cfg.to_dict(),
            "image_spec": data.spec.to_dict(),
            "identity_names": data.train.identity_names,
        }
        return cls(run.out, meta, run.cfg.train.checkpoint_every_steps)

    def save(self, trainer: Trainer, names: tuple[str, ...] = ("last.pt",)) -> Path:
        state = trainer.state_dict()  # collective when the loss is split over ranks: every rank calls it
        path = self.out / names[0]
        if not trainer.strategy.is_main:
            return path
        for name in names:
            save_checkpoint(
                self.out / name,
                {
                    **state,
                    **self.meta,
                    "model_fingerprint": model_fingerprint(trainer.model),
                    "facemetric_version": VERSION,
                },
            )
        # mid-epoch checkpoints are announced (a watcher may act on them); epoch-end ones are routine
        level = logging.INFO if trainer.step_in_epoch else logging.DEBUG
        log.log(
            level,
            "checkpoint %s: epoch %d step %d global_step %d",
            path,
            trainer.epoch,
            trainer.step_in_epoch,
            trainer.global_step,
        )
        return path

    def on_batch_end(self, trainer: Trainer, output: StepOutput) -> None:
        every = self.every_steps
        if every and trainer.global_step % every == 0 and trainer.step_in_epoch < trainer.steps_per_epoch:
            self.save(trainer)

    def on_epoch_end(self, trainer: Trainer, logs: dict[str, Any]) -> None:
        self.save(trainer, ("last.pt", "best.pt") if trainer.metrics.get("val_improved") else ("last.pt",))

    def on_exception(self, trainer: Trainer, exc: BaseException) -> None:
        if trainer.strategy.sharded(trainer.loss):  # gathering the shards needs every rank, some may be gone
            log.warning("stopped: the last periodic checkpoint in %s is the one to --resume from", self.out)
            return
        if isinstance(exc, KeyboardInterrupt):
            self.save(trainer)
            log.warning("interrupted: checkpoint saved to %s; continue with --resume", self.out / "last.pt")
        elif isinstance(exc, CollapseError):
            self.save(trainer)
            log.error("stopped on collapse; the last state is in %s", self.out / "last.pt")
