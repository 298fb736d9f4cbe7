"""Training callbacks (interface in :mod:`facemetric.train.callbacks.base`). Every module here is
imported, so a callback registered with ``@register_callback("name")`` can be named in a config's
``train.callbacks``; a new one is one new file (or a class registered from your own code)."""

import importlib
import pkgutil

from facemetric.train.callbacks.base import Callback, StepOutput
from facemetric.train.callbacks.registry import CALLBACKS, build_callback, register_callback

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_") and _module.name not in ("registry", "base"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["CALLBACKS", "Callback", "StepOutput", "build_callback", "register_callback"]
