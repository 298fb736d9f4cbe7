"""Config sections of how a run trains: ``optim``, ``scheduler``, ``train`` (with its callbacks, trackers
and processes) and ``monitor``."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator

from facemetric.core.config_section import Options, Section


class OptimConfig(Section):
    name: str = "adamw"  # any registered optimizer: adamw, sgd (Nesterov momentum) ...
    lr: float = Field(0.002, gt=0.0)  # adamw: 1e-3..3e-3; sgd: about 0.1
    weight_decay: float = Field(0.05, ge=0.0)  # adamw: decoupled, ~0.05; sgd: ~5e-4
    options: Options = Field(default_factory=dict)  # the optimizer's own options, e.g. sgd {momentum: 0.9}
    backbone_lr_scale: float = Field(1.0, gt=0.0)  # the backbone learns at lr x this (fine-tuning: ~0.1); heads at lr


class SchedulerConfig(Section):
    name: str = "warmup_cosine"  # any registered scheduler: warmup_cosine, constant ...
    options: Options = Field(default_factory=dict)  # warmup_cosine: {warmup_epochs: 1.0, min_lr_ratio: 0.01}


class CallbackConfig(Section):
    name: str
    options: Options = Field(default_factory=dict)


class DistributedConfig(Section):
    """Training on several processes (``torchrun --nproc_per_node=N -m facemetric train``); unused in one."""

    backend: Literal["auto", "gloo", "nccl"] = "auto"  # auto: nccl on CUDA, gloo on CPU
    timeout_s: float = Field(600.0, gt=0)  # a rank waiting this long for the others (dead or hung) stops the run
    sync_bn: bool = False  # batch-norm statistics over the global batch (CUDA only; torch has no CPU SyncBatchNorm)


Logger = Literal["tensorboard", "mlflow", "wandb"]


class TrackingConfig(Section):
    """Where ``train.loggers`` other than TensorBoard send a run (``facemetric[mlflow]``, ``facemetric[wandb]``)."""

    experiment: str = "facemetric"  # the MLflow experiment and the W&B project
    run_name: str | None = None  # default: the run folder's name
    # MLflow's tracking URI; default: $MLFLOW_TRACKING_URI, else a local store sqlite:///mlruns/mlflow.db
    # (artifacts in mlruns/artifacts) in the current folder: `mlflow ui --backend-store-uri sqlite:///mlruns/mlflow.db`
    mlflow_uri: str | None = None
    # W&B: offline (files under the run folder, `wandb sync` uploads them later), online, or auto: online when
    # logged in (WANDB_API_KEY or `wandb login`), else offline
    wandb_mode: Literal["auto", "offline", "online"] = "auto"
    wandb_entity: str | None = None  # W&B team or user (default: your default entity)
    tags: dict[str, str] = Field(default_factory=dict)  # extra tags on the tracked run (tune adds the trial)


class TrainConfig(Section):
    epochs: int = Field(20, ge=1)
    val_every: int = Field(1, ge=1)  # validate every N epochs (and after the last one)
    checkpoint_every_steps: int = Field(0, ge=0)  # also checkpoint mid-epoch every N steps (0: epoch ends only)
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: Literal["auto", True, False] = "auto"  # bfloat16 autocast: auto (where measured faster), true or false
    channels_last: bool = True  # channels-last activations (faster CPU convolutions: BENCHMARKS.md, models)
    threads: int = Field(0, ge=0)  # torch CPU threads; 0 = all cores
    out: str = "runs/default"
    progress: bool = True
    # where metrics go besides the run folder's CSV / JSONL files: tensorboard (<out>/tensorboard), mlflow, wandb
    loggers: list[Logger] = Field(default_factory=lambda: list[Logger](["tensorboard"]))
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    callbacks: list[CallbackConfig] = Field(default_factory=list)  # extra callbacks, e.g. [{name: early_stopping}]
    distributed: DistributedConfig = Field(default_factory=DistributedConfig)

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", value):
            raise ValueError("expected auto, cpu, cuda, cuda:N or mps")
        return value

    @field_validator("amp", mode="before")
    @classmethod
    def _amp(cls, value: Any) -> Any:
        if value != "auto" and not isinstance(value, bool):
            raise ValueError("expected auto, true or false")
        return value


class MonitorConfig(Section):
    """Collapse-monitor settings (see ``facemetric.train.callbacks.collapse``)."""

    enabled: bool = True
    window: int = Field(20, ge=1)  # steps averaged before judging
    min_mean_distance: float = Field(0.1, ge=0.0)  # unit-sphere embeddings: random ~1.4, collapsed -> 0
    max_at_margin: float = Field(0.9, ge=0.0, le=1.0)  # fraction of anchors with d(a,p) == d(a,n)
    tol: float = Field(0.01, gt=0.0)  # distance difference counted as "equal" (hinge triplets then cost ~ the margin)
    stop: bool = False  # raise CollapseError (the run saves a checkpoint and stops)
