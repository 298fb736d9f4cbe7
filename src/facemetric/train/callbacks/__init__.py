"""Training callbacks (interface in :mod:`facemetric.train.callbacks.base`). Every module here is
imported, so a callback registered with ``@register_callback("name")`` can be named in a config's
``train.callbacks``; a new one is one new file (or a class registered from your own code)."""

from facemetric.core.registry import discover
from facemetric.train.callbacks.base import Callback, StepOutput
from facemetric.train.callbacks.registry import CALLBACKS, build_callback, register_callback

discover(__name__, __path__)

__all__ = ["CALLBACKS", "Callback", "StepOutput", "build_callback", "register_callback"]
