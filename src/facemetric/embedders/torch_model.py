"""A facemetric network as an embedder: a live ``nn.Module`` or a checkpoint (``best.pt``, ``last.pt``)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from facemetric.core.checkpoint import CheckpointError, load_checkpoint, model_fingerprint
from facemetric.core.config import ModelConfig
from facemetric.core.spec import ImageSpec
from facemetric.data.align import Aligner
from facemetric.embedders.base import CropEmbedder, Normalization, embed_batches, file_fingerprint
from facemetric.models import build_embedding_model
from facemetric.models.mirror import for_inference


@torch.no_grad()
def embed_array(
    model: nn.Module,
    images: Any,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
    flip: bool = False,
    progress: bool = False,
    normalization: Normalization | None = None,
) -> np.ndarray:
    """Embed (N, H, W, C) uint8 images with ``model`` in eval mode (its training mode is restored);
    ``normalization`` is the (mean, std) it was trained with (``ImageSpec.normalization``)."""
    was_training = model.training
    model.eval()
    try:
        return embed_batches(
            lambda x: model(x.to(device)),
            images,
            batch_size,
            flip,
            progress,
            normalization,
            getattr(model, "embedding_dim", 0),
        )
    finally:
        model.train(was_training)


class ModelEmbedder(CropEmbedder):
    """A trained network plus the preprocessing it was trained with (see :meth:`from_checkpoint`)."""

    def __init__(
        self,
        model: nn.Module,
        spec: ImageSpec,
        device: str | torch.device = "cpu",
        model_cfg: ModelConfig | None = None,
        path: str | Path | None = None,
        aligner: Aligner | None = None,
    ) -> None:
        super().__init__(spec, aligner)
        # channels-last weights: the CPU convolutions run faster that way (BENCHMARKS.md, backbones)
        self.model, self.device = model.to(device, memory_format=torch.channels_last).eval(), device  # type: ignore[call-overload]  # torch stubs lack memory_format
        self.model_cfg = model_cfg  # what rebuilds the network (kept for export)
        self.path = Path(path).resolve() if path is not None else None
        self.name = self.path.name if self.path is not None else (model_cfg.name if model_cfg else type(model).__name__)
        self.reference = str(self.path) if self.path is not None else ""
        self.dim = int(getattr(model, "embedding_dim", 0)) or int(
            self.embed_crops(np.zeros((1, spec.height, spec.width, spec.channels), np.uint8)).shape[1]
        )
        self._fingerprint: str | None = None

    @property
    def fingerprint(self) -> str:  # type: ignore[override]
        """The checkpoint file's hash (a live model: its architecture and weights)."""
        if self._fingerprint is None:
            if self.path is not None:
                self._fingerprint = file_fingerprint(self.path)
            else:
                digest = hashlib.sha256(model_fingerprint(self.model).encode())
                for tensor in self.model.state_dict().values():
                    digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
                self._fingerprint = digest.hexdigest()[:16]
        return self._fingerprint

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "cpu") -> ModelEmbedder:
        """Rebuild the network described by a checkpoint and load its weights."""
        state = load_checkpoint(path)
        spec = ImageSpec(**state["image_spec"])
        model_cfg = ModelConfig(**state["config"]["model"])
        model = build_embedding_model(model_cfg, spec)
        if model_fingerprint(model) != state["model_fingerprint"]:
            raise CheckpointError(f"{path}: weights do not match the architecture its config describes")
        model.load_state_dict(state["model"])
        fused = getattr(model, "fused", None)  # an inference form with the same outputs (dlib_resnet)
        net = for_inference(fused() if callable(fused) else model, model_cfg.mirror)
        return cls(net, spec, device, model_cfg, path)

    def embed_crops(self, crops: Any, batch_size: int = 256, flip: bool = False, progress: bool = False) -> np.ndarray:
        return embed_array(self.model, crops, batch_size, self.device, flip, progress, self.spec.normalization)
