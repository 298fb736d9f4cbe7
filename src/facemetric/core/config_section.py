"""The base of every config section: strict types, unknown keys refused, and the count parser
(``21M``) that ``model.max_params`` and ``--max-params`` share."""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict

from facemetric.core.errors import ConfigError

Options = dict[str, Any]


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
