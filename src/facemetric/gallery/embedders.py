"""Photo -> unit-length embedding, for the gallery: a facemetric model (checkpoint or ONNX) or dlib-resnet.

A gallery stores which embedder made its embeddings (:class:`~facemetric.gallery.store.EmbedderInfo`:
name, fingerprint, dimension, and a ``spec`` to load it again) and refuses any other. A
facemetric model sees a photo exactly as in training: the crop of its :class:`ImageSpec`, or
the face found and aligned by the prepare backend it was trained on (``dlib``, ``opencv``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image

from facemetric.data.align import Detection, build_aligner
from facemetric.data.images import resize_crop
from facemetric.gallery.store import EmbedderInfo, GalleryError

DLIB_RESNET = "dlib-resnet"


class PhotoEmbedder(Protocol):
    """What the gallery needs from a model."""

    name: str
    fingerprint: str
    dim: int
    load_spec: dict[str, Any]  # what load_photo_embedder() takes to make this embedder again

    def embed_photo(self, image: Image.Image) -> tuple[np.ndarray, Detection]:
        """Unit-length float32 embedding of the face in ``image`` and how it was found
        (:class:`facemetric.data.align.NoFaceError` when there is none)."""
        ...


def file_fingerprint(path: str | Path, extra: str = "") -> str:
    """First 16 hex digits of sha256(file bytes + ``extra``): the same weights give the same value."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    digest.update(extra.encode())
    return digest.hexdigest()[:16]


class ModelPhotoEmbedder:
    """A facemetric checkpoint (``.pt``) or its ONNX export as a gallery embedder."""

    def __init__(self, path: str | Path) -> None:
        from facemetric.eval.embed import load_embedder

        self.path = Path(path).resolve()
        self.model = load_embedder(self.path)
        self.spec = self.model.spec
        self.name = self.path.name
        self.fingerprint = file_fingerprint(self.path)
        self.load_spec = {"kind": "model", "path": str(self.path)}
        self.dim = int(self.model.embed_array(np.zeros((1, self.spec.height, self.spec.width, self.spec.channels),
                                                         np.uint8)).shape[1])
        self.aligner = None
        if self.spec.align not in ("crop", "none", "center"):
            self.aligner = build_aligner(self.spec.align, size=self.spec.height, channels=self.spec.channels)

    def embed_photo(self, image: Image.Image) -> tuple[np.ndarray, Detection]:
        if self.aligner is not None:
            crop, detection = self.aligner(image)
        else:  # the model was trained on pre-cropped photos: the same central crop, no detection
            converted = image.convert("RGB" if self.spec.channels == 3 else "L")
            crop = resize_crop(converted, self.spec)
            detection = Detection("crop", False, image_size=[image.width, image.height])
        return self.model.embed_array(crop[None])[0], detection


def load_photo_embedder(spec: dict[str, Any] | str) -> PhotoEmbedder:
    """``"dlib-resnet"``, a checkpoint or ONNX path, or a stored ``{"kind": ..., ...}`` spec."""
    if isinstance(spec, str):
        spec = {"kind": DLIB_RESNET} if spec == DLIB_RESNET else {"kind": "model", "path": spec}
    if spec.get("kind") == DLIB_RESNET:
        from facemetric.gallery.dlib_resnet import DlibResnetEmbedder

        try:
            return DlibResnetEmbedder(**spec.get("options", {}))
        except RuntimeError as exc:  # dlib or its model files missing: say how to install them
            raise GalleryError(str(exc)) from None
    if spec.get("kind") == "model":
        path = Path(spec["path"])
        if not path.is_file():
            raise GalleryError(f"the gallery's model {path} is missing; restore it (the gallery only accepts "
                               "embeddings of that model)")
        return ModelPhotoEmbedder(path)
    raise GalleryError(f"unknown embedder spec {spec!r}: use 'dlib-resnet' or a checkpoint / .onnx path")


def embedder_info(embedder: PhotoEmbedder) -> EmbedderInfo:
    """What a new gallery records about ``embedder`` (its ``load_spec`` loads it again)."""
    return EmbedderInfo(embedder.name, embedder.fingerprint, embedder.dim, dict(embedder.load_spec))
