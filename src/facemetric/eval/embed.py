"""Images -> L2-normalised embeddings, from a live model, a checkpoint or its ONNX export."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from tqdm import tqdm

from facemetric.config import ModelConfig
from facemetric.data.augment import to_tensor
from facemetric.data.cache import decode_manifest
from facemetric.data.images import ImageSpec
from facemetric.data.sources import Manifest
from facemetric.models import build_embedding_model
from facemetric.train.checkpoint import (
    CheckpointError,
    load_checkpoint,
    model_fingerprint,
)


@torch.no_grad()
def embed_array(
    model: nn.Module,
    images: np.ndarray,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
    flip: bool = False,
    progress: bool = False,
    normalization: tuple[tuple[float, ...], tuple[float, ...]] | None = None,
) -> np.ndarray:
    """Embed (N, H, W, C) uint8 images in eval mode; ``flip`` adds the mirrored image's embedding.

    ``normalization`` is the (mean, std) the model was trained with (``ImageSpec.normalization``).
    """
    was_training = model.training
    model.eval()
    try:
        return embed_batches(lambda x: model(x.to(device)), images, batch_size, flip, progress, normalization,
                             getattr(model, "embedding_dim", 0))
    finally:
        model.train(was_training)


def embed_batches(
    forward: Callable[[torch.Tensor], torch.Tensor],
    images: np.ndarray,
    batch_size: int,
    flip: bool,
    progress: bool,
    normalization: tuple[tuple[float, ...], tuple[float, ...]] | None,
    dim: int,
) -> np.ndarray:
    """The embedding loop shared by every embedder: normalise a batch, run ``forward`` (and on the
    mirrored batch with ``flip``), L2-normalise, concatenate; (0, ``dim``) for no image."""
    mean, std = normalization or (None, None)
    out = []
    for start in tqdm(range(0, len(images), batch_size), desc="embed", disable=not progress, leave=False):
        x = to_tensor(images[start : start + batch_size], mean, std)
        e = forward(x)
        if flip:
            e = e + forward(torch.flip(x, dims=[3]))
        out.append(torch.nn.functional.normalize(e.float(), dim=1).cpu())
    return torch.cat(out).numpy() if out else np.zeros((0, dim), dtype=np.float32)


class EmbedderBase:
    """What evaluation and the gallery need from an embedder: its :attr:`spec` and :meth:`embed_array`."""

    spec: ImageSpec

    def embed_array(self, images: np.ndarray, batch_size: int = 256, flip: bool = False, progress: bool = False) -> np.ndarray:
        raise NotImplementedError

    def embed_manifest(
        self, manifest: Manifest, batch_size: int = 256, flip: bool = False, progress: bool = True
    ) -> tuple[np.ndarray, list[str], list[str], list[tuple[str, str]]]:
        """Decode and embed every image of ``manifest``.

        Returns (embeddings, paths, identities, bad) where ``bad`` lists (path, reason)
        for files that could not be decoded and are therefore absent from the others.
        """
        packed = decode_manifest(manifest, self.spec, progress=progress)
        emb = self.embed_array(packed.images, batch_size, flip, progress)
        identities = [packed.identity_names[i] for i in packed.labels]
        return emb, packed.paths, identities, packed.bad


class Embedder(EmbedderBase):
    """A trained model plus the preprocessing it was trained with (see :meth:`from_checkpoint`)."""

    def __init__(self, model: nn.Module, spec: ImageSpec, device: str | torch.device = "cpu", model_cfg: ModelConfig | None = None) -> None:
        # channels-last weights: the CPU convolutions run faster that way (BENCHMARKS.md, backbones)
        self.model, self.spec, self.device = model.to(device, memory_format=torch.channels_last).eval(), spec, device
        self.model_cfg = model_cfg  # what rebuilds the network (kept for export)

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "cpu") -> "Embedder":
        """Rebuild the network described by a checkpoint and load its weights."""
        state = load_checkpoint(path)
        spec = ImageSpec(**state["image_spec"])
        model_cfg = ModelConfig(**state["config"]["model"])
        model = build_embedding_model(model_cfg, spec)
        if model_fingerprint(model) != state["model_fingerprint"]:
            raise CheckpointError(f"{path}: weights do not match the architecture its config describes")
        model.load_state_dict(state["model"])
        return cls(model, spec, device, model_cfg)

    def embed_array(self, images: np.ndarray, batch_size: int = 256, flip: bool = False, progress: bool = False) -> np.ndarray:
        """Embed already-decoded images (decoded with this embedder's :attr:`spec`)."""
        return embed_array(self.model, images, batch_size, self.device, flip, progress, self.spec.normalization)


def load_embedder(path: str | Path, device: str = "cpu") -> EmbedderBase:
    """A facemetric checkpoint (``.pt``) or its ONNX export (``.onnx``, run with onnxruntime)."""
    if Path(path).suffix.lower() == ".onnx":
        from facemetric.eval.onnx_embedder import OnnxEmbedder

        return OnnxEmbedder(path)
    return Embedder.from_checkpoint(path, device)
