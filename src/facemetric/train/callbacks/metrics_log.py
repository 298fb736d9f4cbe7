"""Run logging: CSV and JSON-lines files per kind of record, and TensorBoard scalars."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facemetric.train.callbacks.base import Callback, RunContext, StepOutput
from facemetric.train.callbacks.registry import register_callback

if TYPE_CHECKING:
    from facemetric.train.trainer import Trainer


class RunLogger:
    """Appends records to ``<out>/<kind>.csv`` and ``<out>/metrics.jsonl``; mirrors numbers to TensorBoard.

    Appending (never truncating) keeps the history of a resumed run in one place.
    """

    def __init__(self, out_dir: str | Path, tensorboard: bool = True) -> None:
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.out_dir / "tensorboard"))

    def log(self, kind: str, step: int, values: dict[str, Any]) -> None:
        """Record ``values`` (flat, numbers or strings) of ``kind`` (e.g. train, val) at ``step``."""
        row = {"step": step, "time": round(time.time(), 3), **values}
        with open(self.out_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps({"kind": kind, **row}) + "\n")
        csv_path = self.out_dir / f"{kind}.csv"
        new = not csv_path.exists()
        with open(csv_path, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(row), extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow(row)
        if self._writer is not None:
            for key, value in values.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    self._writer.add_scalar(f"{kind}/{key}", value, step)

    def scalar(self, tag: str, value: float, step: int) -> None:
        """TensorBoard-only scalar (per-step curves that would bloat the CSV)."""
        if self._writer is not None:
            self._writer.add_scalar(tag, value, step)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


@register_callback("metrics_log")
class MetricsLogCallback(Callback):
    """Writes each epoch's record (``train.csv``) and validation report (``val.csv``) to the run
    folder, both also to ``metrics.jsonl`` and TensorBoard, and the loss of every step to TensorBoard."""

    implied_by = "train.out"

    def __init__(self, out_dir: str | Path, tensorboard: bool = True) -> None:
        self.logger = RunLogger(out_dir, tensorboard)

    @classmethod
    def from_run(cls, run: RunContext) -> MetricsLogCallback:
        return cls(run.out, tensorboard="tensorboard" in run.cfg.train.loggers)

    def on_batch_end(self, trainer: Trainer, output: StepOutput) -> None:
        self.logger.scalar("train/step_loss", output.loss, output.step + 1)

    def on_epoch_end(self, trainer: Trainer, logs: dict[str, Any]) -> None:
        self.logger.log("train", trainer.global_step, logs)
        report = trainer.metrics.get("val")
        if report is not None:
            flat = {k: v for k, v in report.items() if isinstance(v, (int, float))}
            flat.update({f"tar@far={k}": v for k, v in report.get("tar_at_far", {}).items()})
            self.logger.log("val", trainer.global_step, {"epoch": trainer.epoch, **flat})

    def on_fit_end(self, trainer: Trainer) -> None:
        self.logger.close()

    def on_exception(self, trainer: Trainer, exc: BaseException) -> None:
        self.logger.close()
