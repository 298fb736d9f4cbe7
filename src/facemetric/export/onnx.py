"""Checkpoint -> ONNX file with a dynamic batch axis, verified against torch with onnxruntime.

The file carries what evaluation and the gallery need to use it without facemetric's training
code: the preprocessing (``ImageSpec``: size, channels, crop, alignment, mean/std), the model
config and fingerprint, as ONNX metadata properties (the contract is in
:mod:`facemetric.embedders.onnx`). ``facemetric.embedders.load_embedder`` opens it like a checkpoint.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from facemetric.core.atomic import atomic_path
from facemetric.core.checkpoint import model_fingerprint
from facemetric.core.errors import require
from facemetric.core.spec import ImageSpec
from facemetric.core.version import VERSION
from facemetric.embedders.onnx import (
    INPUT,
    META_FINGERPRINT,
    META_MODEL,
    META_SPEC,
    META_VERSION,
    OUTPUT,
    ExportError,
    onnxruntime,
    write_onnx,
)
from facemetric.embedders.torch_model import ModelEmbedder

TOLERANCE = 1e-4  # max abs difference allowed between torch and onnxruntime embeddings


@dataclass
class ExportReport:
    path: Path
    max_abs_diff: float  # worst |torch - onnxruntime| over the check batches
    batch_sizes_checked: tuple[int, ...]
    megabytes: float
    seconds: float


def export_model(
    model: nn.Module,
    spec: ImageSpec,
    out: str | Path,
    model_info: dict | None = None,
    fingerprint: str = "",
    dynamo: bool = True,
    check_batches: tuple[int, ...] = (1, 3),
) -> ExportReport:
    """Write ``model`` (eval mode, fp32, contiguous weights) to ``out`` and check it with onnxruntime.

    ``dynamo``: torch's current ``torch.export``-based exporter (default); False uses the older
    TorchScript one (deprecated by torch, several times faster). Raises :class:`ExportError`
    when onnxruntime's embeddings differ from torch's by more than ``TOLERANCE``.
    """
    onnx = require("onnx", "onnx", "ONNX export")
    ort = onnxruntime()
    start, out = time.time(), Path(out)
    net = copy.deepcopy(model).float().to("cpu", memory_format=torch.contiguous_format).eval()  # type: ignore[call-overload]
    example = torch.zeros(2, spec.channels, spec.height, spec.width)
    try:
        with atomic_path(out) as tmp:
            write_onnx(net, example, tmp, dynamo)
            proto = onnx.load(str(tmp))
            onnx.helper.set_model_props(
                proto,
                {
                    META_SPEC: json.dumps(spec.to_dict()),
                    META_MODEL: json.dumps(model_info or {}),
                    META_FINGERPRINT: fingerprint,
                    META_VERSION: VERSION,
                },
            )
            onnx.checker.check_model(proto)
            onnx.save(proto, str(tmp))
            diff = _check(net, tmp, spec, check_batches, ort)
    except ExportError:
        raise
    except Exception as exc:  # the exporters raise many kinds; say which model and file
        raise ExportError(f"exporting to {out} failed: {type(exc).__name__}: {exc}") from exc
    return ExportReport(
        out, diff, tuple(check_batches), round(out.stat().st_size / 2**20, 2), round(time.time() - start, 1)
    )


@torch.no_grad()
def _check(net: nn.Module, path: Path, spec: ImageSpec, batches: tuple[int, ...], ort: Any) -> float:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    gen, worst = torch.Generator().manual_seed(0), 0.0
    for n in batches:  # different batch sizes: the batch axis really is dynamic
        x = torch.randn(n, spec.channels, spec.height, spec.width, generator=gen)
        got = session.run([OUTPUT], {INPUT: x.numpy()})[0]
        worst = max(worst, float(np.abs(got - net(x).numpy()).max()))
    if worst > TOLERANCE:
        raise ExportError(f"{path}: onnxruntime differs from torch by {worst:.2e} (> {TOLERANCE:.0e}); not exported")
    return worst


def export_checkpoint(checkpoint: str | Path, out: str | Path, dynamo: bool = True) -> ExportReport:
    """Export a facemetric checkpoint (``best.pt`` / ``last.pt``) or a pretrained PyTorch model by name
    (``dlib-resnet``) to ONNX, verified."""
    from facemetric.embedders import PRETRAINED, load_embedder

    if str(checkpoint).partition("?")[0] in PRETRAINED:
        loaded = load_embedder(str(checkpoint))
        if not isinstance(loaded, ModelEmbedder):
            raise ExportError(f"{checkpoint} is not a PyTorch model; only PyTorch models can be exported")
        embedder = loaded
    else:
        embedder = ModelEmbedder.from_checkpoint(checkpoint)
    info = embedder.model_cfg.to_dict() if embedder.model_cfg else {}
    return export_model(embedder.model, embedder.spec, out, info, model_fingerprint(embedder.model), dynamo)
