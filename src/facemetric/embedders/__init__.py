"""Embedders: every face model behind the one :class:`~facemetric.core.embedder.Embedder` interface.

:func:`load_embedder` opens any of them from what a user types: a checkpoint (``best.pt``), an
ONNX export (``model.onnx``) or the name of a pretrained model (``dlib-resnet``, options after a
``?``: ``dlib-resnet?upsample=2&num_jitters=1``). Every module of this package is imported
(``core.registry.discover``), so a new pretrained model is one new file here with
``@register_pretrained("name")``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from facemetric.core.config import load_yaml
from facemetric.core.embedder import Embedder
from facemetric.core.errors import FacemetricError
from facemetric.core.registry import discover
from facemetric.embedders.registry import PRETRAINED, available_pretrained, register_pretrained

discover(__name__, __path__)

__all__ = ["Embedder", "EmbedderNotFoundError", "available_pretrained", "load_embedder", "register_pretrained"]


class EmbedderNotFoundError(FacemetricError, FileNotFoundError):
    """Neither a model file nor a pretrained model name."""


def _options(query: str, reference: str) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for item in filter(None, query.split("&")):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise EmbedderNotFoundError(f"{reference}: options go as name?key=value&key=value, got {item!r}")
        options[key] = load_yaml(value)
    return options


def load_embedder(reference: str | Path, device: str = "cpu") -> Embedder:
    """The embedder ``reference`` names: a pretrained name (with ``?key=value`` options), a facemetric
    checkpoint (``.pt``) or its ONNX export (``.onnx``, run with onnxruntime)."""
    text = str(reference)
    name, _, query = text.partition("?")
    if name in PRETRAINED:
        options = _options(query, text)
        PRETRAINED.check_options(name, options, f"model {name}")
        return PRETRAINED.build(name, where=f"model {name}", **options)
    path = Path(text).expanduser()
    if not path.is_file():
        raise EmbedderNotFoundError(
            f"{text}: no such checkpoint or ONNX file, and not the name of a pretrained model "
            f"({', '.join(available_pretrained())}); give a run's best.pt / last.pt, a .onnx export or a name"
        )
    if path.suffix.lower() == ".onnx":
        from facemetric.embedders.onnx import OnnxEmbedder

        return OnnxEmbedder(path)
    from facemetric.embedders.torch_model import ModelEmbedder

    return ModelEmbedder.from_checkpoint(path, device)
