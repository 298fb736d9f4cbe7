"""How the report writes numbers and names: rates and thresholds with 4 decimals, tiny values in e-notation,
mapping keys ("1e-03", "10") sorted by value, field names as words."""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel


def num(x: Any) -> str:
    """A number for the report: rates and thresholds with 4 decimals, tiny values in e-notation."""
    if x is None:
        return "n/a"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        if not math.isfinite(x):
            return str(x)
        return f"{x:.1e}" if x != 0 and abs(x) < 1e-4 else f"{x:.4f}"
    return str(x)


def as_float(key: str) -> float | None:
    """A rate or K written as a mapping key ("1e-03", "10") as a number, else None."""
    try:
        return float(key)
    except ValueError:
        return None


def key_order(key: str) -> float:
    """Sort key of such mapping keys: by value, unparsable keys first."""
    return as_float(key) or 0.0


def join(*parts: str | None) -> str:
    return ", ".join(p for p in parts if p)


def paren(text: str | None) -> str:
    return f" ({text})" if text else ""


def words(key: str) -> str:
    """A field name as words: ``false_alarm_rate`` -> ``false alarm rate``."""
    return key.replace("_", " ")


def scalars(model: BaseModel) -> list[tuple[str, Any]]:
    """The single-valued fields of ``model`` (not lists, mappings or nested results), in declaration order."""
    return [(name, value) for name, value in model if not isinstance(value, (BaseModel, list, dict))]
