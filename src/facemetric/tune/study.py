"""``facemetric tune``: a hyper-parameter study on Optuna, kept in ``<study>/study.db`` (SQLite).

The study file makes a search resumable and shareable: run the same command again after Ctrl-C or a
crash and it goes on where it stopped (finished trials are never repeated; a trial that was
interrupted is run again with the same values), and several ``facemetric tune`` processes given the
same study folder share its trials and its budget (``--trials`` counts finished trials of the whole
study). Every trial is a normal run folder (``trials/NNNN``); after each trial ``best.yaml`` (the best
trial's config, ready for ``facemetric train``), ``tune.json`` and ``report.html`` are rewritten.

Samplers: ``tpe`` (Optuna's Tree-structured Parzen Estimator, after ``startup`` random trials),
``random``, ``grid`` (every combination of the values, in a seeded order). Pruners: ``median`` (stop a
trial below the median of earlier trials at the same epoch), ``hyperband``, ``none``.
"""

from __future__ import annotations

import logging
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import yaml

from facemetric.core.atomic import made_for_good, write_atomic, write_json
from facemetric.core.config import Config, config_from_dict
from facemetric.core.errors import ConfigError
from facemetric.data.dataset import load_dataset
from facemetric.tune.objective import FAILURES, Objective, check_metric, check_space, with_values
from facemetric.tune.space import Param, SpaceError

log = logging.getLogger("facemetric")

STUDY_NAME = "facemetric"
SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("median", "hyperband", "none")
HEARTBEAT_S = 10  # a RUNNING trial whose process sent no heartbeat for GRACE_S is failed (a crash) and retried
GRACE_S = 30
FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


@dataclass
class TuneSettings:
    """What ``facemetric tune`` was asked to do."""

    base: dict[str, Any]  # the config (YAML values, overrides applied) every trial starts from
    params: list[Param]
    study_dir: Path
    trials: int | None = None  # finished trials the study should have (grid: default every combination)
    sampler: str = "tpe"
    pruner: str | optuna.pruners.BasePruner = "median"  # a name, or any Optuna pruner (library use)
    metric: str = "accuracy"
    direction: str | None = None  # default: the metric's better direction
    seed: int | None = None
    startup: int | None = None  # TPE's random trials first; default min(10, max(3, trials // 3))
    prune_after: int | None = None  # no pruning before this epoch; default a third of train.epochs
    timeout_s: float | None = None  # stop starting trials after this long (this process)
    progress: bool = True

    @property
    def pruner_name(self) -> str:
        return self.pruner if isinstance(self.pruner, str) else type(self.pruner).__name__


@dataclass
class TuneResult:
    study_dir: Path
    best_value: float | None
    best_params: dict[str, Any]
    best_trial: int | None
    counts: dict[str, int]
    best_config: Path | None


def _sampler(settings: TuneSettings) -> optuna.samplers.BaseSampler:
    if settings.sampler == "grid":
        space = {p.key: p.grid() for p in settings.params}
        return optuna.samplers.GridSampler(space, seed=settings.seed)
    if settings.sampler == "random":
        return optuna.samplers.RandomSampler(seed=settings.seed)
    startup = settings.startup
    if startup is None:
        startup = min(10, max(3, (settings.trials or 30) // 3))
    return optuna.samplers.TPESampler(n_startup_trials=startup, seed=settings.seed)


def _pruner(settings: TuneSettings, epochs: int) -> optuna.pruners.BasePruner:
    """The pruner; the named ones judge no trial before ``prune_after`` epochs (default a third of the run:
    measured on ORL, the median pruner judging at epoch 5 of 30 pruned the grid's best configuration,
    whose early validations were ordinary; BENCHMARKS.md)."""
    if isinstance(settings.pruner, optuna.pruners.BasePruner):
        return settings.pruner
    after = settings.prune_after if settings.prune_after is not None else max(1, epochs // 3)
    if settings.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=after)
    if settings.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=after, max_resource=max(epochs, after + 1))
    return optuna.pruners.NopPruner()


def grid_size(params: list[Param]) -> int:
    size = 1
    for p in params:
        size *= len(p.grid())
    return size


def _record(settings: TuneSettings) -> dict[str, Any]:
    """What makes a study the same study: a resumed or shared one must agree on all of it."""
    return {
        "space": [p.text for p in settings.params],
        "metric": settings.metric,
        "sampler": settings.sampler,
        "base": settings.base,
    }


def open_study(settings: TuneSettings, epochs: int) -> optuna.Study:
    """Create ``<study_dir>/study.db`` or join the study in it; refuses one searching something else."""
    settings.study_dir.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # heartbeats: stable since 2.9
        storage = optuna.storages.RDBStorage(
            f"sqlite:///{(settings.study_dir / 'study.db').resolve()}",
            engine_kwargs={"connect_args": {"timeout": 60}},  # several processes: wait for SQLite's lock
            heartbeat_interval=HEARTBEAT_S,
            grace_period=GRACE_S,
        )
    direction = settings.direction or check_metric(settings.metric)
    study = optuna.create_study(
        storage=storage,
        study_name=STUDY_NAME,
        direction="minimize" if direction == "minimize" else "maximize",
        sampler=_sampler(settings),
        pruner=_pruner(settings, epochs),
        load_if_exists=True,
    )
    mine = _record(settings)
    theirs = study.user_attrs.get("record")
    if theirs is None:
        study.set_user_attr("record", mine)
    elif theirs != mine:
        changed = [k for k in mine if theirs.get(k) != mine[k]]
        raise ConfigError(
            f"{settings.study_dir}: this study searches a different {' and '.join(changed)} "
            f"({'; '.join(f'{k}: {theirs.get(k)}' for k in changed if k != 'base')}); use a new study folder "
            "(--out) or the same config, --param, --metric and --sampler"
        )
    if study.direction.name.lower() != direction:
        raise ConfigError(
            f"{settings.study_dir}: this study {study.direction.name.lower()}s its metric, not {direction}"
        )
    return study


def _counted(trial: optuna.trial.FrozenTrial) -> bool:
    """Trials that count towards ``--trials``: finished, pruned, or failed on their own (NaN)."""
    return trial.state in FINISHED or (
        trial.state == optuna.trial.TrialState.FAIL and "failed_reason" in trial.user_attrs
    )


def _retry_interrupted(study: optuna.Study) -> int:
    """Queue once more, with the same values, every trial stopped by Ctrl-C or a crash (failed without a
    reason of its own) that no later trial has retried."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)  # trials of a crashed process, once their heartbeat is GRACE_S old
    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get("retry_of") for t in trials}
    queued = 0
    for t in trials:
        if t.state == optuna.trial.TrialState.FAIL and "failed_reason" not in t.user_attrs and t.number not in retried:
            study.enqueue_trial(t.params, user_attrs={"retry_of": t.number})
            queued += 1
    return queued


class _Budget:
    """Stops the study when it holds ``trials`` counted trials (running ones of other processes included)."""

    def __init__(self, trials: int) -> None:
        self.trials = trials

    def reached(self, study: optuna.Study) -> bool:
        trials = study.get_trials(deepcopy=False)
        running = sum(t.state == optuna.trial.TrialState.RUNNING for t in trials)
        return sum(_counted(t) for t in trials) + running >= self.trials

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if self.reached(study):
            study.stop()


def best_values(study: optuna.Study, settings: TuneSettings) -> dict[str, Any] | None:
    """The best trial's values as the config takes them; None before any trial has completed."""
    try:
        best = study.best_trial
    except ValueError:
        return None
    return {p.key: p.config_value(best.params[p.key]) for p in settings.params if p.key in best.params}


def best_config(study: optuna.Study, settings: TuneSettings) -> Config | None:
    """The best trial's full config (its run folder replaced by ``<study>/best``)."""
    values = best_values(study, settings)
    return None if values is None else with_values(settings.base, values, settings.study_dir / "best")


def trial_rows(study: optuna.Study) -> list[dict[str, Any]]:
    """One row per trial: number, state, values, objective, time and CPU, reason of a failure."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        attrs = t.user_attrs
        rows.append(
            {
                "number": t.number,
                "state": t.state.name,
                "params": t.params,
                "value": t.value,
                "seconds": attrs.get("seconds"),
                "cpu_seconds": attrs.get("cpu_seconds"),
                "pruned_at_epoch": attrs.get("pruned_at_epoch"),
                "failed_reason": attrs.get("failed_reason"),
                "retry_of": attrs.get("retry_of"),
                "curve": attrs.get("curve", {}),
                "run": attrs.get("run"),
            }
        )
    return rows


def write_outputs(study: optuna.Study, settings: TuneSettings) -> TuneResult:
    """``best.yaml``, ``tune.json`` and ``report.html`` of the study as it stands."""
    from facemetric.tune.report import write_report

    cfg = best_config(study, settings)
    best_path = None
    if cfg is not None:
        best_path = settings.study_dir / "best.yaml"
        header = (
            f"# the best trial ({study.best_trial.number}, {settings.metric} {study.best_value:.4f}) of the study in "
            f"{settings.study_dir}\n# train it: facemetric train {best_path}\n"
        )
        write_atomic(best_path, header + yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    rows = trial_rows(study)
    counts = dict(Counter(row["state"] for row in rows))
    result = TuneResult(
        settings.study_dir,
        study.best_value if cfg is not None else None,
        best_values(study, settings) or {},
        study.best_trial.number if cfg is not None else None,
        counts,
        best_path,
    )
    write_json(
        settings.study_dir / "tune.json",
        {
            "metric": settings.metric,
            "direction": study.direction.name.lower(),
            "sampler": settings.sampler,
            "pruner": settings.pruner_name,
            "space": [p.text for p in settings.params],
            "best": {"trial": result.best_trial, "value": result.best_value, "params": result.best_params},
            "counts": counts,
            "trials": rows,
        },
    )
    write_report(study, settings, rows)
    return result


def tune(settings: TuneSettings) -> TuneResult:
    """Run (or resume, or join) the study ``settings`` describes; returns where it stands at the end."""
    if settings.sampler not in SAMPLERS:
        raise ConfigError(f"--sampler {settings.sampler!r}: use one of {', '.join(SAMPLERS)}")
    if isinstance(settings.pruner, str) and settings.pruner not in PRUNERS:
        raise ConfigError(f"--pruner {settings.pruner!r}: use one of {', '.join(PRUNERS)}")
    check_metric(settings.metric)
    base_cfg = config_from_dict(settings.base)
    check_space(settings.base, settings.params)
    if settings.sampler == "grid":
        size = grid_size(settings.params)
        if settings.trials is None:
            settings.trials = size
        elif settings.trials < size:
            log.warning(
                "tune: --trials %d visits %d of the grid's %d combinations", settings.trials, settings.trials, size
            )
    if settings.trials is None:
        raise SpaceError("--trials: say how many trials the study should run (a grid search defaults to all of them)")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with made_for_good(settings.study_dir):  # a study refused before its first trial leaves no folder behind
        study = open_study(settings, base_cfg.train.epochs)
        queued = _retry_interrupted(study)
        if queued:
            log.info("tune: %d interrupted trial(s) queued again with the same values", queued)
        budget = _Budget(settings.trials)
        if budget.reached(study):
            log.info("tune: the study already has %d finished trials (--trials %d)", settings.trials, settings.trials)
            return write_outputs(study, settings)
        data = None
        if not any(p.key.startswith("data.") for p in settings.params):  # every trial trains on the same data
            data = load_dataset(base_cfg.data, settings.progress)
    objective = Objective(settings.base, settings.params, settings.study_dir, settings.metric, data)

    def after_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        what = {"COMPLETE": f"{settings.metric} {trial.value:.4f}" if trial.value is not None else "done"}.get(
            trial.state.name, trial.user_attrs.get("failed_reason") or trial.state.name.lower()
        )
        if trial.state == optuna.trial.TrialState.PRUNED:
            what = f"pruned after epoch {trial.user_attrs.get('pruned_at_epoch')}"
        log.info(
            "tune: trial %d %s (%s) in %.0f s",
            trial.number,
            what,
            ", ".join(f"{k}={v}" for k, v in trial.params.items()),
            trial.user_attrs.get("seconds", 0.0),
        )
        write_outputs(study, settings)

    study.optimize(
        objective,
        timeout=settings.timeout_s,
        catch=FAILURES,
        callbacks=[budget, after_trial],
        gc_after_trial=True,
    )
    return write_outputs(study, settings)
