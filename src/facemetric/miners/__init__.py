"""Miners: which pairs or triplets of a batch a pair loss learns from (interfaces in
:mod:`facemetric.core.mining`). Every module here registers its miners on import, so a new
miner is one new file with ``@register_miner("name")``."""

from facemetric.core.registry import discover
from facemetric.miners.registry import MINERS, build_miner, register_miner

discover(__name__, __path__)

__all__ = ["MINERS", "build_miner", "register_miner"]
