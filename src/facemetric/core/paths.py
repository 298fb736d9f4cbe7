"""Where facemetric keeps files it derives on the user's machine (e.g. converted model weights)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """``$FACEMETRIC_CACHE``, else ``$XDG_CACHE_HOME/facemetric``, else ``~/.cache/facemetric``.

    Everything in it can be rebuilt from files the user has (it is never downloaded), so it is
    safe to delete.
    """
    if os.environ.get("FACEMETRIC_CACHE"):
        return Path(os.environ["FACEMETRIC_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "facemetric"
