"""One trial of a study: the base config with the trial's values, trained as a normal run folder.

The objective is a number of the run's last held-out validation (``--metric``): ``accuracy``,
``auc``, ``eer`` (lower is better), ``map@r``, ``precision@1`` or ``tar@far=1e-03`` (any FAR the
validation reports). Each validation is also reported to Optuna by :class:`PruningCallback`, so the
pruner can stop a trial whose curve is below the others at the same epoch; the trial then ends
after that epoch, with its checkpoint, and is recorded as pruned.

A trial whose loss becomes NaN or infinite (or whose embeddings collapse, with ``monitor.stop``)
is recorded as failed with the reason; the study goes on.
"""

from __future__ import annotations

import json
import math
import resource
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna

from facemetric.core.config import Config, apply_overrides, config_from_dict
from facemetric.core.errors import ConfigError
from facemetric.data.dataset import DatasetSplit
from facemetric.train.build import build_run, check_config
from facemetric.train.callbacks.base import Callback
from facemetric.train.callbacks.collapse import CollapseError
from facemetric.train.trainer import TrainingDivergedError
from facemetric.tune.space import Param

if TYPE_CHECKING:
    from facemetric.train.trainer import Trainer

# metric -> (how to read it from a validation report, the better direction)
METRICS = {
    "accuracy": ("accuracy", "maximize"),
    "auc": ("auc", "maximize"),
    "eer": ("eer", "minimize"),
    "map@r": ("map_at_r", "maximize"),
    "precision@1": ("precision_at_1", "maximize"),
    "top1": ("classify_top1", "maximize"),  # closed-set classification (data.val_images / data.dev_source)
    "top5": ("classify_top5", "maximize"),
}
FAILURES = (TrainingDivergedError, CollapseError)  # a trial's own failure: recorded, the study goes on


def check_metric(name: str) -> str:
    """The metric's better direction; a clear error for a name the validation does not report."""
    if name in METRICS:
        return METRICS[name][1]
    if name.startswith("tar@far="):
        return "maximize"
    raise ConfigError(
        f"--metric {name!r}: not a validation metric; use one of {', '.join(METRICS)} or tar@far=1e-03 "
        "(a FAR the validation reports: 1e-01, 1e-02, 1e-03, 1e-04)"
    )


def metric_value(report: dict[str, Any], name: str) -> float:
    """``name``'s value in a validation report."""
    if name.startswith("tar@far="):
        far = name.split("=", 1)[1]
        table = report.get("tar_at_far", {})
        if far not in table:
            raise ConfigError(f"--metric {name!r}: the validation reports TAR at FAR {', '.join(table)} only")
        return float(table[far])
    return float(report[METRICS[name][0]])


class PruningCallback(Callback):
    """Reports each validation's ``metric`` to the Optuna ``trial`` at its epoch; when the pruner says
    so, the run stops after this epoch (its checkpoint and logs written as usual)."""

    def __init__(self, trial: Any, metric: str) -> None:
        self.trial, self.metric = trial, metric
        self.pruned_at: int | None = None
        self.values: dict[int, float] = {}

    def on_epoch_end(self, trainer: Trainer, logs: dict[str, Any]) -> None:
        report = trainer.metrics.get("val")
        if report is None:
            return
        value = metric_value(report, self.metric)
        self.values[trainer.epoch] = value
        if not math.isfinite(value):
            return  # the objective records the failure
        self.trial.report(value, step=trainer.epoch)
        if trainer.epoch < trainer.epochs and self.trial.should_prune():
            self.pruned_at = trainer.epoch
            trainer.should_stop = True


def with_values(base: dict[str, Any], values: dict[str, Any], out: Path, *more: str) -> Config:
    """The base config with searched ``values`` (config keys -> values), run folder ``out`` and ``more`` overrides."""
    overrides = [f"{k}={json.dumps(v)}" for k, v in values.items()] + [f"train.out={json.dumps(str(out))}", *more]
    return config_from_dict(apply_overrides(base, overrides))


def trial_config(base: dict[str, Any], values: dict[str, Any], out: Path, number: int) -> Config:
    """The base config with the trial's values, its run folder, and the trial in the trackers' tags."""
    cfg = with_values(base, values, out, "train.progress=false")
    cfg.train.tracking.tags = {**cfg.train.tracking.tags, "tune.trial": str(number), "tune.study": str(out.parent)}
    return cfg


def check_space(base: dict[str, Any], params: list[Param]) -> None:
    """Every searched key must exist and take its values: a config with each parameter's first and last
    value is checked like ``facemetric train`` checks one, before the first trial starts."""
    for param in params:
        ends = param.grid() if param.kind == "choice" or param.step is not None else [param.low, param.high]
        for stored in (ends[0], ends[-1]):
            value = param.config_value(stored)
            if param.kind in ("int", "logint"):
                value = int(value)
            try:
                check_config(config_from_dict(apply_overrides(base, [f"{param.key}={json.dumps(value)}"])))
            except ConfigError as exc:
                raise ConfigError(f"--param {param.text!r}: with {param.key}={value!r}: {exc}") from None


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (the data loader's workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@dataclass
class Objective:
    """Optuna's objective: trains ``base`` with a trial's values of ``params`` into ``trials/NNNN``.

    ``data`` (already loaded) is reused by every trial when no parameter changes the data section.
    """

    base: dict[str, Any]
    params: list[Param]
    study_dir: Path
    metric: str
    data: DatasetSplit | None = None

    def __call__(self, trial: Any) -> float:
        values = {p.key: p.suggest(trial) for p in self.params}
        out = self.study_dir / "trials" / f"{trial.number:04d}"
        trial.set_user_attr("run", str(out))
        cfg = trial_config(self.base, values, out, trial.number)
        pruning = PruningCallback(trial, self.metric)
        started, cpu = time.perf_counter(), _cpu_seconds()
        try:
            result = build_run(cfg, data=self.data, callbacks=[pruning]).fit()
        except FAILURES as exc:
            trial.set_user_attr("failed_reason", f"{type(exc).__name__}: {exc}")
            raise
        except KeyboardInterrupt:
            trial.set_user_attr("interrupted", True)  # retried when the study resumes
            raise
        finally:
            trial.set_user_attr("seconds", round(time.perf_counter() - started, 2))
            trial.set_user_attr("cpu_seconds", round(_cpu_seconds() - cpu, 2))
            trial.set_user_attr("curve", {str(k): v for k, v in pruning.values.items()})
        if result.val is None:
            raise ConfigError("data.val_identities: the trial has no held-out people to score; tuning needs them")
        value = metric_value(result.val.summary(), self.metric)
        if pruning.pruned_at is not None:
            trial.set_user_attr("pruned_at_epoch", pruning.pruned_at)
            raise optuna.TrialPruned(f"pruned after epoch {pruning.pruned_at} ({self.metric} {value:.4f})")
        if not math.isfinite(value):
            trial.set_user_attr("failed_reason", f"validation {self.metric} is {value}")
            raise TrainingDivergedError(f"validation {self.metric} is {value}")
        return value
