"""An ONNX export as an embedder: evaluation and the gallery without the training code."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from facemetric.data.images import ImageSpec
from facemetric.eval.embed import EmbedderBase, embed_batches
from facemetric.export.onnx import (
    INPUT,
    META_MODEL,
    META_SPEC,
    OUTPUT,
    ExportError,
    _onnx_modules,
)


class OnnxEmbedder(EmbedderBase):
    """Runs a ``facemetric export`` file with onnxruntime; preprocessing comes from its metadata."""

    def __init__(self, path: str | Path, threads: int = 0) -> None:
        _, ort = _onnx_modules()
        path = Path(path)
        if not path.is_file():
            raise ExportError(f"{path}: no such ONNX file")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for unreadable models
            raise ExportError(f"{path}: onnxruntime cannot load it ({exc}); is it an ONNX file?") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        if META_SPEC not in meta:
            raise ExportError(f"{path}: not a facemetric export (no {META_SPEC} metadata); export it with `facemetric export`")
        self.spec = ImageSpec(**json.loads(meta[META_SPEC]))
        self.model_info = json.loads(meta.get(META_MODEL, "{}"))
        self.path = path

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.session.run([OUTPUT], {INPUT: x.contiguous().numpy()})[0])

    def embed_array(self, images: np.ndarray, batch_size: int = 256, flip: bool = False, progress: bool = False) -> np.ndarray:
        """Embed already-decoded (N, H, W, C) uint8 images (decoded with :attr:`spec`)."""
        return embed_batches(self._forward, images, batch_size, flip, progress, self.spec.normalization,
                             int(self.model_info.get("embedding_dim", 0)))
