"""Miners: which pairs or triplets of a batch a pair loss learns from (interfaces in
:mod:`facemetric.core.mining`). Every module here registers its miners on import, so a new
miner is one new file with ``@register_miner("name")``."""

import importlib
import pkgutil

from facemetric.miners.registry import MINERS, build_miner, register_miner

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_") and _module.name != "registry":
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["MINERS", "build_miner", "register_miner"]
