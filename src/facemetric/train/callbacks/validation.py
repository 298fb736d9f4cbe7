"""Validation on held-out identities: k-fold verification on the run's pair protocol, every N epochs,
and retrieval among the held-out photos (MAP@R, P@1).

The pairs are drawn once, by the one pair-protocol builder
(:func:`~facemetric.eval.verification.protocol.held_out_pair_protocol`: identity-disjoint folds), so the
accuracy logged here is the one ``facemetric report RUN`` shows for the same checkpoint.
Each fold's threshold is chosen on the other folds, never on the fold it is scored on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn as nn

from facemetric.data.cache import PackedImages
from facemetric.embedders.torch_model import embed_array
from facemetric.eval.primitives import cosine_scores
from facemetric.eval.retrieval.metrics import retrieval_metrics
from facemetric.eval.verification.metrics import verification_report
from facemetric.eval.verification.protocol import PairProtocol, held_out_pair_protocol
from facemetric.eval.verification.result import VerificationMetrics
from facemetric.train.callbacks.base import Callback, RunContext
from facemetric.train.callbacks.registry import register_callback

if TYPE_CHECKING:
    from facemetric.train.trainer import Trainer


class HeldOutVerification(VerificationMetrics):
    """A validation's figures on the held-out people: k-fold verification on the run's pair protocol, and
    retrieval among their photos (each one a query against the others)."""

    map_at_r: float
    precision_at_1: float


@register_callback("validation")
class ValidationCallback(Callback):
    """Verification metrics of the model on ``val`` after every ``every`` epochs and after the last.

    Publishes ``trainer.metrics["val"]`` (the report as a flat record, for the logs and trackers) and
    ``trainer.metrics["val_improved"]`` (best accuracy so far), which the checkpoint callback uses for ``best.pt``.
    """

    implied_by = "data.val_identities"

    def __init__(
        self,
        val: PackedImages,
        normalization: tuple[tuple[float, ...], tuple[float, ...]],
        every: int = 1,
        max_pairs: int = 3000,
        seed: int = 0,
        device: str | torch.device = "cpu",
        mirror: bool = False,
    ) -> None:
        self.val, self.normalization, self.every, self.device = val, normalization, every, device
        self.mirror = mirror  # model.mirror: score the embeddings inference will use (each face with its mirror image)
        names = np.array([val.identity_names[k] for k in val.labels])
        self.protocol: PairProtocol = held_out_pair_protocol(names, max_pairs, seed)
        self.best_accuracy: float | None = None
        self.last: HeldOutVerification | None = None

    @classmethod
    def from_run(cls, run: RunContext) -> ValidationCallback | None:
        """Verification of the held-out people (none: no callback)."""
        cfg, data = run.cfg, run.data
        if data.val is None:
            return None
        return cls(
            data.val,
            data.spec.normalization,
            cfg.train.val_every,
            cfg.data.val_pairs,
            cfg.data.split_seed,
            run.device,
            mirror=cfg.model.mirror,
        )

    def evaluate(self, model: nn.Module) -> HeldOutVerification:
        """The verification report of ``model`` on the held-out pairs."""
        emb = embed_array(
            model, self.val.images, device=self.device, flip=self.mirror, normalization=self.normalization
        )
        p = self.protocol
        verified = verification_report(cosine_scores(emb, p.i, p.j), p.same, folds=p.fold)
        # retrieval among the held-out photos (each one a query against the others): MAP@R and P@1
        ranked = retrieval_metrics(emb, self.val.labels, ks=(1,))
        return HeldOutVerification(
            **verified.model_dump(), map_at_r=ranked.map_at_r, precision_at_1=ranked.precision_at_1
        )

    def on_epoch_end(self, trainer: Trainer, logs: dict[str, Any]) -> None:
        trainer.metrics["val_improved"] = False
        if trainer.epoch % self.every and trainer.epoch != trainer.epochs:
            trainer.metrics.pop("val", None)
            return
        report = self.evaluate(trainer.model)
        improved = self.best_accuracy is None or report.accuracy > self.best_accuracy
        if improved:
            self.best_accuracy = report.accuracy
        self.last = report
        trainer.metrics.update(val=report.model_dump(), val_improved=improved, best_accuracy=self.best_accuracy)

    def state_dict(self) -> dict[str, Any]:
        return {"best_accuracy": self.best_accuracy, "last": self.last.model_dump() if self.last else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best_accuracy = state["best_accuracy"]
        self.last = HeldOutVerification.model_validate(state["last"]) if state["last"] else None
