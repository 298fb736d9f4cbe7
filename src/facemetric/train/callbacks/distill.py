"""The distillation teacher as a callback: each batch's targets looked up in the cached teacher table,
or computed by the teacher on the batch itself (online).

A run adds it because its loss declares it learns from a teacher (``LossNeeds(teacher=True)``);
``distill.teacher`` names the teacher, ``distill.online`` picks the online form.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from facemetric.core.embedder import Embedder
from facemetric.core.errors import ConfigError
from facemetric.train.callbacks.base import Callback, RunContext
from facemetric.train.callbacks.registry import register_callback
from facemetric.train.teacher import Normalization, center_table, teacher_mean, teacher_pixels, teacher_table

if TYPE_CHECKING:
    from facemetric.data.loader import TrainBatch
    from facemetric.train.trainer import Trainer


def load_teacher(run: RunContext) -> Embedder:
    """``distill.teacher``, refused when its embeddings are not the student's size. Loading it leaves the
    global random state alone (a checkpoint teacher builds a network), so the student's loss head is
    drawn from the seed as in any run."""
    from facemetric.embedders import load_embedder

    cfg = run.cfg
    if not cfg.distill.teacher:
        raise ConfigError(
            f"distill.teacher: loss {cfg.loss.name!r} learns a teacher's embeddings; name the teacher "
            "(dlib-resnet, a run's best.pt, an .onnx file)"
        )
    with torch.random.fork_rng():
        teacher = load_embedder(cfg.distill.teacher)
    if teacher.dim != cfg.model.embedding_dim:
        raise ConfigError(
            f"model.embedding_dim: {cfg.model.embedding_dim}, but the teacher {teacher.name} gives {teacher.dim}-d "
            f"embeddings; set model.embedding_dim={teacher.dim}"
        )
    return teacher


@register_callback("teacher")
class DistillCallback(Callback):
    """Before each step, sets ``trainer.loss.targets`` (:class:`~facemetric.losses.distill.DistillLoss`)
    to the teacher's embedding of each image's photo, of its mirror image where augmentation flipped
    it and the table has that view.

    Args:
        table: (N, views, dim) float32 over the training rows (:func:`facemetric.train.teacher.teacher_table`).
    """

    implied_by = "distill.teacher"

    def __init__(self, table: np.ndarray) -> None:
        self.table = torch.from_numpy(np.ascontiguousarray(table, dtype=np.float32))

    @classmethod
    def from_run(cls, run: RunContext) -> DistillCallback:
        """The teacher's table over the training photos (computed once, cached)."""
        cfg = run.cfg
        teacher = load_teacher(run)
        paths = list(run.data.train.paths)
        table = teacher_table(teacher, paths, cfg.distill.mirror, cfg.distill.workers, cfg.train.progress)
        return cls(center_table(table) if cfg.distill.center else table)

    def on_batch_start(self, trainer: Trainer, batch: TrainBatch) -> None:
        if batch.rows is None:
            raise RuntimeError("distillation needs each batch's rows (a BatchSource batch), got a batch without them")
        rows = torch.as_tensor(batch.rows, dtype=torch.long)
        if self.table.shape[1] > 1 and batch.flipped is not None:
            view = torch.as_tensor(batch.flipped, dtype=torch.long)
        else:
            view = torch.zeros_like(rows)
        trainer.loss.targets = self.table[rows, view].to(trainer.device)


@register_callback("online_teacher")
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

    implied_by = "distill.online"

    def __init__(self, teacher: Embedder, normalization: Normalization, mean: np.ndarray | None = None) -> None:
        self.teacher, self.normalization = teacher, normalization
        self.mean = None if mean is None else torch.from_numpy(np.asarray(mean, dtype=np.float32))

    @classmethod
    def from_run(cls, run: RunContext) -> OnlineDistillCallback:
        """The teacher itself, embedding each batch; the training crops must be cut the way it reads them."""
        cfg, data = run.cfg, run.data
        teacher = load_teacher(run)
        theirs, ours = (teacher.spec.align, teacher.spec.crop), (data.spec.align, data.spec.crop)
        if theirs != ours:
            raise ConfigError(
                f"distill.online: the teacher {teacher.name} reads crops cut by {theirs[0]!r} (crop {theirs[1]}), "
                f"but data.source holds crops cut by {ours[0]!r} (crop {ours[1]}); "
                "prepare the photos the teacher's way (for dlib-resnet: "
                "facemetric prepare --data PHOTOS --out OUT --align dlib-chip --size 112) or set distill.online=false"
            )
        mean = teacher_mean(teacher, data.train.images) if cfg.distill.center else None
        return cls(teacher, data.spec.normalization, mean)

    def on_batch_start(self, trainer: Trainer, batch: TrainBatch) -> None:
        pixels = teacher_pixels(batch.images, self.normalization, self.teacher.spec)
        targets = torch.from_numpy(self.teacher.embed_crops(pixels, batch_size=len(pixels)))
        if self.mean is not None:
            targets = torch.nn.functional.normalize(targets - self.mean, dim=1)
        trainer.loss.targets = targets.to(trainer.device)
