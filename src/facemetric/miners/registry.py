"""Miner registry: ``miner: {name, options}`` in a config names a class registered here."""

from __future__ import annotations

from typing import Any

from facemetric.core.registry import Registry

MINERS: Registry[Any] = Registry("miner")
register_miner = MINERS.register


def build_miner(name: str, where: str = "miner", **options: Any) -> Any:
    """The miner registered as ``name`` with ``options``."""
    MINERS.check_options(name, options, f"{where}.options")
    return MINERS.build(name, where=where, **options)
