"""Typed experiment configuration: YAML in, validated, saved beside every run.

Every key has a default, so a config file only names what it changes. Unknown keys are
errors (a typo must not silently fall back to a default). ``apply_overrides`` takes
``section.key=value`` strings, the value parsed as YAML (``train.epochs=5``,
``loss.options={margin: 0.3}``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from facemetric.data.augment import AugmentConfig
from facemetric.mining.monitor import MonitorConfig


class ConfigError(ValueError):
    """A config file or override is invalid; the message names the key."""


@dataclass
class DataConfig:
    source: str | None = None  # a `facemetric prepare` output (read memory-mapped), or a folder / CSV of photos
    layout: str = "auto"  # auto | folders | csv | flat
    flat_pattern: str = r"^([^.]+)"  # identity regex for the flat layout
    image_size: list[int] = field(default_factory=lambda: [64, 64])  # height, width
    channels: int = 3  # 3 = RGB (grayscale replicated), 1 = grayscale
    crop: float = 1.0  # central fraction kept before resizing (LFW deep-funneled: 0.6)
    val_identities: float = 0.1  # held-out identities: a count (>= 1) or a fraction (< 1) of those with 2+ images
    split_seed: int = 0
    val_pairs: int = 3000  # at most this many genuine validation pairs (and as many impostor pairs)
    cache_dir: str | None = ".cache/facemetric"  # decoded-image cache for photo sources; null disables
    workers: int = 1  # DataLoader processes building augmented batches (0: in the training process)


@dataclass
class ModelConfig:
    name: str = "iresnet_tiny"
    embedding_dim: int = 128
    options: dict[str, Any] = field(default_factory=dict)  # extra builder arguments
    max_params: int | None = None  # refuse a model with more parameters (e.g. 21M or 21000000); null: no cap


@dataclass
class LossConfig:
    name: str = "arcface"  # any name of `facemetric.losses.available_losses()`
    options: dict[str, Any] = field(default_factory=dict)  # e.g. {scale: 32, margin: 0.5}
    # from epoch N (1-based) on, these options replace those in `options`; FaceNet's recipe:
    # options {mining: semi_hard}, schedule {11: {mining: batch_hard}} = semi-hard for 10 epochs
    schedule: dict[int, dict[str, Any]] = field(default_factory=dict)


@dataclass
class SamplerConfig:
    p: int = 16  # identities per batch
    k: int = 4  # images per identity
    short_policy: str = "repeat"  # identities with < k images: repeat (with replacement) | drop
    min_images: int = 2  # identities with fewer images are never used for training
    batches_per_epoch: int | None = None  # default: training images // (p * k)


@dataclass
class OptimConfig:
    name: str = "adamw"  # adamw | sgd (Nesterov momentum)
    lr: float = 0.002  # adamw: 1e-3..3e-3; sgd: about 0.1
    momentum: float = 0.9  # sgd only
    weight_decay: float = 0.05  # adamw: decoupled, ~0.05; sgd: ~5e-4
    warmup_epochs: float = 1.0  # linear warm-up, then cosine decay to 0
    min_lr_ratio: float = 0.01


@dataclass
class TrainConfig:
    epochs: int = 20
    val_every: int = 1  # validate every N epochs (and after the last one)
    checkpoint_every_steps: int = 0  # also checkpoint mid-epoch every N steps (0: epoch ends only)
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    amp: bool | str = "auto"  # bfloat16 autocast: auto (where measured faster), true or false
    channels_last: bool = True  # channels-last activations (faster CPU convolutions: BENCHMARKS.md, models)
    threads: int = 0  # torch CPU threads; 0 = all cores
    out: str = "runs/default"
    progress: bool = True


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    monitor: MonitorConfig = field(default_factory=MonitorConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))


def _build_section(cls: type, values: dict[str, Any], where: str) -> Any:
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(values).__name__}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; valid keys: {sorted(known)}")
    return cls(**values)


def config_from_dict(values: dict[str, Any] | None) -> Config:
    """Validate a nested dict (as read from YAML) into a :class:`Config`."""
    values = values or {}
    sections = {f.name: f.type for f in dataclasses.fields(Config)}
    unknown = sorted(set(values) - set(sections))
    if unknown:
        raise ConfigError(f"unknown config section(s) {unknown}; valid sections: {sorted(sections)}")
    built = {}
    for f in dataclasses.fields(Config):
        cls = f.default_factory().__class__  # type: ignore[misc]
        built[f.name] = _build_section(cls, values.get(f.name) or {}, f.name)
    cfg = Config(**built)
    validate(cfg)
    return cfg


def parse_count(value: Any, where: str) -> int | None:
    """A positive count written as 21000000, 2.1e7, "21M" or "500K"; None stays None."""
    if value is None:
        return None
    text = str(value).strip().upper().replace("_", "").replace(",", "")
    scale = {"K": 1e3, "M": 1e6, "G": 1e9}.get(text[-1:], 1)
    try:
        number = float(text[:-1] if scale != 1 else text) * scale
    except ValueError:
        raise ConfigError(f"{where}: expected a count such as 21000000 or 21M, got {value!r}") from None
    if number <= 0 or number != number:
        raise ConfigError(f"{where}: must be > 0, got {value!r}")
    return int(number)


def validate(cfg: Config) -> None:
    """Cross-field checks with messages that say what to change."""
    cfg.model.max_params = parse_count(cfg.model.max_params, "model.max_params")
    if cfg.train.amp not in ("auto", True, False):
        raise ConfigError(f"train.amp must be auto, true or false, got {cfg.train.amp!r}")
    if len(cfg.data.image_size) != 2:
        raise ConfigError(f"data.image_size must be [height, width], got {cfg.data.image_size}")
    if cfg.sampler.short_policy not in ("repeat", "drop"):
        raise ConfigError(f"sampler.short_policy must be repeat or drop, got {cfg.sampler.short_policy!r}")
    if cfg.optim.name not in ("sgd", "adamw"):
        raise ConfigError(f"optim.name must be sgd or adamw, got {cfg.optim.name!r}")
    if cfg.train.epochs < 1 or cfg.train.val_every < 1:
        raise ConfigError("train.epochs and train.val_every must be >= 1")
    for epoch, options in cfg.loss.schedule.items():
        if not isinstance(epoch, int) or epoch < 1 or not isinstance(options, dict):
            raise ConfigError(f"loss.schedule: expected {{epoch >= 1: {{option: value}}}}, got {epoch!r}: {options!r}")


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Read a YAML config (or the defaults when ``path`` is None) and apply overrides."""
    values: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        try:
            values = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of sections")
    return config_from_dict(apply_overrides(values, overrides or []))


def apply_overrides(values: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of ``values`` with each ``section.key=value`` override set."""
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in values.items()}
    for item in overrides:
        key, sep, raw = item.partition("=")
        parts = key.strip().split(".")
        if not sep or len(parts) != 2 or not all(parts):
            raise ConfigError(f"override {item!r}: expected section.key=value, e.g. train.epochs=5")
        section, name = parts
        out.setdefault(section, {})
        if not isinstance(out[section], dict):
            raise ConfigError(f"override {item!r}: {section} is not a section")
        out[section][name] = yaml.safe_load(raw) if raw.strip() else None
    return out
