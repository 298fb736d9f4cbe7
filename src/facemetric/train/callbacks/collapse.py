"""Collapse detection: notice when embeddings stop spreading out, while training runs.

Metric-learning runs fail quietly: with a too-large learning rate or margin, or batch-hard
mining from a random start, every image gets (almost) the same embedding. The loss then
sits at the margin (a triplet loss with d(a,p) = d(a,n) costs exactly ``margin``) and
stops moving, and validation is at chance. The monitor watches three numbers per batch:

* ``mean_distance``: mean Euclidean distance between the (L2-normalised) embeddings of the
  batch; about 1.4 for random directions on the unit sphere, -> 0 under collapse;
* ``dim_std``: mean over dimensions of the per-dimension standard deviation, -> 0 likewise;
* ``at_margin``: fraction of anchors whose hardest positive and hardest negative are at the
  same distance (|d_ap - d_an| < ``tol``), i.e. triplets sitting exactly at the margin.

When the average over the last ``window`` steps of ``mean_distance`` falls below
``min_mean_distance`` or ``at_margin`` exceeds ``max_at_margin``, it warns once with an
explanation, and raises :class:`CollapseError` if ``stop`` is set. :class:`CollapseCallback`
feeds it every training batch and adds the window's means to each epoch's record (``spread/*``).
"""

from __future__ import annotations

import logging
from collections import deque
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from facemetric.core.config import MonitorConfig
from facemetric.core.errors import FacemetricError
from facemetric.miners.batch_hard import batch_hard
from facemetric.ops.distances import pairwise_distance
from facemetric.ops.masks import pair_masks
from facemetric.train.callbacks.base import Callback, RunContext, StepOutput
from facemetric.train.callbacks.registry import register_callback

if TYPE_CHECKING:
    from facemetric.train.trainer import Trainer

log = logging.getLogger("facemetric")


class CollapseError(FacemetricError, RuntimeError):
    """Training stopped because the embeddings collapsed (exit status 3)."""

    exit_code = 3


@torch.no_grad()
def spread_statistics(embeddings: torch.Tensor, labels: torch.Tensor, tol: float = 0.01) -> dict[str, float]:
    """mean_distance, dim_std and at_margin (see module doc) of one batch."""
    x = F.normalize(embeddings.detach().float(), dim=1)
    n = len(x)
    dist = pairwise_distance(x, "euclidean")
    off_diagonal = ~torch.eye(n, dtype=torch.bool, device=x.device)
    hardest_pos, hardest_neg, valid = batch_hard(dist, *pair_masks(labels))
    at_margin = float("nan")
    if valid.any():
        d_ap, d_an = dist.gather(1, hardest_pos[:, None]), dist.gather(1, hardest_neg[:, None])
        at_margin = ((d_ap - d_an).abs() < tol)[valid].float().mean().item()
    return {
        "mean_distance": dist[off_diagonal].mean().item() if n > 1 else float("nan"),
        "dim_std": x.std(dim=0).mean().item() if n > 1 else float("nan"),
        "at_margin": at_margin,
    }


class CollapseMonitor:
    """Feed it every training batch's embeddings; it warns (or stops) on collapse."""

    def __init__(self, cfg: MonitorConfig | None = None) -> None:
        self.cfg = cfg or MonitorConfig()
        self.history: deque[dict[str, float]] = deque(maxlen=self.cfg.window)
        self.fired = False

    def update(self, embeddings: torch.Tensor, labels: torch.Tensor, step: int) -> dict[str, float]:
        """Record one batch; returns its statistics. May warn once, or raise CollapseError."""
        stats = spread_statistics(embeddings, labels, self.cfg.tol)
        self.history.append(stats)
        if len(self.history) == self.cfg.window and not self.fired:
            reason = self.diagnose()
            if reason:
                self.fired = True
                message = (
                    f"embedding collapse at step {step}: {reason}. The network maps different identities to "
                    "(nearly) the same point, so the loss stops teaching it anything. Usual causes: a too-high "
                    "learning rate (optim.lr), a too-large margin, hard mining from a random start, or a network "
                    "without normalisation (no batch norm before the embedding) - try semi-hard mining for the "
                    "first epochs (miner.schedule), a lower lr or a longer warm-up, or a model with batch norm."
                )
                if self.cfg.stop:
                    raise CollapseError(message)
                log.warning("warning: %s", message)
        return stats

    def summary(self) -> dict[str, float]:
        """Mean of each statistic over the window (NaNs ignored)."""
        out = {}
        for key in ("mean_distance", "dim_std", "at_margin"):
            values = torch.tensor([h[key] for h in self.history])
            values = values[~values.isnan()]
            out[key] = values.mean().item() if len(values) else float("nan")
        return out

    def diagnose(self) -> str | None:
        """Why the current window looks collapsed, or None when it looks healthy."""
        s = self.summary()
        if s["mean_distance"] < self.cfg.min_mean_distance:
            return (
                f"mean distance between embeddings {s['mean_distance']:.4f} < {self.cfg.min_mean_distance} "
                f"(random directions give about 1.4)"
            )
        if s["at_margin"] > self.cfg.max_at_margin:
            return (
                f"{s['at_margin']:.0%} of anchors have their hardest positive and hardest negative at the "
                f"same distance (triplets stuck exactly at the margin)"
            )
        return None


@register_callback("collapse_monitor")
class CollapseCallback(Callback):
    """Runs a :class:`CollapseMonitor` on every training batch; adds ``spread/*`` to each epoch's record."""

    implied_by = "monitor.enabled"

    def __init__(self, cfg: MonitorConfig | None = None) -> None:
        self.monitor = CollapseMonitor(cfg)

    @classmethod
    def from_run(cls, run: RunContext) -> CollapseCallback | None:
        return cls(run.cfg.monitor) if run.cfg.monitor.enabled else None

    def on_batch_end(self, trainer: Trainer, output: StepOutput) -> None:
        self.monitor.update(output.embeddings, output.labels, output.step)

    def on_epoch_end(self, trainer: Trainer, logs: dict[str, Any]) -> None:
        logs.update({f"spread/{k}": round(v, 5) for k, v in self.monitor.summary().items()})
