"""Callback registry: ``train.callbacks: [{name, options}]`` in a config adds callbacks registered here."""

from __future__ import annotations

from typing import Any

from facemetric.core.registry import Registry

CALLBACKS: Registry[Any] = Registry("callback")
register_callback = CALLBACKS.register


def build_callback(name: str, where: str = "train.callbacks", **options: Any) -> Any:
    """The callback registered as ``name`` with ``options``."""
    CALLBACKS.check_options(name, options, f"{where}.options")
    return CALLBACKS.build(name, where=where, **options)
