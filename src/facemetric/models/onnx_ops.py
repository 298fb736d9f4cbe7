"""Each ONNX operation :mod:`.onnx_net` supports, as the PyTorch layer it becomes (with the file tensors that
fill its parameters), and the refusal of any other."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from facemetric.models.onnx_graph import GraphNode, OnnxGraph, UnsupportedOnnxOpError

# the state-dict entry <- file tensor conversions OnnxNet.sources names
COPY, FLATTEN, TRANSPOSE, BROADCAST = "copy", "flatten", "transpose", "broadcast"


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


class BuildContext:
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


def _pads(node: GraphNode, ctx: BuildContext) -> tuple[int, int, int, int]:
    """ONNX (top, left, bottom, right) pads of a 2-d convolution or pool; auto_pad other than NOTSET/VALID refused."""
    auto = node.attrs.get("auto_pad", "NOTSET")
    if auto not in ("NOTSET", "VALID", ""):
        raise ctx.unsupported(node, f"auto_pad={auto}")
    pads = [int(v) for v in node.attrs.get("pads", (0, 0, 0, 0))] if auto != "VALID" else [0, 0, 0, 0]
    if len(pads) != 4:
        raise ctx.unsupported(node, f"pads {pads} (only 2-d operations are converted)")
    return pads[0], pads[1], pads[2], pads[3]


def _conv(node: GraphNode, ctx: BuildContext) -> _Built:
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


def _batch_norm(node: GraphNode, ctx: BuildContext) -> _Built:
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


def _prelu(node: GraphNode, ctx: BuildContext) -> _Built:
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


def _gemm(node: GraphNode, ctx: BuildContext) -> _Built:
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


def _operands(node: GraphNode, ctx: BuildContext) -> _Built:
    if node.op != "Concat" and len(node.inputs) != 2:
        raise ctx.unsupported(node, f"{len(node.inputs)} operands")
    slots: list[str | None] = []
    constants: dict[int, torch.Tensor] = {}
    sources = []
    for k, name in enumerate(node.inputs):
        if ctx.const(name):
            buffer = module_key(name, set(slots) | {"op", "axis", "slots"}, fallback=f"const{k}")
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


def _max_pool(node: GraphNode, ctx: BuildContext) -> _Built:
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


def _dropout(node: GraphNode, ctx: BuildContext) -> _Built:
    ratio = float(node.attrs.get("ratio", 0.5))
    if len(node.inputs) > 1 and node.inputs[1]:
        ratio = float(ctx.tensor(node, node.inputs[1], "ratio"))
    return _Built(nn.Dropout(ratio), node.inputs[:1], ctx.rank(node.inputs[0]))


def _reshape(node: GraphNode, ctx: BuildContext) -> _Built:
    shape = [int(v) for v in ctx.tensor(node, node.inputs[1], "shape").reshape(-1)]
    if int(node.attrs.get("allowzero", 0)):
        raise ctx.unsupported(node, "allowzero=1")
    if len(shape) < 2:
        raise ctx.unsupported(node, f"a reshape to {shape}, which mixes the batch dimension with the others")
    return _Built(Reshape(shape), node.inputs[:1], len(shape))


def _flatten(node: GraphNode, ctx: BuildContext) -> _Built:
    return _Built(Flatten(int(node.attrs.get("axis", 1))), node.inputs[:1], 2)


def _transpose(node: GraphNode, ctx: BuildContext) -> _Built:
    rank = ctx.rank(node.inputs[0])
    perm = node.attrs.get("perm", tuple(reversed(range(rank))))
    return _Built(Transpose(perm), node.inputs[:1], rank)


def _simple(factory: Callable[[], nn.Module]) -> Callable[[GraphNode, BuildContext], _Built]:
    def build(node: GraphNode, ctx: BuildContext) -> _Built:
        return _Built(factory(), node.inputs[:1], ctx.rank(node.inputs[0]))

    return build


BUILDERS: dict[str, Callable[[GraphNode, BuildContext], _Built]] = {
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


def module_key(name: str, used: set[Any], fallback: str) -> str:
    """A module / buffer name from a file's name: word characters only, unique, not an nn.Module attribute."""
    key = re.sub(r"\W", "_", name) or fallback
    base, k = key, 1
    while key in used or key in _RESERVED:
        key, k = f"{base}_{k}", k + 1
    return key


def check_supported(graph: OnnxGraph) -> None:
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
