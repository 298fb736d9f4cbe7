"""``train.loggers: [wandb]``: the run in Weights & Biases (``pip install 'facemetric[wandb]'``).

``train.tracking.wandb_mode: auto`` (the default) logs online when you are logged in (``WANDB_API_KEY``
or ``wandb login``) and offline otherwise: the run is then written under ``<out>/wandb/`` and
``wandb sync <out>/wandb/offline-run-*`` uploads it later. The project is ``train.tracking.experiment``.
"""

from __future__ import annotations

import netrc
import os
import re
from pathlib import Path
from typing import Any

from facemetric.core.config import Config
from facemetric.train.callbacks.registry import register_callback
from facemetric.train.callbacks.tracking import TrackerCallback


def logged_in() -> bool:
    """Whether W&B has credentials here (an API key in the environment or in ~/.netrc), without asking it."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (OSError, netrc.NetrcParseError):
        return False


def resolve_mode(mode: str) -> str:
    """``auto`` -> online when logged in, else offline; ``$WANDB_MODE`` wins over ``auto``."""
    if mode != "auto":
        return mode
    if os.environ.get("WANDB_MODE") in ("offline", "online", "disabled"):
        return os.environ["WANDB_MODE"]
    return "online" if logged_in() else "offline"


def artifact_name(text: str) -> str:
    """W&B artifact names: letters, digits, dashes, underscores and dots."""
    return re.sub(r"[^A-Za-z0-9_.-]", "-", text)


@register_callback("wandb")
class WandbTracker(TrackerCallback):
    """Config, metrics (per step and per epoch) and artifacts of the run in W&B."""

    name = "wandb"
    requires = "wandb"

    @classmethod
    def attach(cls, where: dict[str, Any], files: list[Path], folder: str, run_dir: Path) -> None:
        """Add files as an artifact of type ``folder``: the run is reopened (offline: a new offline-run
        folder of the same id, which ``wandb sync`` merges)."""
        import wandb

        run = wandb.init(
            project=where["project"],
            id=where["run_id"],
            resume="allow",
            dir=str(run_dir),
            mode=where["mode"],
            reinit="create_new",
        )
        artifact = wandb.Artifact(artifact_name(f"{run.name or where['run_id']}-{folder}"), type=folder)
        for path in files:
            artifact.add_file(str(path), name=path.name)
        run.log_artifact(artifact)
        run.finish()

    def __init__(self, cfg: Config, out: str | Path) -> None:
        super().__init__(cfg, out)
        self.mode = resolve_mode(self.tracking.wandb_mode)
        self.run: Any = None

    def where(self) -> dict[str, Any]:
        return {"mode": self.mode, "project": self.tracking.experiment, "dir": str(self.out.resolve())}

    def _start(self, resume_id: str | None) -> str:
        import wandb

        self.out.mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(
            project=self.tracking.experiment,
            entity=self.tracking.wandb_entity,
            name=self.run_name,
            dir=str(self.out),
            mode=self.mode,  # type: ignore[arg-type]  # checked by the config's Literal
            config=self.cfg.to_dict(),
            tags=[f"{k}={v}" for k, v in self.tracking.tags.items()] or None,
            id=resume_id,
            resume="allow" if resume_id else None,
            reinit="create_new",  # several runs in one process (a tuning study)
        )
        return str(self.run.id)

    def _params(self, params: dict[str, str]) -> None:
        """W&B takes the nested config at ``init``; nothing more to send."""

    def _metrics(self, rows: list[tuple[int, dict[str, float]]]) -> None:
        for step, values in rows:
            self.run.log(values, step=step)

    def _artifacts(self, files: list[tuple[Path, str]]) -> None:
        import wandb

        for folder, kind in (("checkpoint", "model"), ("run", "run-files")):
            chosen = [p for p, f in files if f == folder]
            if not chosen:
                continue
            artifact = wandb.Artifact(artifact_name(f"{self.run_name}-{folder}"), type=kind)
            for path in chosen:
                artifact.add_file(str(path), name=path.name)
            self.run.log_artifact(artifact)

    def _finish(self, status: str) -> None:
        self.run.finish(exit_code=0 if status == "FINISHED" else 1)
        self.run = None
