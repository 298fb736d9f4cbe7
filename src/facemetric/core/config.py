"""Typed experiment configuration: YAML in, checked, saved beside every run.

Every key has a default, so a config file names only what it changes. Each section is a
pydantic model: an unknown key, a wrong type (``train.epochs=five``, ``sampler.p=2.5``) or a
value out of range is refused with one line naming the key, the value and what is allowed
(:class:`~facemetric.core.errors.ConfigError`). Components are named, with their options, in
``{name, options}`` groups (model, loss, miner, optim, scheduler, callbacks); whether a name is
registered and whether its options fit its builder's signature is checked where the registries
live (``facemetric.train.build.check_config``), before any data is read.

``load_config(path, overrides)`` applies ``key.path=value`` overrides, the value parsed as YAML
(``train.epochs=5``, ``loss.options={margin: 0.3}``, ``loss.options.margin=0.3``).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from facemetric.core.atomic import write_atomic
from facemetric.core.errors import ConfigError

Options = dict[str, Any]


class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads ``3e-5`` as a string (it wants ``3.0e-5``); people write learning rates that way."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def load_yaml(text: str) -> Any:
    """``yaml.safe_load`` that also reads ``1e-5`` as a number."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506  (a SafeLoader subclass)


class Section(BaseModel):
    """A config section: strict types, unknown keys refused, checked again on assignment."""

    model_config = ConfigDict(extra="forbid", strict=True, validate_assignment=True)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()


def parse_count(value: Any, where: str) -> int | None:
    """A positive count written as 21000000, 2.1e7, "21M" or "500K"; None stays None."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ConfigError(f"{where}: expected a count such as 21000000 or 21M, got {value!r}")
    text = str(value).strip().upper().replace("_", "").replace(",", "")
    scale = {"K": 1e3, "M": 1e6, "G": 1e9}.get(text[-1:], 1)
    try:
        number = float(text[:-1] if scale != 1 else text) * scale
    except ValueError:
        raise ConfigError(f"{where}: expected a count such as 21000000 or 21M, got {value!r}") from None
    if not number > 0 or math.isinf(number):
        raise ConfigError(f"{where}: must be > 0, got {value!r}")
    return int(number)


class DataConfig(Section):
    source: str | None = None  # a `facemetric prepare` output (read memory-mapped), or a folder / CSV of photos
    # more people to train on, as extra classes: other sources cut the same way (e.g. two `prepare --align dlib`
    # caches of one size); each is split like `source` and its held-out people are left out of training
    extra_sources: list[str] = Field(default_factory=list)
    layout: Literal["auto", "folders", "csv", "flat"] = "auto"
    flat_pattern: str = r"^([^.]+)"  # identity regex for the flat layout
    image_size: list[int] = Field(default_factory=lambda: [64, 64], min_length=2, max_length=2)  # height, width
    channels: Literal[1, 3] = 3  # 3 = RGB (grayscale replicated), 1 = grayscale
    crop: float = Field(1.0, gt=0.05, le=1.0)  # central fraction kept before resizing (LFW deep-funneled: 0.6)
    # held-out identities: a count (>= 1) or a fraction (< 1) of those with 2+ images
    val_identities: int | float = 0.1
    # hold out whole groups of identities: a regex whose first group names an identity's group (patches from
    # `prepare --patches`: ^([^/]+)/, the sequence), so no group is on both sides; val_identities then counts groups
    val_group: str | None = None
    # closed-set classification (same people, other images): a count (>= 1) or a fraction (< 1) of each
    # training person's images held out of training, whose identity the classifier head then predicts
    val_images: int | float = 0
    # or a folder / CSV / prepared cache of other images of the training people (a course's dev/ folder)
    dev_source: str | None = None
    split_seed: int = 0
    val_pairs: int = Field(3000, ge=1)  # at most this many genuine validation pairs (and as many impostor pairs)
    cache_dir: str | None = ".cache/facemetric"  # decoded-image cache for photo sources; null disables
    workers: int = Field(1, ge=0)  # DataLoader processes building augmented batches (0: in the training process)

    @field_validator("image_size")
    @classmethod
    def _size(cls, value: list[int]) -> list[int]:
        if min(value) < 8:
            raise ValueError(f"each side must be at least 8 pixels, got {value}")
        return value

    @field_validator("flat_pattern", "val_group")
    @classmethod
    def _pattern(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            compiled = re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression ({exc})") from None
        if compiled.groups < 1:
            raise ValueError("needs a capturing group, e.g. ^([^.]+) (flat_pattern) or ^([^/]+)/ (val_group)")
        return value

    @field_validator("val_identities", "val_images", mode="before")
    @classmethod
    def _held_out(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError("expected a count (0, 1, 2 ...) or a fraction between 0 and 1")
        if isinstance(value, float) and not 0.0 < value < 1.0:
            if value.is_integer() and value >= 0:
                return int(value)
            raise ValueError("a fraction must be between 0 and 1 (exclusive); a count is a whole number >= 0")
        if value < 0:
            raise ValueError("a count must be >= 0")
        return value


class ModelConfig(Section):
    name: str = "iresnet_tiny"  # any name of `facemetric models`
    embedding_dim: int = Field(128, ge=1)
    options: Options = Field(default_factory=dict)  # the backbone's own options (checked against its signature)
    max_params: int | None = None  # refuse a model with more parameters (e.g. 21M or 21000000); null: no cap
    pretrained: Literal["dlib"] | None = None  # start from trained weights: dlib (model.name: dlib_resnet)
    init: str | None = None  # start from this checkpoint's model weights (a run's best.pt), e.g. to fine-tune it
    freeze: int = Field(0, ge=0)  # keep the first N parts fixed (dlib_resnet: 1 stem, 2-6 residual levels, 7 all)
    # embed every face with its mirror image (the unit-length sum of both) wherever the trained model is used:
    # validation, eval, galleries, serve, ONNX export; twice the cost of an embedding, not used in training steps
    mirror: bool = False

    @field_validator("max_params", mode="before")
    @classmethod
    def _count(cls, value: Any) -> int | None:
        try:
            return parse_count(value, "model.max_params")
        except ConfigError as exc:
            raise ValueError(str(exc).split(": ", 1)[1]) from None


class LossConfig(Section):
    name: str = "arcface"  # any name of `facemetric.losses.available_losses()`
    options: Options = Field(default_factory=dict)  # e.g. {scale: 32, margin: 0.5}
    # from epoch N (1-based) on, these options replace those in `options`, e.g. {5: {margin: 0.5}}
    schedule: dict[int, Options] = Field(default_factory=dict)
    # Partial FC for margin heads: each step uses this fraction of the class centres (all those the batch's
    # labels need, plus random others); under torchrun the centres are also split over the processes
    sample_rate: float = Field(1.0, gt=0.0, le=1.0)

    @field_validator("schedule")
    @classmethod
    def _epochs(cls, value: dict[int, Options]) -> dict[int, Options]:
        bad = [e for e in value if e < 1]
        if bad:
            raise ValueError(f"epochs are counted from 1, got {bad[0]}")
        return value


class MinerStage(Section):
    name: str
    options: Options = Field(default_factory=dict)


class MinerConfig(Section):
    """Which pairs or triplets a pair loss learns from; null name: the loss's own default."""

    name: str | None = None  # batch_hard, semi_hard, all_triplets, multi_similarity, all_pairs ...
    options: Options = Field(default_factory=dict)
    # from epoch N (1-based) on, this miner: FaceNet's recipe is name semi_hard, schedule {11: {name: batch_hard}}
    schedule: dict[int, MinerStage] = Field(default_factory=dict)

    @field_validator("schedule")
    @classmethod
    def _epochs(cls, value: dict[int, MinerStage]) -> dict[int, MinerStage]:
        bad = [e for e in value if e < 1]
        if bad:
            raise ValueError(f"epochs are counted from 1, got {bad[0]}")
        return value


class SamplerConfig(Section):
    p: int = Field(16, ge=2)  # identities per batch
    k: int = Field(4, ge=1)  # images per identity
    short_policy: Literal["repeat", "drop"] = "repeat"  # identities with < k images: sample with replacement or drop
    min_images: int = Field(2, ge=1)  # identities with fewer images are never used for training
    batches_per_epoch: int | None = Field(None, ge=1)  # default: training images // (p * k)


class AugmentConfig(Section):
    """Random changes applied independently to each image of a batch.

    ``shift``: translation up to this fraction of the size (the uncovered border repeats the
    nearest edge pixels); ``flip``: horizontal mirror with probability 0.5; ``brightness`` /
    ``contrast`` / ``saturation``: +- relative jitter; ``grayscale``: probability of dropping
    colour; ``cutout``: probability of blanking a square of ``cutout_size`` of the side;
    ``rotate`` (degrees) / ``scale`` (+- zoom): an affine warp, the one costly part (off by
    default). Zero disables each part.
    """

    flip: bool = True
    # 0: measured on dlib-aligned LFW, translation costs 7 points at a short budget and buys robustness to
    # misalignment that aligned test photos never need (BENCHMARKS.md); unaligned photos (ORL): about 0.08
    shift: float = Field(0.0, ge=0.0, lt=0.5)
    rotate: float = Field(0.0, ge=0.0, le=180.0)
    scale: float = Field(0.0, ge=0.0, lt=1.0)
    brightness: float = Field(0.2, ge=0.0, le=1.0)
    contrast: float = Field(0.2, ge=0.0, le=1.0)
    saturation: float = Field(0.0, ge=0.0, le=1.0)
    grayscale: float = Field(0.0, ge=0.0, le=1.0)
    cutout: float = Field(0.0, ge=0.0, le=1.0)
    cutout_size: float = Field(0.3, gt=0.0, le=1.0)


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


class DistillConfig(Section):
    """Knowledge distillation (``loss.name: distill``): the student learns the teacher's embeddings.

    ``teacher`` is anything ``facemetric embed --model`` takes: ``dlib-resnet``, a run's ``best.pt``,
    an ``.onnx`` file. It cuts each training photo its own way (its ``source`` path, so the student's
    crops may differ from the teacher's) and embeds it once, and mirrored when ``mirror`` (matched to
    the student's flipped views); the table is cached, so no epoch pays the teacher again.
    ``center`` learns the teacher's space with its mean removed (what tells people apart, spread over
    the sphere). ``labels``: weight of a labelled margin loss (``label_loss``) added to the distillation
    terms (0: the photos' identities are not used at all). ``online``: instead of the table, the teacher
    embeds every batch as augmented for the student (resized to its input), so the targets follow any
    augmentation; each step pays the teacher's forward pass, and the student's crops must be cut the way
    the teacher reads them (dlib: ``prepare --align dlib-chip --size 112``).
    """

    teacher: str | None = None
    online: bool = False
    mirror: bool = True  # (table only) also embed each photo's mirror image, the target of a flipped view
    # subtract the teacher's mean embedding (over the training photos) and re-normalise: dlib's unit vectors of two
    # different people have cosine 0.84 (a narrow cone a batch-normalised student cannot reach)
    center: bool = True
    workers: int | None = Field(None, ge=0)  # face-detection processes for the teacher's pass (None: automatic)
    labels: float = Field(0.0, ge=0.0)
    label_loss: LossConfig = Field(default_factory=LossConfig)


class Config(Section):
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    miner: MinerConfig = Field(default_factory=MinerConfig)
    sampler: SamplerConfig = Field(default_factory=SamplerConfig)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    monitor: MonitorConfig = Field(default_factory=MonitorConfig)
    distill: DistillConfig = Field(default_factory=DistillConfig)

    def save(self, path: str | Path) -> None:
        """The resolved config as YAML (every key), atomically."""
        write_atomic(path, yaml.safe_dump(self.to_dict(), sort_keys=False))


# keys that moved, and where to: a config written for an older facemetric gets told
MOVED = {
    "optim.momentum": "optim.options.momentum",
    "optim.warmup_epochs": "scheduler.options.warmup_epochs",
    "optim.min_lr_ratio": "scheduler.options.min_lr_ratio",
}


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The section model at ``loc`` (a path of field names from :class:`Config`), if there is one."""
    model: Any = Config
    for part in loc:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        if field is None:
            return None
        annotation = field.annotation
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return model


def _describe(error: Any) -> str:
    loc = tuple(error["loc"])
    key = ".".join(str(p) for p in loc)
    if error["type"] == "extra_forbidden":
        parent = _model_at(loc[:-1])
        moved = MOVED.get(key)
        if moved:
            return f"{key}: this key is now {moved}"
        valid = ", ".join(parent.model_fields) if parent is not None else ""
        if len(loc) == 1:
            return f"unknown config section {loc[0]!r}; valid sections: {valid}"
        return f"{'.'.join(map(str, loc[:-1]))}: unknown key {loc[-1]!r}; valid keys: {valid}"
    message = str(error["msg"])
    message = message.replace("Value error, ", "").replace("Input should be ", "expected ")
    if error["type"] == "missing":
        return f"{key}: required, not given"
    value = error.get("input")
    if "[key]" in loc:
        return f"{'.'.join(str(p) for p in loc if p != '[key]')}: the key {value!r} is not valid: {message}"
    return f"{key}: {value!r} is not valid: {message}"


def config_from_dict(values: dict[str, Any] | None) -> Config:
    """Validate a nested dict (as read from YAML) into a :class:`Config`; one line per problem found."""
    if values is not None and not isinstance(values, dict):
        raise ConfigError(f"the config must be a mapping of sections, got {type(values).__name__}")
    sections = {k: ({} if v is None else v) for k, v in (values or {}).items()}
    try:
        return Config.model_validate(sections)
    except ValidationError as exc:
        raise ConfigError("; ".join(dict.fromkeys(_describe(e) for e in exc.errors()))) from None


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Read a YAML config (or the defaults when ``path`` is None) and apply ``key.path=value`` overrides."""
    values: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        values = _read_yaml(path)
    return config_from_dict(apply_overrides(values, overrides or []))


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        values = load_yaml(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a text file ({exc.reason})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}: not valid YAML{where}: {problem}") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ConfigError(
            f"{path}: the top level must be a mapping of sections (data:, model:, train: ...), "
            f"got a {type(values).__name__}"
        )
    return values


def _parse_value(raw: str, item: str) -> Any:
    if not raw.strip():
        return None
    try:
        return load_yaml(raw)
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or "cannot be parsed"
        raise ConfigError(f"override {item!r}: the value is not valid YAML ({problem})") from None


def apply_overrides(values: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """A copy of ``values`` with each ``section.key=value`` (or deeper ``section.key.sub=value``) set."""
    out = _copy(values)
    for item in overrides:
        key, sep, raw = item.partition("=")
        parts = key.strip().split(".")
        if not sep or len(parts) < 2 or not all(parts):
            raise ConfigError(f"override {item!r}: expected section.key=value, e.g. train.epochs=5")
        node = out
        for depth, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"override {item!r}: {'.'.join(parts[: depth + 1])} is not a section")
            node = child
        node[parts[-1]] = _parse_value(raw, item)
    return out


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    return value
