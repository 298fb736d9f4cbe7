"""A built training run: the :class:`~facemetric.train.trainer.Trainer`, its data and validation, and what
:meth:`Run.fit` leaves (``summary.json``, a :class:`RunResult`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from facemetric.core.atomic import write_json
from facemetric.core.config import Config
from facemetric.core.errors import ConfigError, FacemetricError
from facemetric.data.dataset import DatasetSplit
from facemetric.train.callbacks.classification import ClassificationCallback, ClassificationReport
from facemetric.train.callbacks.validation import HeldOutVerification, ValidationCallback
from facemetric.train.trainer import Trainer


@dataclass(frozen=True)
class ValidationReport:
    """A run's last validation: verification of its held-out people (``data.val_identities``) and / or the
    classification of its training people's other photos (``data.val_images``, ``data.dev_source``)."""

    verification: HeldOutVerification | None
    classification: ClassificationReport | None

    def summary(self) -> dict[str, Any]:
        """The flat record ``summary.json`` keeps as ``"val"`` and ``facemetric train`` prints."""
        parts = (self.verification, self.classification)
        return {k: v for part in parts if part is not None for k, v in part.model_dump().items()}


@dataclass
class RunResult:
    out_dir: Path
    epochs: int
    global_step: int
    val: ValidationReport | None  # the last validation (None: the run held nothing out)
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
            self.trainer.release_step_wrappers()
            strategy.close()
        classification = self.trainer.callback(ClassificationCallback)
        verified = self.validation.last if self.validation else None
        classified = classification.last if classification else None
        val = ValidationReport(verified, classified) if verified or classified else None
        best = self.validation.best_accuracy if self.validation else None
        if not self.trainer.strategy.is_main:
            return RunResult(self.out, self.trainer.epoch, self.trainer.global_step, None, None)
        write_json(
            self.out / "summary.json",
            {
                "epochs": self.trainer.epoch,
                "global_step": self.trainer.global_step,
                "best_accuracy": best,
                "val": val.summary() if val else None,
                "data_wait_fraction": [h["data_wait_fraction"] for h in history],
            },
        )
        return RunResult(self.out, self.trainer.epoch, self.trainer.global_step, val, best)

    def validate_untrained(self) -> HeldOutVerification:
        """Held-out verification of the network as the run starts (freshly initialised from ``train.seed``,
        or the ``model.pretrained`` / ``model.init`` weights): the baseline that shows how much training
        adds. Call it before :meth:`fit`; it leaves the weights and the random state alone."""
        if self.validation is None:
            raise ConfigError("data.val_identities: no held-out identities, so there is nothing to validate on")
        if self.trainer.global_step:
            raise FacemetricError(
                f"validate_untrained: the run has trained {self.trainer.global_step} steps already; "
                "call it before fit() (or on a run built without --resume)"
            )
        with torch.random.fork_rng():
            return self.validation.evaluate(self.trainer.model)
