"""Pretrained embedders by name (``dlib-resnet``): what ``--model NAME`` opens besides checkpoint files.

A pretrained embedder class says beside its options what a user picking it needs to know: ``dim`` (its
embedding size; 0: the file's) and ``licence`` (of its weights), listed by :func:`pretrained_catalogue`
(``facemetric models``, the ``--model`` help).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from facemetric.core.registry import Registry

PRETRAINED: Registry[Any] = Registry("pretrained model")
register_pretrained = PRETRAINED.register


def available_pretrained() -> list[str]:
    """Names ``load_embedder`` opens without a file."""
    return PRETRAINED.names()


@dataclass(frozen=True)
class PretrainedRow:
    name: str
    embedding_dim: int | None  # None: set by the file it opens
    licence: str  # of the weights


def pretrained_catalogue() -> list[PretrainedRow]:
    """Every pretrained name with its embedding size and the licence of its weights (nothing is loaded)."""
    rows = []
    for name in PRETRAINED.names():
        builder = PRETRAINED.get(name)
        dim = getattr(builder, "dim", 0)
        rows.append(
            PretrainedRow(name, dim if isinstance(dim, int) and dim > 0 else None, getattr(builder, "licence", ""))
        )
    return rows
