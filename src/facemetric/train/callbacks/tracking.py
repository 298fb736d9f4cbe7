"""Experiment trackers (``train.loggers: [mlflow, wandb]``): what every tracker logs, and when.

A :class:`TrackerCallback` sends a run to an external tracker through the same callback hooks as
everything else: the resolved config as parameters when the run starts, the loss of every step
and each epoch's record and validation report as metrics, and the checkpoint and the run's files
as artifacts when it ends. Subclasses (:mod:`.mlflow_tracker`, :mod:`.wandb_tracker`) only say how
their library does each of these; each is a callback registered under its ``train.loggers`` name.
The tracked run's id is part of the checkpoint, so ``--resume`` continues the same tracked run;
``<out>/trackers.json`` says where each run went, so ``facemetric report RUN`` can attach its report
to it later.

The run folder's own files (CSV, JSONL, TensorBoard) are always written: a tracker that fails in the
middle of a run is switched off with a warning, never the reason a long run is lost.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from facemetric.core.atomic import write_json
from facemetric.core.config import Config
from facemetric.core.errors import ConfigError
from facemetric.train.callbacks.base import Callback, RunContext, StepOutput
from facemetric.train.callbacks.registry import CALLBACKS

if TYPE_CHECKING:
    from facemetric.train.trainer import Trainer

log = logging.getLogger("facemetric")

TRACKERS_FILE = "trackers.json"
# what goes to the tracker as artifacts when the run ends, those of them the run folder has
CHECKPOINTS = ("best.pt",)  # the checkpoint (last.pt only when there is no best.pt: no held-out people)
RUN_FILES = ("config.yaml", "environment.json", "train.csv", "val.csv")


def tracker(name: str) -> type[TrackerCallback] | None:
    """The tracker registered as ``name`` (a ``train.loggers`` value), or None (``tensorboard``: the metric
    log's own)."""
    builder = CALLBACKS.get(name) if name in CALLBACKS else None
    return builder if isinstance(builder, type) and issubclass(builder, TrackerCallback) else None


def check_installed(name: str) -> None:
    """Refuse ``train.loggers: [name]`` before any data is read when its library is missing."""
    kind = tracker(name)
    if kind is not None and importlib.util.find_spec(kind.requires) is None:
        raise ConfigError(
            f"train.loggers: {name} is not installed; install it with `pip install 'facemetric[{name}]'` "
            f"(or remove {name} from train.loggers)"
        )


def flat_params(values: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """A nested config as ``{"loss.options.gamma": "64", ...}`` (lists and empty sections as text)."""
    out: dict[str, str] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flat_params(value, f"{name}."))
        else:
            out[name] = json.dumps(value) if isinstance(value, (list, dict)) else str(value)
    return out


def metric_name(kind: str, key: str) -> str:
    """``val`` + ``tar@far=1e-03`` -> ``val/tar_at_far_1e-03``: names every tracker accepts."""
    key = key.replace("@", "_at_").replace("=", "_")
    return f"{kind}/{re.sub(r'[^A-Za-z0-9_./ -]', '_', key)}"


def numbers(record: dict[str, Any]) -> dict[str, float]:
    """The numbers of an epoch record or a validation report, nested ``tar_at_far`` included."""
    out = {k: float(v) for k, v in record.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    for far, value in (record.get("tar_at_far") or {}).items():
        out[f"tar@far={far}"] = float(value)
    return out


class TrackerCallback(Callback):
    """Sends the run to one tracker; subclasses implement the ``_`` methods with their library.

    Args:
        cfg: the run's config (its ``train.tracking`` section says where; all of it becomes parameters).
        out: the run folder.
    """

    name = "tracker"  # its train.loggers value, and the name it is registered under
    requires: ClassVar[str] = ""  # the module its library installs
    implied_by = "train.loggers"

    @classmethod
    def from_run(cls, run: RunContext) -> TrackerCallback | None:
        return cls(run.cfg, run.out) if cls.name in run.cfg.train.loggers else None

    @classmethod
    def attach(cls, where: dict[str, Any], files: list[Path], folder: str, run_dir: Path) -> None:
        """Add ``files`` under ``folder`` to a finished tracked run (``where``: its ``trackers.json`` record)."""
        raise NotImplementedError

    def __init__(self, cfg: Config, out: str | Path) -> None:
        self.cfg, self.out = cfg, Path(out)
        self.tracking = cfg.train.tracking
        self.run_name = self.tracking.run_name or self.out.resolve().name
        self.run_id: str | None = None  # set by the start; restored from the checkpoint on --resume
        self._pending: list[tuple[int, dict[str, float]]] = []  # (step, metrics) not yet sent
        self._active = False

    # ------------------------------------------------------------------ what a library implements
    def _start(self, resume_id: str | None) -> str:
        """Open (or, with ``resume_id``, reopen) the tracked run; returns its id."""
        raise NotImplementedError

    def _params(self, params: dict[str, str]) -> None:
        raise NotImplementedError

    def _metrics(self, rows: list[tuple[int, dict[str, float]]]) -> None:
        """Metrics at global steps, in step order."""
        raise NotImplementedError

    def _artifacts(self, files: list[tuple[Path, str]]) -> None:
        """(file, folder) pairs: the checkpoint under ``checkpoint``, the rest under ``run``."""
        raise NotImplementedError

    def _finish(self, status: str) -> None:
        """End the tracked run: ``FINISHED``, ``FAILED`` or ``KILLED`` (Ctrl-C)."""
        raise NotImplementedError

    def where(self) -> dict[str, Any]:
        """What ``trackers.json`` records of this run besides its id (URI, folder, mode)."""
        return {}

    # ------------------------------------------------------------------ hooks
    def on_fit_start(self, trainer: Trainer) -> None:
        resumed = self.run_id is not None
        self.run_id = self._start(self.run_id)
        self._active = True
        if not resumed:
            self._guard(self._params, flat_params(self.cfg.to_dict()))
        self._record()
        log.info("%s: %s run %s %s", self.name, "continuing" if resumed else "logging to", self.run_id, self.where())

    def on_batch_end(self, trainer: Trainer, output: StepOutput) -> None:
        self._pending.append((output.step + 1, {"train/step_loss": output.loss, "train/step_lr": output.lr}))

    def on_epoch_end(self, trainer: Trainer, logs: dict[str, Any]) -> None:
        epoch = {metric_name("train", k): v for k, v in numbers(logs).items()}
        report = trainer.metrics.get("val")
        if report is not None:
            epoch.update({metric_name("val", k): v for k, v in numbers(report).items()})
        self._pending.append((trainer.global_step, epoch))
        self._flush()

    def on_fit_end(self, trainer: Trainer) -> None:
        self._flush()
        self._guard(self._artifacts, self._run_files())
        self._end("FINISHED")

    def on_exception(self, trainer: Trainer, exc: BaseException) -> None:
        self._flush()
        self._guard(self._artifacts, self._run_files())
        # a pruned trial says so itself (tracker_status KILLED); Ctrl-C is KILLED, anything else FAILED
        default = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
        self._end(getattr(exc, "tracker_status", default))

    def state_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.run_id = state.get("run_id")

    # ------------------------------------------------------------------ helpers
    def _flush(self) -> None:
        if self._pending and self._active:
            rows, self._pending = self._pending, []
            self._guard(self._metrics, rows)

    def _end(self, status: str) -> None:
        if self._active:
            self._guard(self._finish, status)
            self._active = False

    def _guard(self, method: Any, *args: Any) -> None:
        """Call the tracker; on failure warn once and stop tracking (the run folder keeps every record)."""
        if not self._active:
            return
        try:
            method(*args)
        except Exception as exc:  # a tracker's network or disk trouble must not end the training run
            self._active = False
            log.warning(
                "%s: stopped tracking this run (%s: %s); its metrics are still in %s",
                self.name,
                type(exc).__name__,
                exc,
                self.out,
            )

    def _run_files(self) -> list[tuple[Path, str]]:
        checkpoints = [self.out / f for f in CHECKPOINTS if (self.out / f).is_file()]
        if not checkpoints and (self.out / "last.pt").is_file():
            checkpoints = [self.out / "last.pt"]
        files = [(p, "checkpoint") for p in checkpoints]
        return files + [(self.out / f, "run") for f in RUN_FILES if (self.out / f).is_file()]

    def _record(self) -> None:
        """Add this run to ``<out>/trackers.json`` (read by ``facemetric report`` and ``facemetric tune``)."""
        path = self.out / TRACKERS_FILE
        try:
            known = json.loads(path.read_text()) if path.is_file() else {}
        except (OSError, ValueError):
            known = {}
        known[self.name] = {"run_id": self.run_id, **self.where()}
        write_json(path, known)


def tracked_runs(run_dir: str | Path) -> dict[str, dict[str, Any]]:
    """``<run_dir>/trackers.json``: the tracked runs of a training run folder (empty when none)."""
    path = Path(run_dir) / TRACKERS_FILE
    if not path.is_file():
        return {}
    try:
        value = json.loads(path.read_text())
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def attach_files(run_dir: str | Path, files: list[Path], folder: str = "report") -> list[str]:
    """Add ``files`` (e.g. the report ``facemetric report RUN`` made) to every tracked run of ``run_dir``
    under ``folder``; returns the trackers that took them. A tracker that cannot is warned about."""
    done = []
    for name, where in tracked_runs(run_dir).items():
        kind = tracker(name)
        if kind is None:
            continue
        try:
            kind.attach(where, files, folder, Path(run_dir))
            done.append(name)
        except Exception as exc:  # the report itself is written; the tracker is a copy
            log.warning(
                "%s: could not add %s to run %s (%s: %s)", name, folder, where.get("run_id"), type(exc).__name__, exc
            )
    return done
