"""Closed-set classification during training: top-1 / top-5 on other images of the training people.

A course assignment (and any "which of my N people is this" product) is judged on it, next to
verification on new people. The images come from ``data.val_images`` (held out of each training
person's photos) or ``data.dev_source`` (a dev folder of the same people). They are classified by
the loss's classifier head (softmax, ArcFace, CosFace ... without the margin: what ``facemetric
predict classify`` does with the checkpoint), or, for a pair loss, which has no head, by the
nearest class centre: the mean embedding of up to ``centre_images`` training photos of each class.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
import torch.nn as nn

from facemetric.core.results import Result
from facemetric.data.cache import PackedImages
from facemetric.embedders.torch_model import embed_array
from facemetric.eval.course.classification import centre_scores, head_scores, top_k_accuracy
from facemetric.losses.margin import classifier_head
from facemetric.train.callbacks.base import Callback, RunContext
from facemetric.train.callbacks.registry import register_callback
from facemetric.train.callbacks.validation import ValidationCallback

if TYPE_CHECKING:
    from facemetric.train.trainer import Trainer


class ClassificationReport(Result):
    """A validation's closed-set classification: top-1 / top-5 over ``classify_images`` photos of the training
    people, scored by the loss's classifier head or by the nearest class centre (``classify_by``)."""

    classify_top1: float
    classify_top5: float
    classify_images: int
    classify_by: Literal["head", "centres"]


@register_callback("classification")
class ClassificationCallback(Callback):
    """Top-1 / top-5 classification of ``dev`` (labels = training class indices) after every ``every``
    epochs and after the last; added to the validation report as ``classify_top1`` / ``classify_top5``.

    Without verification validation (``data.val_identities: 0``) its top-1 decides ``best.pt``.
    """

    implied_by = "data.val_images or data.dev_source"

    def __init__(
        self,
        dev: PackedImages,
        train: PackedImages,
        normalization: tuple[tuple[float, ...], tuple[float, ...]],
        every: int = 1,
        device: str | torch.device = "cpu",
        mirror: bool = False,
        centre_images: int = 8,
        seed: int = 0,
    ) -> None:
        self.dev, self.train, self.normalization = dev, train, normalization
        self.every, self.device, self.mirror = every, device, mirror
        rng = np.random.default_rng(seed)
        picks = [
            rng.permutation(np.flatnonzero(train.labels == c))[:centre_images] for c in range(len(train.identity_names))
        ]
        self.centre_rows = np.concatenate(picks) if picks else np.zeros(0, np.int64)
        self.best_top1: float | None = None
        self.last: ClassificationReport | None = None

    @classmethod
    def from_run(cls, run: RunContext) -> ClassificationCallback | None:
        """Classification of the training people's other photos (none held out: no callback)."""
        cfg, data = run.cfg, run.data
        if data.dev is None:
            return None
        return cls(
            data.dev,
            data.train,
            data.spec.normalization,
            cfg.train.val_every,
            run.device,
            mirror=cfg.model.mirror,
            seed=cfg.data.split_seed,
        )

    def _embed(self, model: nn.Module, images: Any) -> np.ndarray:
        return embed_array(model, images, device=self.device, flip=self.mirror, normalization=self.normalization)

    def evaluate(self, model: nn.Module, loss: nn.Module) -> ClassificationReport:
        """``classify_top1``, ``classify_top5``, ``classify_images`` and how they were scored."""
        emb = self._embed(model, self.dev.images)
        head = classifier_head(loss)
        if head is not None:
            scores, by = head_scores(head, emb), "head"
        else:
            rows = self.centre_rows
            train_emb = self._embed(model, self.train.images[rows])
            labels = self.train.labels[rows]
            centres = np.zeros((len(self.train.identity_names), emb.shape[1]), np.float64)
            np.add.at(centres, labels, train_emb)
            scores, by = centre_scores(emb, centres), "centres"
        top = top_k_accuracy(scores, self.dev.labels, (1, 5))
        return ClassificationReport(
            classify_top1=top[1], classify_top5=top[5], classify_images=len(self.dev), classify_by=by
        )

    def on_epoch_end(self, trainer: Trainer, logs: dict[str, Any]) -> None:
        verifies = trainer.callback(ValidationCallback) is not None  # then verification decides best.pt
        if trainer.epoch % self.every and trainer.epoch != trainer.epochs:
            if not verifies:
                trainer.metrics.pop("val", None)
                trainer.metrics["val_improved"] = False
            return
        report = self.evaluate(trainer.model, trainer.loss)
        self.last = report
        if verifies:
            trainer.metrics.setdefault("val", {}).update(report.model_dump())
            return
        improved = self.best_top1 is None or report.classify_top1 > self.best_top1
        if improved:
            self.best_top1 = report.classify_top1
        trainer.metrics.update(val=report.model_dump(), val_improved=improved)

    def state_dict(self) -> dict[str, Any]:
        return {"best_top1": self.best_top1, "last": self.last.model_dump() if self.last else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best_top1 = state["best_top1"]
        self.last = ClassificationReport.model_validate(state["last"]) if state["last"] else None
