"""Early stopping: end the run when validation accuracy has not improved for a while."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from facemetric.train.callbacks.base import Callback
from facemetric.train.callbacks.registry import register_callback

if TYPE_CHECKING:
    from facemetric.train.trainer import Trainer

log = logging.getLogger("facemetric")


@register_callback("early_stopping")
class EarlyStopping(Callback):
    """Stops after ``patience`` validations in a row without the held-out ``metric`` improving by more
    than ``min_delta`` (``train.callbacks: [{name: early_stopping, options: {patience: 3}}]``). The best
    checkpoint stays in ``best.pt``.

    Args:
        patience: validations without improvement before stopping (3).
        min_delta: the smallest change that counts as an improvement (0.0).
        metric: a number of the validation report: accuracy (default), auc (higher is better), eer
            (lower is better), or classify_top1 / classify_top5 (dev classification, higher is better).
    """

    def __init__(self, patience: int = 3, min_delta: float = 0.0, metric: str = "accuracy") -> None:
        if patience < 1 or min_delta < 0:
            raise ValueError(f"patience must be >= 1 and min_delta >= 0, got {patience} and {min_delta}")
        if metric not in ("accuracy", "auc", "eer", "classify_top1", "classify_top5"):
            raise ValueError(f"metric must be accuracy, auc, eer, classify_top1 or classify_top5, got {metric!r}")
        self.patience, self.min_delta, self.metric = patience, min_delta, metric
        self.best: float | None = None
        self.waited = 0

    def on_epoch_end(self, trainer: Trainer, logs: dict[str, Any]) -> None:
        report = trainer.metrics.get("val")
        if report is None or self.metric not in report:
            return
        value = float(report[self.metric]) * (-1.0 if self.metric == "eer" else 1.0)
        if self.best is None or value > self.best + self.min_delta:
            self.best, self.waited = value, 0
            return
        self.waited += 1
        if self.waited >= self.patience:
            trainer.should_stop = True
            log.info(
                "early stop after epoch %d: validation %s has not improved for %d validations",
                trainer.epoch,
                self.metric,
                self.waited,
            )

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "waited": self.waited}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.waited = state["best"], state["waited"]
