"""The callbacks of a run, built through the callback registry in a fixed order.

Each callback a config implies says so itself (``implied_by``) and builds itself from the run
(:meth:`~facemetric.train.callbacks.base.Callback.from_run`); this module only holds the order:
the teacher (when the loss declares it learns from one), the collapse monitor, the loss and
miner schedules, validation and classification, then the config's ``train.callbacks`` and the
caller's own (so they can read validation's report), then the metric log, the checkpoints, the
trackers of ``train.loggers`` (after the checkpoints: a run's end sends its best.pt) and progress.
"""

from __future__ import annotations

from collections.abc import Sequence

from facemetric.core.needs import LossNeeds
from facemetric.train.callbacks import CALLBACKS, Callback, build_callback
from facemetric.train.callbacks.base import RunContext
from facemetric.train.callbacks.tracking import tracker

BEFORE_OWN = ("collapse_monitor", "loss_schedule", "miner_schedule", "validation", "classification")
AFTER_OWN = ("metrics_log", "checkpoint")


def implied(name: str, run: RunContext) -> Callback | None:
    """The registered callback ``name`` as ``run`` calls for it (None: the config does not)."""
    kind = CALLBACKS.get(name)
    return kind.from_run(run)


def teacher_callback(run: RunContext) -> Callback | None:
    """The distillation teacher: its cached table, or the teacher itself with ``distill.online``."""
    return implied("online_teacher" if run.cfg.distill.online else "teacher", run)


def run_callbacks(
    run: RunContext, needs: LossNeeds, extra: Sequence[Callback] = (), main: bool = True
) -> list[Callback]:
    """The callbacks of ``run`` (its loss declares ``needs``), then ``extra`` in their place; only the
    checkpoint callback (which may gather state) runs on every process, the others on rank 0 alone
    (``main``)."""
    if not main:
        return [c for c in [implied("checkpoint", run)] if c is not None]
    found = [teacher_callback(run)] if needs.teacher else []
    found += [implied(name, run) for name in BEFORE_OWN]
    found += [
        build_callback(c.name, f"train.callbacks.{k}", **c.options) for k, c in enumerate(run.cfg.train.callbacks)
    ]
    found += list(extra)
    found += [implied(name, run) for name in AFTER_OWN]
    found += [implied(logger, run) for logger in dict.fromkeys(run.cfg.train.loggers) if tracker(logger) is not None]
    found.append(implied("progress", run))
    return [c for c in found if c is not None]
