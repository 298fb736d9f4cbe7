"""Schedules that change the loss's settings or swap its miner at epoch boundaries.

``loss.schedule: {N: {option: value}}`` sets the loss's options from epoch N (1-based) on, the
entries reached accumulating (e.g. a margin warm-up). The loss object is kept, with its class
weights, so the optimizer goes on updating the same parameters; only settings the loss reads at
every step (margins, scales, temperatures) can change. ``miner.schedule: {N: {name, options}}``
swaps the miner from epoch N on: FaceNet's recipe is semi-hard mining, then batch-hard.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from facemetric.core.config import MinerStage
from facemetric.core.errors import ConfigError
from facemetric.miners import build_miner
from facemetric.train.callbacks.base import Callback, RunContext
from facemetric.train.callbacks.registry import register_callback

if TYPE_CHECKING:
    from facemetric.train.trainer import Trainer

log = logging.getLogger("facemetric")
STRUCTURAL = ("num_classes", "embedding_dim", "subcenters", "miner")  # shape the loss's parameters: fixed


def build_stage(stage: MinerStage) -> Any:
    """The miner of one ``miner`` / ``miner.schedule`` entry."""
    return build_miner(stage.name, **stage.options)


@register_callback("loss_schedule")
class LossScheduleCallback(Callback):
    """Sets the loss's options named by ``schedule`` at the start of each epoch."""

    implied_by = "loss.schedule"

    def __init__(self, schedule: dict[int, dict[str, Any]], loss_name: str = "loss") -> None:
        self.schedule, self.loss_name = schedule, loss_name
        for start, options in schedule.items():
            fixed = sorted(set(options) & set(STRUCTURAL))
            if fixed:
                raise ConfigError(
                    f"loss.schedule.{start}: {', '.join(fixed)} cannot change during training "
                    "(they shape the loss's parameters)"
                )

    @classmethod
    def from_run(cls, run: RunContext) -> LossScheduleCallback | None:
        loss = run.cfg.loss
        return cls(loss.schedule, loss.name) if loss.schedule else None

    def options_at(self, epoch: int) -> dict[str, Any]:
        """Every option set by the entries reached at 0-based ``epoch``."""
        options: dict[str, Any] = {}
        for start in sorted(self.schedule):
            if epoch + 1 >= start:
                options.update(self.schedule[start])
        return options

    def on_epoch_start(self, trainer: Trainer) -> None:
        changed = {k: v for k, v in self.options_at(trainer.epoch).items() if getattr(trainer.loss, k) != v}
        for key, value in changed.items():
            setattr(trainer.loss, key, value)
        if changed:
            log.info("epoch %d: loss %s now runs with %s", trainer.epoch + 1, self.loss_name, changed)


@register_callback("miner_schedule")
class MinerScheduleCallback(Callback):
    """Gives the loss the miner of the latest ``stages`` entry reached (``first`` before any)."""

    implied_by = "miner.schedule"

    def __init__(
        self, first: MinerStage | None, stages: dict[int, MinerStage], build: Callable[[MinerStage], Any]
    ) -> None:
        self.first, self.stages, self.build = first, stages, build
        self.current: MinerStage | None = first

    @classmethod
    def from_run(cls, run: RunContext) -> MinerScheduleCallback | None:
        miner = run.cfg.miner
        return cls(miner.first(), miner.schedule, build_stage) if miner.schedule else None

    def stage_at(self, epoch: int) -> MinerStage | None:
        reached = [start for start in self.stages if epoch + 1 >= start]
        return self.stages[max(reached)] if reached else self.first

    def on_epoch_start(self, trainer: Trainer) -> None:
        stage = self.stage_at(trainer.epoch)
        if stage is None or stage == self.current:
            return
        trainer.loss.miner = self.build(stage)
        self.current = stage
        log.info("epoch %d: the loss now mines with %s %s", trainer.epoch + 1, stage.name, stage.options or "")
