"""The checkpoint format: weights + optimizer + progress + config + preprocessing, written atomically.

A checkpoint is self-describing: ``load_model`` rebuilds the network from the config it
carries, and the model fingerprint (parameter names and shapes) catches a checkpoint
loaded into a different architecture.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from facemetric.core.atomic import atomic_path
from facemetric.core.errors import FacemetricError

FORMAT = "facemetric-checkpoint"
VERSION = 1


class CheckpointError(FacemetricError, ValueError):
    """A file is not a usable facemetric checkpoint."""


def model_fingerprint(model: nn.Module) -> str:
    """Short hash of the state-dict keys and shapes: equal iff the architectures match."""
    digest = hashlib.sha1()
    for name, tensor in model.state_dict().items():
        digest.update(f"{name}:{tuple(tensor.shape)};".encode())
    return digest.hexdigest()[:16]


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` atomically: a crash mid-write never leaves a broken file."""
    with atomic_path(path, fsync=True) as tmp:
        torch.save({"format": FORMAT, "version": VERSION, **state}, tmp)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`, with clear errors for anything else."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:  # torch raises many types for a damaged file
        raise CheckpointError(f"{path}: cannot be read as a checkpoint ({exc})") from exc
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a facemetric checkpoint")
    if state.get("version", 0) > VERSION:
        raise CheckpointError(f"{path}: checkpoint version {state['version']} is newer than this facemetric")
    return state
