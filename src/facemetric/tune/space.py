"""Search spaces written on the command line: ``--param KEY=KIND(ARGS)``.

=======================  ===================================================================
``float(a, b)``          uniform in [a, b]; ``float(a, b, step)`` on a grid of that step
``log(a, b)``            log-uniform in [a, b] (a > 0): scales, learning rates, gamma
``int(a, b)``            an integer in [a, b]; ``int(a, b, step)``; ``logint(a, b)`` log-uniform
``choice(x, y, ...)``    one of the values, each read as YAML (``arcface``, ``0.25``, ``[64, 64]``)
=======================  ===================================================================

``KEY`` is a config key as ``facemetric train`` overrides take it (``loss.options.gamma``,
``sampler.k``, ``loss.name``). A grid search (``--sampler grid``) enumerates ``choice`` values, the
integers of ``int`` and the steps of ``float(a, b, step)``; a continuous range has no grid and is refused.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

import yaml

from facemetric.core.config import load_yaml
from facemetric.core.errors import ConfigError

KINDS = {
    "float": "float(low, high) or float(low, high, step)",
    "log": "log(low, high), low > 0",
    "int": "int(low, high) or int(low, high, step)",
    "logint": "logint(low, high), low >= 1",
    "choice": "choice(a, b, ...)",
}
_FORM = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*=\s*([a-z]+)\s*\((.*)\)\s*$", re.S)
MAX_GRID = 100_000  # a grid larger than this is certainly a mistake (a step too small)


class SpaceError(ConfigError):
    """A ``--param`` that cannot be read, or a space the chosen sampler cannot search."""


@dataclass(frozen=True)
class Param:
    """One searched config key and the values it may take."""

    key: str
    kind: str
    values: tuple[Any, ...] = ()  # choice
    low: float = 0.0
    high: float = 0.0
    step: float | None = None
    text: str = ""  # as written, for messages and the study's record

    def choices(self) -> list[Any]:
        """The choice values as Optuna stores them: numbers, text, booleans, null; a list or mapping as JSON."""
        return [json.dumps(v) if isinstance(v, (list, dict)) else v for v in self.values]

    def config_value(self, stored: Any) -> Any:
        """A value Optuna returned for this parameter, as the config takes it (JSON back to a list)."""
        if self.kind == "choice" and isinstance(stored, str):
            for value, encoded in zip(self.values, self.choices()):
                if encoded == stored:
                    return value
        if self.kind == "float" and self.step is not None:
            return round(float(stored), 12)  # a step's multiple as written: 0.30000000000000004 -> 0.3
        return stored

    def suggest(self, trial: Any) -> Any:
        """This parameter's value for an Optuna trial, as the config takes it."""
        if self.kind == "choice":
            return self.config_value(trial.suggest_categorical(self.key, self.choices()))
        if self.kind in ("int", "logint"):
            step = int(self.step) if self.step is not None else 1
            return trial.suggest_int(self.key, int(self.low), int(self.high), step=step, log=self.kind == "logint")
        return self.config_value(
            trial.suggest_float(self.key, self.low, self.high, step=self.step, log=self.kind == "log")
        )

    def grid(self) -> list[Any]:
        """Every value a grid search visits (choices as Optuna stores them)."""
        if self.kind == "choice":
            return self.choices()
        if self.kind == "int":
            return list(range(int(self.low), int(self.high) + 1, int(self.step or 1)))
        if self.kind == "float" and self.step is not None:
            count = int(math.floor((self.high - self.low) / self.step + 1e-9)) + 1
            return [round(self.low + i * self.step, 12) for i in range(count)]
        raise SpaceError(
            f"--param {self.text!r}: a grid search needs a finite set of values; write choice(...), int(low, high) "
            f"or float(low, high, step) for {self.key}, or use --sampler tpe or random"
        )


def _numbers(args: list[Any], text: str, kind: str) -> list[float]:
    if len(args) not in (2, 3) or (kind in ("log", "logint") and len(args) != 2):
        raise SpaceError(f"--param {text!r}: {kind} takes {KINDS[kind]}, got {len(args)} value(s)")
    bad = [a for a in args if isinstance(a, bool) or not isinstance(a, (int, float))]
    if bad:
        raise SpaceError(f"--param {text!r}: {bad[0]!r} is not a number; {kind} takes {KINDS[kind]}")
    if kind in ("int", "logint") and any(not float(a).is_integer() for a in args):
        raise SpaceError(f"--param {text!r}: int and logint take whole numbers; use float(...) or log(...)")
    low, high = float(args[0]), float(args[1])
    if not low < high:
        raise SpaceError(f"--param {text!r}: low ({args[0]}) must be below high ({args[1]})")
    if kind == "log" and low <= 0 or kind == "logint" and low < 1:
        raise SpaceError(f"--param {text!r}: a log scale needs low > 0 (logint: >= 1), got {args[0]}")
    if len(args) == 3 and not float(args[2]) > 0:
        raise SpaceError(f"--param {text!r}: the step must be > 0, got {args[2]}")
    return [float(a) for a in args]


def parse_param(text: str) -> Param:
    """``loss.options.gamma=log(8,1024)`` -> :class:`Param`; a clear :class:`SpaceError` otherwise."""
    match = _FORM.match(text)
    if not match:
        raise SpaceError(
            f"--param {text!r}: expected KEY=KIND(ARGS), e.g. loss.options.gamma=log(8,1024), "
            f"sampler.k=int(2,8) or loss.name=choice(arcface,cosface); kinds: {', '.join(KINDS)}"
        )
    key, kind, inside = match.groups()
    if kind not in KINDS:
        raise SpaceError(f"--param {text!r}: unknown kind {kind!r}; use one of {'; '.join(KINDS.values())}")
    if len(key.split(".")) < 2:
        raise SpaceError(f"--param {text!r}: {key!r} is not a config key; write section.key, e.g. optim.lr")
    try:
        args = load_yaml(f"[{inside}]")
    except yaml.YAMLError:
        raise SpaceError(f"--param {text!r}: the values in ({inside}) cannot be read") from None
    if kind == "choice":
        if not args:
            raise SpaceError(f"--param {text!r}: choice needs at least one value")
        if len({repr(a) for a in args}) != len(args):
            raise SpaceError(f"--param {text!r}: a value is listed twice")
        return Param(key, kind, values=tuple(args), text=text)
    numbers = _numbers(args, text, kind)
    step = numbers[2] if len(numbers) == 3 else None
    param = Param(key, kind, low=numbers[0], high=numbers[1], step=step, text=text)
    if step is not None and (param.high - param.low) / step > MAX_GRID:
        raise SpaceError(f"--param {text!r}: more than {MAX_GRID:,} steps; use a larger step")
    return param


def parse_space(texts: list[str]) -> list[Param]:
    """Every ``--param``; each key at most once."""
    params = [parse_param(t) for t in texts]
    keys = [p.key for p in params]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise SpaceError(f"--param: {', '.join(twice)} given more than once; give each key one space")
    if not params:
        raise SpaceError(
            "no --param given: name at least one config key to search, e.g. --param optim.lr=log(1e-4,1e-2)"
        )
    return params
