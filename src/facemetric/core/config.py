"""Typed experiment configuration: YAML in, checked, saved beside every run.

Every key has a default, so a config file names only what it changes. Each section is a
pydantic model: an unknown key, a wrong type (``train.epochs=five``, ``sampler.p=2.5``) or a
value out of range is refused with one line naming the key, the value and what is allowed
(:class:`~facemetric.core.errors.ConfigError`). Components are named, with their options, in
``{name, options}`` groups (model, loss, miner, optim, scheduler, callbacks); whether a name is
registered and whether its options fit its builder's signature is checked where the registries
live (``facemetric.train.check.check_config``), before any data is read.

``load_config(path, overrides)`` applies ``key.path=value`` overrides, the value parsed as YAML
(``train.epochs=5``, ``loss.options={margin: 0.3}``, ``loss.options.margin=0.3``).

The sections are defined one group per module (:mod:`.config_data`: data, sampler, augment;
:mod:`.config_model`: model, loss, miner, distill; :mod:`.config_train`: optim, scheduler, train,
monitor); this module puts them together and is where every config name is imported from.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field, ValidationError

from facemetric.core.atomic import write_atomic
from facemetric.core.config_data import AugmentConfig, DataConfig, SamplerConfig
from facemetric.core.config_model import DistillConfig, LossConfig, MinerConfig, MinerStage, ModelConfig
from facemetric.core.config_section import Options, Section, parse_count
from facemetric.core.config_train import (
    CallbackConfig,
    DistributedConfig,
    Logger,
    MonitorConfig,
    OptimConfig,
    SchedulerConfig,
    TrackingConfig,
    TrainConfig,
)
from facemetric.core.errors import ConfigError

__all__ = [
    "AugmentConfig",
    "CallbackConfig",
    "Config",
    "ConfigError",
    "DataConfig",
    "DistillConfig",
    "DistributedConfig",
    "Logger",
    "LossConfig",
    "MinerConfig",
    "MinerStage",
    "ModelConfig",
    "MonitorConfig",
    "OptimConfig",
    "Options",
    "SamplerConfig",
    "SchedulerConfig",
    "Section",
    "TrackingConfig",
    "TrainConfig",
    "apply_overrides",
    "config_from_dict",
    "load_config",
    "load_yaml",
    "parse_count",
]


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
