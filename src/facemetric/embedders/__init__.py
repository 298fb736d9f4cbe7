"""Embedders: every face model behind the one :class:`~facemetric.core.embedder.Embedder` interface.

:func:`load_embedder` opens any of them from what a user types: a checkpoint (``best.pt``), an
ONNX export (``model.onnx``) or the name of a pretrained model (``dlib-resnet``, options after a
``?``: ``dlib-resnet?upsample=2&num_jitters=1``), or several of them joined by ``+`` (a fusion sharing
one face detection: ``dlib-resnet+sface``, a weight after ``@``: ``arcface-mbf@2+sface``). Every module
of this package is imported (``core.registry.discover``), so a new pretrained model is one new file here with
``@register_pretrained("name")``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from facemetric.core.config import load_yaml
from facemetric.core.embedder import Embedder
from facemetric.core.errors import ConfigError, FacemetricError
from facemetric.core.registry import discover
from facemetric.embedders.registry import PRETRAINED, available_pretrained, register_pretrained

discover(__name__, __path__)

__all__ = [
    "Embedder",
    "EmbedderNotFoundError",
    "available_pretrained",
    "former_references",
    "load_embedder",
    "open_stored_embedder",
    "register_pretrained",
]


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


def _member_parts(text: str) -> list[str]:
    """``text`` cut at each ``+`` that starts another model: a ``+`` inside an option value (``detector=hog+cnn``)
    is kept when what follows is neither a pretrained name nor an existing file."""
    parts: list[str] = []
    for piece in text.split("+"):
        head = piece.partition("?")[0].rpartition("@")[0] or piece.partition("?")[0]
        starts_model = head in PRETRAINED or Path(head).expanduser().is_file()
        if parts and not starts_model:
            parts[-1] += "+" + piece
        else:
            parts.append(piece)
    return parts


def _split_weight(part: str) -> tuple[str, float | None]:
    """``NAME@W`` -> (NAME, W); (part, None) without a weight."""
    text, sep, weight = part.rpartition("@")
    if not sep:
        return part, None
    try:
        return text, float(weight)
    except ValueError:
        raise EmbedderNotFoundError(
            f"{part}: a fusion weight goes after '@' as a number (sface@2), got {weight!r}"
        ) from None


def _load_fusion(parts: list[str], device: str) -> Embedder:
    """The fusion of the models ``parts`` names (:mod:`facemetric.embedders.fusion`); a pretrained model with a
    ``detector`` option is run on YuNet's detection, which the fusion shares."""
    from facemetric.embedders.fusion import FusionEmbedder

    members, weights, references = [], [], []
    for part in parts:
        text, weight = _split_weight(part)
        name, _, query = text.partition("?")
        if name in PRETRAINED and "detector" in PRETRAINED.parameters(name) and "detector=" not in query:
            text = f"{name}?{query + '&' if query else ''}detector=yunet"
        member = load_embedder(text, device)
        detector = getattr(member, "detector", "yunet")
        if detector != "yunet":
            raise ConfigError(
                f"{part}: in a fusion every model reads the one YuNet detection the fusion shares; drop "
                f"detector={detector} (the fusion runs {name} with detector=yunet)"
            )
        members.append(member)
        weights.append(weight)
        references.append(member.reference or text)
    if all(w is None for w in weights):
        return FusionEmbedder(members, None, references)
    from facemetric.embedders.fusion import member_weight

    return FusionEmbedder(members, [member_weight(m) if w is None else w for m, w in zip(members, weights)], references)


def load_embedder(reference: str | Path, device: str = "cpu") -> Embedder:
    """The embedder ``reference`` names: a pretrained name (with ``?key=value`` options), a facemetric
    checkpoint (``.pt``), its ONNX export (``.onnx``, run with onnxruntime), or several of these joined by
    ``+`` (a fusion: :mod:`facemetric.embedders.fusion`)."""
    text = str(reference)
    parts = _member_parts(text) if "+" in text and not Path(text).expanduser().is_file() else [text]
    if len(parts) > 1:
        return _load_fusion(parts, device)
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


def former_references(reference: str) -> list[str]:
    """What ``reference`` meant before a pretrained model's defaults changed: the reference with each former
    default the class declares (``former_defaults``, oldest last) written out, where it does not set that
    option itself. ``dlib-resnet`` stored before YuNet became its detector is ``dlib-resnet?detector=hog``.
    A fusion's members are YuNet-detected either way, so a fusion has none."""
    name, _, query = reference.partition("?")
    if "+" in reference or name not in PRETRAINED:
        return []
    given = {item.partition("=")[0] for item in filter(None, query.split("&"))}
    former = []
    for defaults in getattr(PRETRAINED.get(name), "former_defaults", ()):
        missing = [f"{key}={value}" for key, value in defaults.items() if key not in given]
        if missing:
            former.append(f"{name}?{'&'.join(filter(None, [query, *missing]))}")
    return former


def open_stored_embedder(reference: str, fingerprint: str, device: str = "cpu") -> Embedder:
    """The embedder a stored record names (a gallery's model): ``reference`` opened, or, when its fingerprint is
    not the stored one because the model's defaults changed since, the :func:`former_references` one that
    gives the stored fingerprint. Without a match, the reference as it opens now (the caller compares)."""
    embedder = load_embedder(reference, device)
    if embedder.fingerprint == fingerprint:
        return embedder
    for former in former_references(reference):
        older = load_embedder(former, device)
        if older.fingerprint == fingerprint:
            return older
    return embedder
