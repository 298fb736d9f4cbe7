"""Progress: a bar per epoch (loss and learning rate as it goes), then one line per epoch."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from facemetric.train.callbacks.base import Callback, RunContext, StepOutput
from facemetric.train.callbacks.registry import register_callback

if TYPE_CHECKING:
    from facemetric.train.trainer import Trainer

log = logging.getLogger("facemetric")


@register_callback("progress")
class ProgressCallback(Callback):
    """A tqdm bar during each epoch (``enabled``), and an epoch summary line: printed under the bar,
    or logged when there is no bar."""

    implied_by = "train.progress"

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.bar: tqdm | None = None

    @classmethod
    def from_run(cls, run: RunContext) -> ProgressCallback:
        return cls(run.cfg.train.progress)

    def on_epoch_start(self, trainer: Trainer) -> None:
        self.bar = tqdm(
            total=trainer.steps_per_epoch,
            initial=trainer.step_in_epoch,
            desc=f"epoch {trainer.epoch + 1}/{trainer.epochs}",
            disable=None if self.enabled else True,
            leave=False,
            unit="batch",
        )

    def on_batch_end(self, trainer: Trainer, output: StepOutput) -> None:
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{output.loss:.4f}", lr=f"{output.lr:.3g}")

    def _close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def on_epoch_end(self, trainer: Trainer, logs: dict[str, Any]) -> None:
        self._close()
        message = f"epoch {trainer.epoch}: loss {logs['loss']:.4f}"
        report = trainer.metrics.get("val")
        if report is not None and "accuracy" in report:
            message += f", val accuracy {report['accuracy']:.4f}, EER {report['eer']:.4f}"
        if report is not None and "classify_top1" in report:
            message += f", dev top-1 {report['classify_top1']:.4f}, top-5 {report['classify_top5']:.4f}"
        (tqdm.write if self.enabled else log.info)(message)

    def on_exception(self, trainer: Trainer, exc: BaseException) -> None:
        self._close()
