"""The callback interface of the training loop: everything a run does besides the step itself.

Validation, checkpoints, metric logs, the progress bar, the collapse monitor, loss and miner
schedules, trackers, the distillation teacher and early stopping are callbacks (this package), each
registered by name; a new training behaviour (pruning a hyper-parameter search, EMA weights) is a
new callback, not an edit of the loop. Hooks run in list order; each receives the
:class:`~facemetric.train.trainer.Trainer`.

A callback is added to a run in one of two ways: named in ``train.callbacks`` with its options
(early stopping, your own), or implied by another part of the config (``implied_by``: validation by
held-out people, the trackers by ``train.loggers`` ...), in which case :meth:`Callback.from_run`
builds it from the run's config and data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from facemetric.core.config import Config
from facemetric.data.dataset import DatasetSplit

if TYPE_CHECKING:  # the trainer imports this module: annotations only
    from facemetric.data.loader import TrainBatch
    from facemetric.train.trainer import Trainer


@dataclass
class StepOutput:
    """One finished optimisation step: its global index (0-based), loss, learning rate, and the batch's
    embeddings (detached) and labels."""

    step: int
    loss: float
    lr: float
    embeddings: torch.Tensor
    labels: torch.Tensor


@dataclass(frozen=True)
class RunContext:
    """What the callbacks a config implies are built from (:meth:`Callback.from_run`): the config, the
    loaded data (its spec as training reads it), the run folder and the training device."""

    cfg: Config
    data: DatasetSplit
    out: Path
    device: torch.device


class Callback:
    """Override the hooks you need; all default to doing nothing.

    ``logs`` in :meth:`on_epoch_end` is the epoch's record (``epoch``, ``loss``, ``lr``, ``seconds``,
    ``data_wait_fraction``): callbacks may add numbers to it before the metric logger writes it.
    Results other callbacks may read (the last validation report) go in ``trainer.metrics``.
    A callback with state that must survive a resume returns it from :meth:`state_dict`.
    """

    # the config key that adds this callback to a run (it then implements from_run); None: a callback
    # named, with its options, in train.callbacks
    implied_by: ClassVar[str | None] = None

    @classmethod
    def from_run(cls, run: RunContext) -> Callback | None:
        """This callback as ``run``'s config calls for it, or None where it does not (validation without
        held-out people, say). Implemented by the callbacks that declare :attr:`implied_by`."""
        raise NotImplementedError(f"{cls.__name__} is not implied by a config; name it in train.callbacks")

    def on_fit_start(self, trainer: Trainer) -> None:
        """Before the first step of :meth:`Trainer.fit` (after a resume, at the resumed step)."""

    def on_epoch_start(self, trainer: Trainer) -> None:
        """Before the epoch's first (or resumed) step; ``trainer.epoch`` is 0-based."""

    def on_batch_start(self, trainer: Trainer, batch: TrainBatch) -> None:
        """Before each optimisation step, with the batch it will take (e.g. to look up a teacher's targets)."""

    def on_batch_end(self, trainer: Trainer, output: StepOutput) -> None:
        """After each optimisation step (``trainer.global_step`` already counts it)."""

    def on_epoch_end(self, trainer: Trainer, logs: dict[str, Any]) -> None:
        """After the epoch's last step; ``trainer.epoch`` now counts it (1-based)."""

    def on_fit_end(self, trainer: Trainer) -> None:
        """After the last epoch (or an early stop)."""

    def on_exception(self, trainer: Trainer, exc: BaseException) -> None:
        """When training stops on an exception (Ctrl-C included), before it propagates."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
