"""The distillation teacher as a callback: each batch's targets looked up in the cached teacher table."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from facemetric.train.callbacks.base import Callback

if TYPE_CHECKING:
    from facemetric.data.loader import TrainBatch
    from facemetric.train.trainer import Trainer


class DistillCallback(Callback):
    """Before each step, sets ``trainer.loss.targets`` (:class:`~facemetric.losses.distill.DistillLoss`)
    to the teacher's embedding of each image's photo, of its mirror image where augmentation flipped
    it and the table has that view.

    Args:
        table: (N, views, dim) float32 over the training rows (:func:`facemetric.train.teacher.teacher_table`).
    """

    def __init__(self, table: np.ndarray) -> None:
        self.table = torch.from_numpy(np.ascontiguousarray(table, dtype=np.float32))

    def on_batch_start(self, trainer: Trainer, batch: TrainBatch) -> None:
        if batch.rows is None:
            raise RuntimeError("distillation needs each batch's rows (a BatchSource batch), got a batch without them")
        rows = torch.as_tensor(batch.rows, dtype=torch.long)
        if self.table.shape[1] > 1 and batch.flipped is not None:
            view = torch.as_tensor(batch.flipped, dtype=torch.long)
        else:
            view = torch.zeros_like(rows)
        trainer.loss.targets = self.table[rows, view].to(trainer.device)
