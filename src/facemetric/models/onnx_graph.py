"""An ONNX graph as a trainable PyTorch module: foreign face recognisers (SFace, InsightFace's ArcFace
models) fine-tuned, distilled and exported like any facemetric backbone.

:func:`read_graph` reads a file's graph once per file version (``pip install 'facemetric[onnx]'`` for the
``onnx`` package); :class:`OnnxNet` builds it as PyTorch layers with freshly initialised parameters, and
:func:`load_onnx_weights` copies the file's tensors in. Every node with weights becomes a real layer
(``nn.Conv2d``, ``nn.BatchNorm2d`` / ``nn.BatchNorm1d`` with running statistics, ``nn.Linear``,
``nn.PReLU``), so the network trains, fine-tunes and distils like a hand-written one; a constant operand
(the scalars of an in-graph ``(x - 127.5) * 0.0078125``) becomes a buffer. The layers live in a
``ModuleDict`` keyed by the file's node names (``layers.conv_1_conv2d.weight``); :attr:`OnnxNet.sources`
says which of the file's tensors fills each state-dict entry.

``forward`` runs the nodes in the file's (topological) order. The batch dimension is always the input's:
the shapes a file declares are ignored (SFace's declares batch 1), ``Flatten`` keeps the leading axes it
is asked to keep, and a constant ``Reshape`` shape's first entry (the batch size the file was exported
with, or 0 / -1) becomes the input's batch size.

Supported operations: Conv (2-d: groups, pads, strides, dilations), BatchNormalization (after a
convolution, or 1-d after Flatten / Gemm), PRelu, Relu, Sigmoid, Add, Sub, Mul, Div, Flatten, Gemm,
Dropout (active in training, identity in eval mode), Identity, MaxPool, Reshape, Transpose, Concat,
GlobalAveragePool and Constant. Any other operation is refused (:class:`UnsupportedOnnxOpError`) with
the node and the file named.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from facemetric.core.errors import FacemetricError, require

# the state-dict entry <- file tensor conversions OnnxNet.sources names
COPY, FLATTEN, TRANSPOSE, BROADCAST = "copy", "flatten", "transpose", "broadcast"


class OnnxGraphError(FacemetricError):
    """An ONNX file that cannot be turned into a PyTorch module (unreadable, or of a shape facemetric cannot run)."""


class UnsupportedOnnxOpError(OnnxGraphError):
    """The graph uses an operation (or an operation's setting) the converter does not implement."""


@dataclass(frozen=True)
class GraphNode:
    """One node of the file's graph, its attributes as Python values."""

    op: str
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: Mapping[str, Any]
    domain: str = ""


@dataclass(frozen=True)
class OnnxGraph:
    """A file's graph: its one input and output, the nodes in order, the constant tensors by name."""

    path: Path
    input: str
    input_shape: tuple[int | None, ...]  # None: a symbolic (or absent) dimension
    output: str
    output_shape: tuple[int | None, ...]
    nodes: tuple[GraphNode, ...]
    tensors: Mapping[str, np.ndarray] = field(repr=False)  # initialisers and Constant outputs


def _attr(value: Any, onnx: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, onnx.TensorProto):
        return onnx.numpy_helper.to_array(value)
    if isinstance(value, list):
        return tuple(_attr(v, onnx) for v in value)
    return value


def _dims(value_info: Any) -> tuple[int | None, ...]:
    shape = value_info.type.tensor_type.shape
    return tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in shape.dim)


def _constant(node: GraphNode, path: Path) -> np.ndarray:
    """The tensor a Constant node holds."""
    attrs = node.attrs
    if "value" in attrs:
        return np.asarray(attrs["value"])
    for key, dtype in (("value_float", np.float32), ("value_floats", np.float32)):
        if key in attrs:
            return np.asarray(attrs[key], dtype)
    for key in ("value_int", "value_ints"):
        if key in attrs:
            return np.asarray(attrs[key], np.int64)
    raise UnsupportedOnnxOpError(
        f"{path}: Constant node {node.name!r} holds {sorted(attrs)}, which facemetric's ONNX converter does not read"
    )


def read_graph(path: str | Path) -> OnnxGraph:
    """The graph of an ONNX file (read once per file version); :class:`OnnxGraphError` for a file that is
    not an ONNX model or has several inputs or outputs."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise OnnxGraphError(f"{path}: no such ONNX file")
    stat = path.stat()
    return _read_graph(path.resolve(), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=4)
def _read_graph(path: Path, size: int, mtime_ns: int) -> OnnxGraph:
    onnx = require("onnx", "onnx", "reading an ONNX model's graph")
    from onnx import numpy_helper

    try:
        model = onnx.load(str(path))
    except Exception as exc:  # protobuf raises its own kinds for a file that is not a model
        raise OnnxGraphError(f"{path}: not a readable ONNX model ({type(exc).__name__}: {exc})") from None
    graph = model.graph
    tensors: dict[str, np.ndarray] = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    nodes = []
    for k, proto in enumerate(graph.node):
        attrs = {a.name: _attr(onnx.helper.get_attribute_value(a), onnx) for a in proto.attribute}
        node = GraphNode(
            proto.op_type,
            proto.name or f"{proto.op_type}_{k}",
            tuple(proto.input),
            tuple(proto.output),
            attrs,
            proto.domain,
        )
        if node.op == "Constant" and node.domain in ("", "ai.onnx"):
            tensors[node.outputs[0]] = _constant(node, path)
        else:
            nodes.append(node)
    inputs = [i for i in graph.input if i.name not in tensors]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise OnnxGraphError(
            f"{path}: the graph has inputs {[i.name for i in inputs]} and outputs {[o.name for o in graph.output]}; "
            "facemetric runs recognisers with one image input and one embedding output"
        )
    return OnnxGraph(
        path, inputs[0].name, _dims(inputs[0]), graph.output[0].name, _dims(graph.output[0]), tuple(nodes), tensors
    )


# ---------------------------------------------------------------------------------------------------------------
# layers without weights of their own, and the constant-operand holder


class Operands(nn.Module):
    """An element-wise or concatenating node whose operands may be constants of the file (kept as buffers)."""

    def __init__(self, op: str, slots: Sequence[str | None], constants: Mapping[int, torch.Tensor], axis: int = 0):
        super().__init__()
        self.op, self.axis = op, axis
        self.slots = tuple(slots)  # per operand: the buffer's name, or None for the next activation
        for k, name in enumerate(self.slots):
            if name is not None:
                self.register_buffer(name, constants[k].clone())

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        it = iter(xs)
        args = [next(it) if name is None else getattr(self, name) for name in self.slots]
        if self.op == "Concat":
            return torch.cat(args, dim=self.axis)
        a, b = args
        if self.op == "Add":
            return a + b
        if self.op == "Sub":
            return a - b
        if self.op == "Mul":
            return a * b
        return a / b

    def extra_repr(self) -> str:
        return self.op


class Flatten(nn.Module):
    """ONNX Flatten: (prod(dims[:axis]), prod(dims[axis:])), the leading dimensions taken from the input."""

    def __init__(self, axis: int) -> None:
        super().__init__()
        self.axis = axis

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        axis = self.axis % x.dim() if self.axis < 0 else self.axis
        if axis == 0:
            return x.reshape(1, -1)
        x = torch.flatten(x, axis)
        return torch.flatten(x, 0, axis - 1) if axis > 1 else x

    def extra_repr(self) -> str:
        return f"axis={self.axis}"


class Reshape(nn.Module):
    """ONNX Reshape to a constant shape whose first entry becomes the input's batch size."""

    def __init__(self, shape: Sequence[int]) -> None:
        super().__init__()
        self.tail = tuple(int(v) for v in shape[1:])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tail = [x.shape[k + 1] if v == 0 else v for k, v in enumerate(self.tail)]  # ONNX: 0 copies the input's size
        return x.reshape(x.shape[0], *tail)

    def extra_repr(self) -> str:
        return f"(batch, {', '.join(map(str, self.tail))})"


class Transpose(nn.Module):
    def __init__(self, perm: Sequence[int]) -> None:
        super().__init__()
        self.perm = tuple(int(v) for v in perm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(self.perm)

    def extra_repr(self) -> str:
        return f"perm={self.perm}"


class GlobalAveragePool(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=tuple(range(2, x.dim())), keepdim=True)


class Pad(nn.Module):
    """Asymmetric padding (ONNX pads a convolution's or a pool's input per side; torch's layers pad evenly)."""

    def __init__(self, module: nn.Module, pads: tuple[int, int, int, int], value: float) -> None:
        super().__init__()
        self.pads, self.value, self.inner = pads, value, module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(F.pad(x, self.pads, value=self.value))


class PaddedConv2d(nn.Conv2d):
    """A convolution whose input is padded unevenly first (its weights stay where nn.Conv2d keeps them)."""

    def __init__(self, *args: Any, pads: tuple[int, int, int, int], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pads = pads  # F.pad order: left, right, top, bottom

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, self.pads))


# ---------------------------------------------------------------------------------------------------------------
# building


@dataclass
class _Built:
    module: nn.Module
    inputs: tuple[str, ...]  # the activations the module takes, in order
    rank: int  # of its output
    sources: list[tuple[str, str, str]] = field(default_factory=list)  # (parameter, file tensor, conversion)


class _Context:
    """What a node's builder reads: the file's constants, the ranks of the values computed so far."""

    def __init__(self, graph: OnnxGraph) -> None:
        self.graph, self.ranks = graph, {graph.input: len(graph.input_shape) or 4}

    def const(self, name: str) -> bool:
        return name in self.graph.tensors

    def tensor(self, node: GraphNode, name: str, what: str) -> np.ndarray:
        if name not in self.graph.tensors:
            raise self.unsupported(node, f"its {what} is computed by the graph, not a constant of the file")
        return self.graph.tensors[name]

    def rank(self, name: str) -> int:
        if name in self.graph.tensors:
            return int(self.graph.tensors[name].ndim)
        return self.ranks[name]

    def unsupported(self, node: GraphNode, why: str) -> UnsupportedOnnxOpError:
        return UnsupportedOnnxOpError(
            f"{self.graph.path}: node {node.name!r} ({node.op}): {why}; facemetric's ONNX converter cannot build "
            "it in PyTorch (run the file with onnxruntime instead: backend=onnx)"
        )


def _pads(node: GraphNode, ctx: _Context) -> tuple[int, int, int, int]:
    """ONNX (top, left, bottom, right) pads of a 2-d convolution or pool; auto_pad other than NOTSET/VALID refused."""
    auto = node.attrs.get("auto_pad", "NOTSET")
    if auto not in ("NOTSET", "VALID", ""):
        raise ctx.unsupported(node, f"auto_pad={auto}")
    pads = [int(v) for v in node.attrs.get("pads", (0, 0, 0, 0))] if auto != "VALID" else [0, 0, 0, 0]
    if len(pads) != 4:
        raise ctx.unsupported(node, f"pads {pads} (only 2-d operations are converted)")
    return pads[0], pads[1], pads[2], pads[3]


def _conv(node: GraphNode, ctx: _Context) -> _Built:
    weight = ctx.tensor(node, node.inputs[1], "weight")
    if weight.ndim != 4:
        raise ctx.unsupported(node, f"a {weight.ndim - 2}-d convolution (only 2-d ones are converted)")
    out_channels, per_group, kh, kw = (int(v) for v in weight.shape)
    groups = int(node.attrs.get("group", 1))
    top, left, bottom, right = _pads(node, ctx)
    bias = len(node.inputs) > 2 and bool(node.inputs[2])
    kwargs: dict[str, Any] = dict(
        stride=tuple(node.attrs.get("strides", (1, 1))),
        dilation=tuple(node.attrs.get("dilations", (1, 1))),
        groups=groups,
        bias=bias,
    )
    args = (per_group * groups, out_channels, (kh, kw))
    conv: nn.Conv2d
    if (top, left) == (bottom, right):
        conv = nn.Conv2d(*args, padding=(top, left), **kwargs)
    else:
        conv = PaddedConv2d(*args, pads=(left, right, top, bottom), **kwargs)
    sources = [("weight", node.inputs[1], COPY)] + ([("bias", node.inputs[2], COPY)] if bias else [])
    return _Built(conv, node.inputs[:1], ctx.rank(node.inputs[0]), sources)


def _batch_norm(node: GraphNode, ctx: _Context) -> _Built:
    scale = ctx.tensor(node, node.inputs[1], "scale")
    rank = ctx.rank(node.inputs[0])
    eps = float(node.attrs.get("epsilon", 1e-5))
    momentum = 1.0 - float(node.attrs.get("momentum", 0.9))  # ONNX keeps m of the old statistics, torch 1 - m
    if rank == 4:
        bn: nn.Module = nn.BatchNorm2d(int(scale.shape[0]), eps=eps, momentum=momentum)
    elif rank in (2, 3):
        bn = nn.BatchNorm1d(int(scale.shape[0]), eps=eps, momentum=momentum)
    else:
        raise ctx.unsupported(node, f"batch normalisation of a rank-{rank} tensor")
    for k in range(1, 5):
        ctx.tensor(node, node.inputs[k], "statistics")
    names = ("weight", "bias", "running_mean", "running_var")
    return _Built(bn, node.inputs[:1], rank, [(n, t, COPY) for n, t in zip(names, node.inputs[1:5])])


def _prelu(node: GraphNode, ctx: _Context) -> _Built:
    slope = ctx.tensor(node, node.inputs[1], "slope")
    rank = ctx.rank(node.inputs[0])
    if slope.size == 1:
        return _Built(nn.PReLU(1), node.inputs[:1], rank, [("weight", node.inputs[1], FLATTEN)])
    shape = list(slope.shape)
    while shape and shape[0] == 1 and len(shape) > rank - 1:
        shape.pop(0)
    if len(shape) != rank - 1 or any(v != 1 for v in shape[1:]):
        raise ctx.unsupported(node, f"a slope of shape {tuple(slope.shape)} on a rank-{rank} tensor (not per channel)")
    return _Built(nn.PReLU(int(shape[0])), node.inputs[:1], rank, [("weight", node.inputs[1], FLATTEN)])


def _gemm(node: GraphNode, ctx: _Context) -> _Built:
    if int(node.attrs.get("transA", 0)):
        raise ctx.unsupported(node, "transA=1")
    weight = ctx.tensor(node, node.inputs[1], "B (the weight matrix)")
    trans_b = int(node.attrs.get("transB", 0))
    out_features, in_features = weight.shape if trans_b else weight.shape[::-1]
    bias = len(node.inputs) > 2 and bool(node.inputs[2])
    if bias and ctx.tensor(node, node.inputs[2], "C (the bias)").size not in (1, out_features):
        raise ctx.unsupported(node, f"a bias C of shape {ctx.graph.tensors[node.inputs[2]].shape}")
    alpha, beta = float(node.attrs.get("alpha", 1.0)), float(node.attrs.get("beta", 1.0))
    linear = nn.Linear(int(in_features), int(out_features), bias=bias)
    sources = [("weight", node.inputs[1], f"{COPY if trans_b else TRANSPOSE}*{alpha!r}")]
    if bias:
        sources.append(("bias", node.inputs[2], f"{BROADCAST}*{beta!r}"))
    return _Built(linear, node.inputs[:1], 2, sources)


def _operands(node: GraphNode, ctx: _Context) -> _Built:
    if node.op != "Concat" and len(node.inputs) != 2:
        raise ctx.unsupported(node, f"{len(node.inputs)} operands")
    slots: list[str | None] = []
    constants: dict[int, torch.Tensor] = {}
    sources = []
    for k, name in enumerate(node.inputs):
        if ctx.const(name):
            buffer = _key(name, set(slots) | {"op", "axis", "slots"}, fallback=f"const{k}")
            slots.append(buffer)
            constants[k] = torch.from_numpy(np.array(ctx.graph.tensors[name], np.float32))
            sources.append((buffer, name, COPY))
        else:
            slots.append(None)
    if all(s is not None for s in slots):
        raise ctx.unsupported(node, "every operand is a constant (fold it into the file)")
    axis = int(node.attrs.get("axis", 0))
    rank = max(ctx.rank(n) for n in node.inputs)
    acts = tuple(n for n, s in zip(node.inputs, slots) if s is None)
    return _Built(Operands(node.op, slots, constants, axis), acts, rank, sources)


def _max_pool(node: GraphNode, ctx: _Context) -> _Built:
    kernel = tuple(int(v) for v in node.attrs["kernel_shape"])
    if len(kernel) != 2:
        raise ctx.unsupported(node, f"a {len(kernel)}-d pool (only 2-d ones are converted)")
    top, left, bottom, right = _pads(node, ctx)
    kwargs = dict(
        stride=tuple(node.attrs.get("strides", (1, 1))),
        dilation=tuple(node.attrs.get("dilations", (1, 1))),
        ceil_mode=bool(node.attrs.get("ceil_mode", 0)),
    )
    rank = ctx.rank(node.inputs[0])
    if (top, left) == (bottom, right):
        return _Built(nn.MaxPool2d(kernel, padding=(top, left), **kwargs), node.inputs[:1], rank)  # type: ignore[arg-type]
    pool = nn.MaxPool2d(kernel, padding=0, **kwargs)  # type: ignore[arg-type]
    return _Built(Pad(pool, (left, right, top, bottom), float("-inf")), node.inputs[:1], rank)


def _dropout(node: GraphNode, ctx: _Context) -> _Built:
    ratio = float(node.attrs.get("ratio", 0.5))
    if len(node.inputs) > 1 and node.inputs[1]:
        ratio = float(ctx.tensor(node, node.inputs[1], "ratio"))
    return _Built(nn.Dropout(ratio), node.inputs[:1], ctx.rank(node.inputs[0]))


def _reshape(node: GraphNode, ctx: _Context) -> _Built:
    shape = [int(v) for v in ctx.tensor(node, node.inputs[1], "shape").reshape(-1)]
    if int(node.attrs.get("allowzero", 0)):
        raise ctx.unsupported(node, "allowzero=1")
    if len(shape) < 2:
        raise ctx.unsupported(node, f"a reshape to {shape}, which mixes the batch dimension with the others")
    return _Built(Reshape(shape), node.inputs[:1], len(shape))


def _flatten(node: GraphNode, ctx: _Context) -> _Built:
    return _Built(Flatten(int(node.attrs.get("axis", 1))), node.inputs[:1], 2)


def _transpose(node: GraphNode, ctx: _Context) -> _Built:
    rank = ctx.rank(node.inputs[0])
    perm = node.attrs.get("perm", tuple(reversed(range(rank))))
    return _Built(Transpose(perm), node.inputs[:1], rank)


def _simple(factory: Callable[[], nn.Module]) -> Callable[[GraphNode, _Context], _Built]:
    def build(node: GraphNode, ctx: _Context) -> _Built:
        return _Built(factory(), node.inputs[:1], ctx.rank(node.inputs[0]))

    return build


BUILDERS: dict[str, Callable[[GraphNode, _Context], _Built]] = {
    "Conv": _conv,
    "BatchNormalization": _batch_norm,
    "PRelu": _prelu,
    "Gemm": _gemm,
    "Add": _operands,
    "Sub": _operands,
    "Mul": _operands,
    "Div": _operands,
    "Concat": _operands,
    "MaxPool": _max_pool,
    "Dropout": _dropout,
    "Reshape": _reshape,
    "Flatten": _flatten,
    "Transpose": _transpose,
    "Relu": _simple(nn.ReLU),
    "Sigmoid": _simple(nn.Sigmoid),
    "Identity": _simple(nn.Identity),
    "GlobalAveragePool": _simple(GlobalAveragePool),
}


_RESERVED = frozenset(dir(nn.ModuleDict()))  # names a module already has (training, forward, keys ...)


def _key(name: str, used: set[Any], fallback: str) -> str:
    """A module / buffer name from a file's name: word characters only, unique, not an nn.Module attribute."""
    key = re.sub(r"\W", "_", name) or fallback
    base, k = key, 1
    while key in used or key in _RESERVED:
        key, k = f"{base}_{k}", k + 1
    return key


def _check_supported(graph: OnnxGraph) -> None:
    bad = [n for n in graph.nodes if n.op not in BUILDERS or n.domain not in ("", "ai.onnx")]
    if bad:
        others = sorted({n.op for n in bad[1:]} - {bad[0].op})
        raise UnsupportedOnnxOpError(
            f"{graph.path}: node {bad[0].name!r} is a {bad[0].op} operation"
            + (f" (domain {bad[0].domain})" if bad[0].domain not in ("", "ai.onnx") else "")
            + (f" (also unsupported here: {', '.join(others)})" if others else "")
            + f", which facemetric's ONNX converter does not implement (it converts {', '.join(sorted(BUILDERS))}); "
            "run the file with onnxruntime instead (backend=onnx)"
        )


class OnnxNet(nn.Module):
    """The graph of an ONNX recogniser as PyTorch layers, freshly initialised (:func:`load_onnx_weights`
    copies the file's weights in).

    Attributes:
        embedding_dim: the size of the graph's output.
        in_channels, input_size: the input the file declares (112x112 for ArcFace-template recognisers).
        path, source: the file it was built from, and its name.
        sources: (state-dict entry, the file's tensor, conversion) for every tensor taken from the file.
        normalize: ``forward`` returns unit-length embeddings (False: the graph's raw output).
    """

    def __init__(self, graph: OnnxGraph, normalize: bool = True) -> None:
        super().__init__()
        _check_supported(graph)
        self.normalize = normalize
        self.path, self.source = str(graph.path), graph.path.name
        self.input_name, self.output_name = graph.input, graph.output
        channels, height, width = (graph.input_shape + (None,) * 4)[1:4]
        self.in_channels = channels or 3
        self.input_size = (height or 112, width or 112)
        self.layers = nn.ModuleDict()
        self.sources: list[tuple[str, str, str]] = []
        ctx = _Context(graph)
        steps: list[tuple[str, tuple[str, ...], str]] = []
        for node in graph.nodes:
            for name in node.inputs:
                if name and name not in ctx.ranks and name not in graph.tensors:
                    raise OnnxGraphError(
                        f"{graph.path}: node {node.name!r} reads {name!r} before any node computes it; the graph "
                        "is not in topological order (re-save it with onnx, which sorts it)"
                    )
            built = BUILDERS[node.op](node, ctx)
            key = _key(node.name, set(self.layers.keys()), fallback=f"{node.op}_{len(steps)}")
            self.layers[key] = built.module
            self.sources += [(f"layers.{key}.{param}", tensor, how) for param, tensor, how in built.sources]
            ctx.ranks[node.outputs[0]] = built.rank
            steps.append((key, built.inputs, node.outputs[0]))
        used = [name for node in graph.nodes for name in node.inputs]
        extra = [o for node in graph.nodes for o in node.outputs[1:] if o and o in used + [graph.output]]
        if extra:
            raise OnnxGraphError(f"{graph.path}: the graph uses {extra}, second outputs of nodes the converter drops")
        if graph.output not in ctx.ranks or ctx.ranks[graph.output] != 2:
            raise OnnxGraphError(f"{graph.path}: its output {graph.output!r} is not an (N, D) embedding matrix")
        # free each value after its last use: the forward keeps only what autograd keeps
        last = {name: k for k, (_, inputs, _) in enumerate(steps) for name in inputs}
        self.steps = tuple(
            (key, inputs, out, tuple(n for n in dict.fromkeys(inputs) if last.get(n) == k and n != graph.output))
            for k, (key, inputs, out) in enumerate(steps)
        )
        declared = graph.output_shape[-1] if graph.output_shape else None
        self.embedding_dim = int(declared) if declared else self._probe_dim()

    @torch.no_grad()
    def _probe_dim(self) -> int:
        was = self.training
        try:
            out = self.eval()._raw(torch.zeros(1, self.in_channels, *self.input_size))
        finally:
            self.train(was)
        return int(out.shape[1])

    def _raw(self, x: torch.Tensor) -> torch.Tensor:
        values = {self.input_name: x}
        for key, inputs, out, free in self.steps:
            values[out] = self.layers[key](*[values[n] for n in inputs])
            for name in free:
                del values[name]
        return values[self.output_name]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Unit-length embeddings (``normalize=False``: the graph's own output)."""
        out = self._raw(x)
        return F.normalize(out, dim=1) if self.normalize else out

    def onnx_names(self) -> dict[str, str]:
        """The file's tensor behind each state-dict entry taken from it."""
        return {key: tensor for key, tensor, _ in self.sources}

    @torch.no_grad()
    def fused(self) -> OnnxNet:
        """An inference copy (eval mode) with each batch normalisation folded into the convolution or linear
        layer before it (when nothing else reads that layer's output): the same outputs to float rounding."""
        net = copy.deepcopy(self).eval()
        producer = {out: (key, k) for k, (key, _, out, _) in enumerate(net.steps)}
        readers: dict[str, int] = {}
        for _, inputs, _, _ in net.steps:
            for name in inputs:
                readers[name] = readers.get(name, 0) + 1
        for key, inputs, _, _ in net.steps:
            bn = net.layers[key]
            if not isinstance(bn, nn.modules.batchnorm._BatchNorm) or inputs[0] not in producer:
                continue
            prev_key, _ = producer[inputs[0]]
            prev = net.layers[prev_key]
            if (
                readers.get(inputs[0]) != 1
                or inputs[0] == net.output_name
                or not isinstance(prev, (nn.Conv2d, nn.Linear))
            ):
                continue
            assert bn.running_var is not None and bn.running_mean is not None
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            bias = prev.bias if prev.bias is not None else torch.zeros_like(bn.running_mean)
            new_bias = (bias - bn.running_mean) * scale + bn.bias
            prev.weight.mul_(scale.view(-1, *([1] * (prev.weight.dim() - 1))))
            prev.bias = nn.Parameter(new_bias)
            net.layers[key] = nn.Identity()
        return net


def _convert(array: np.ndarray, how: str, shape: torch.Size) -> torch.Tensor:
    kind, _, factor = how.partition("*")
    value = np.asarray(array, np.float32)
    if kind == TRANSPOSE:
        value = value.T
    elif kind in (FLATTEN, BROADCAST):
        value = np.broadcast_to(value.reshape(-1), tuple(shape)) if kind == BROADCAST else value.reshape(-1)
    if factor and float(factor) != 1.0:
        value = value * np.float32(factor)
    return torch.from_numpy(np.array(value, np.float32, order="C", copy=True))


@torch.no_grad()
def load_onnx_weights(net: OnnxNet, graph: OnnxGraph) -> None:
    """Copy the file's tensors into ``net`` (built from the same file's graph)."""
    own = net.state_dict()
    for key, tensor, how in net.sources:
        if key not in own or tensor not in graph.tensors:
            raise OnnxGraphError(f"{graph.path}: {tensor!r} ({key}) is not in this file; was the model built from it?")
        value = _convert(graph.tensors[tensor], how, own[key].shape)
        if value.shape != own[key].shape:
            raise OnnxGraphError(
                f"{graph.path}: {tensor!r} has shape {tuple(value.shape)}, {key} has {tuple(own[key].shape)}; "
                "the model was built from another file"
            )
        own[key].copy_(value)


def onnx_model(path: str | Path, normalize: bool = True, weights: bool = True) -> OnnxNet:
    """The recogniser in ``path`` as a PyTorch module, with the file's weights (``weights=False``: freshly
    initialised)."""
    graph = read_graph(path)
    net = OnnxNet(graph, normalize)
    if weights:
        load_onnx_weights(net, graph)
    return net
