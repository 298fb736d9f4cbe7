"""The distillation teacher as a callback: each batch's targets looked up in the cached teacher table,
or computed by the teacher on the batch itself (online)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from facemetric.core.embedder import Embedder
from facemetric.train.callbacks.base import Callback
from facemetric.train.teacher import Normalization, teacher_pixels

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


class OnlineDistillCallback(Callback):
    """Before each step, the teacher embeds the batch itself (:func:`~facemetric.train.teacher.teacher_pixels`:
    the student's augmented view, resized to the teacher's input) and sets ``trainer.loss.targets``.

    Unlike the table, every augmentation (shift, zoom, colour, cutout) changes the target with the
    image, so strong augmentation teaches the student instead of contradicting the teacher.

    Args:
        teacher: the embedder (its :attr:`spec` is the crop it reads).
        normalization: the training batches' (mean, std) per channel, to undo.
        mean: the teacher's mean embedding to subtract (:func:`~facemetric.train.teacher.teacher_mean`), or None.
    """

    def __init__(self, teacher: Embedder, normalization: Normalization, mean: np.ndarray | None = None) -> None:
        self.teacher, self.normalization = teacher, normalization
        self.mean = None if mean is None else torch.from_numpy(np.asarray(mean, dtype=np.float32))

    def on_batch_start(self, trainer: Trainer, batch: TrainBatch) -> None:
        pixels = teacher_pixels(batch.images, self.normalization, self.teacher.spec)
        targets = torch.from_numpy(self.teacher.embed_crops(pixels, batch_size=len(pixels)))
        if self.mean is not None:
            targets = torch.nn.functional.normalize(targets - self.mean, dim=1)
        trainer.loss.targets = targets.to(trainer.device)
