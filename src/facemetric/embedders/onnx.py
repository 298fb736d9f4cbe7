"""ONNX exports: the file's contract (names, metadata) and an embedder that runs one with onnxruntime.

A ``facemetric export`` file has one input ``images`` (N x C x H x W, normalised as in training)
and one output ``embeddings`` (N x D, unit length), and carries as metadata what evaluation and
the gallery need without facemetric's training code: the preprocessing (``ImageSpec``), the
model config and its fingerprint.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facemetric.core.errors import FacemetricError, require
from facemetric.core.spec import ImageSpec
from facemetric.embedders.base import CropEmbedder, embed_batches, file_fingerprint

INPUT, OUTPUT = "images", "embeddings"
META_SPEC, META_MODEL, META_FINGERPRINT = "facemetric.image_spec", "facemetric.model", "facemetric.model_fingerprint"
META_VERSION = "facemetric.version"


class ExportError(FacemetricError, RuntimeError):
    """An ONNX file cannot be written, read, or does not reproduce the torch model."""


def write_onnx(net: torch.nn.Module, example: torch.Tensor, path: str | Path, dynamo: bool = True) -> None:
    """``net`` (eval mode, CPU) to an ONNX file with facemetric's input/output names and a dynamic
    batch axis: torch's ``torch.export``-based exporter, or (``dynamo=False``) the older TorchScript
    one (deprecated by torch, several times faster)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporters' deprecation / tracer chatter
        if dynamo:
            torch.onnx.export(
                net,
                (example,),
                str(path),
                input_names=[INPUT],
                output_names=[OUTPUT],
                dynamic_shapes=({0: torch.export.Dim("batch")},),
                dynamo=True,
                verbose=False,
            )
        else:
            torch.onnx.export(
                net,
                (example,),
                str(path),
                input_names=[INPUT],
                output_names=[OUTPUT],
                dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}},
                opset_version=17,
                dynamo=False,
            )


def onnxruntime() -> Any:
    """The onnxruntime module, or a clear error saying how to install it."""
    return require("onnxruntime", "onnx", "running an ONNX export")


def session_options(threads: int = 0) -> Any:
    """onnxruntime session options for facemetric's models: ``threads`` intra-op threads (0: one per core), and
    threads that sleep between runs instead of spinning. A spinning pool keeps every core busy for a while
    after each run; in a server that calls the model many times a second, that is the CPU its face
    detection and its requests need (on 2 cores, spinning cost a third of the throughput). Batch runs take
    the same time either way."""
    options = onnxruntime().SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return options


class OnnxEmbedder(CropEmbedder):
    """Runs a ``facemetric export`` file with onnxruntime; preprocessing comes from its metadata."""

    def __init__(self, path: str | Path, threads: int = 0) -> None:
        ort = onnxruntime()
        path = Path(path)
        if not path.is_file():
            raise ExportError(f"{path}: no such ONNX file")
        try:
            self.session = ort.InferenceSession(str(path), session_options(threads), providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for unreadable models
            raise ExportError(f"{path}: onnxruntime cannot load it ({exc}); is it an ONNX file?") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        if META_SPEC not in meta:
            raise ExportError(
                f"{path}: not a facemetric export (no {META_SPEC} metadata); export it with `facemetric export` "
                f"(an InsightFace-format face recogniser runs as arcface-onnx?path={path})"
            )
        super().__init__(ImageSpec(**json.loads(meta[META_SPEC])))
        self.model_info = json.loads(meta.get(META_MODEL, "{}"))
        self.path = path.resolve()
        self.name, self.reference = path.name, str(self.path)
        self.dim = int(self.model_info.get("embedding_dim", 0)) or int(
            self.embed_crops(np.zeros((1, self.spec.height, self.spec.width, self.spec.channels), np.uint8)).shape[1]
        )
        self._fingerprint: str | None = None

    @property
    def fingerprint(self) -> str:  # type: ignore[override]
        """The ONNX file's hash."""
        if self._fingerprint is None:
            self._fingerprint = file_fingerprint(self.path)
        return self._fingerprint

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.session.run([OUTPUT], {INPUT: x.contiguous().numpy()})[0])

    def embed_crops(self, crops: Any, batch_size: int = 256, flip: bool = False, progress: bool = False) -> np.ndarray:
        return embed_batches(
            self._forward,
            crops,
            batch_size,
            flip,
            progress,
            self.spec.normalization,
            int(self.model_info.get("embedding_dim", 0)),
        )
