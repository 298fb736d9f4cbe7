"""``FacemetricError``: the base of every error a user can cause.

The command line catches this one type and prints its message on one line (exit status 2, or
the error's own ``exit_code``); the HTTP API maps it to a 4xx answer. Any other exception is
a bug in facemetric and keeps its traceback. A message says which input (file, key, line) is
wrong, what is wrong with it, and what to do.

Errors that also name a familiar built-in kind keep it as a second base (``ConfigError`` is a
``ValueError``, ``UnknownNameError`` a ``KeyError``), so ``except ValueError`` still works.
"""

from __future__ import annotations

import importlib
from types import ModuleType


class FacemetricError(Exception):
    """A problem with the user's input, data, files or environment; the message says what to do."""

    exit_code = 2


class ConfigError(FacemetricError, ValueError):
    """A config file, override or option is invalid; the message names the key."""


class UnknownNameError(FacemetricError, KeyError):
    """A name that no registry knows (a model, loss, miner ...); the message lists those it knows."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class MissingDependencyError(FacemetricError, ImportError):
    """An optional package a feature needs is not installed; the message says how to install it."""


def require(module: str, extra: str, feature: str) -> ModuleType:
    """Import the optional ``module`` or raise :class:`MissingDependencyError` naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{feature} needs the {module} package ({exc}): pip install 'facemetric[{extra}]'"
        ) from None
