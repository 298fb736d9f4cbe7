"""Reading a run's checkpoint while the run writes it (the torchrun tests wait for and check its step)."""

from __future__ import annotations

from pathlib import Path

import torch


def checkpoint_step(path: Path) -> int:
    """The checkpoint's ``global_step``, 0 while there is none (each write is atomic: a file is absent or whole)."""
    try:
        return int(torch.load(path, map_location="cpu", weights_only=False)["global_step"])
    except Exception:  # not written yet
        return 0
