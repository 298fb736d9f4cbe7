"""An ONNX file's graph, read once per file version: its nodes, initialisers, input and output.

:func:`read_graph` needs the ``onnx`` package (``pip install 'facemetric[onnx]'``). :mod:`.onnx_net` builds
the graph as trainable PyTorch layers (:mod:`.onnx_ops` converts each operation).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facemetric.core.errors import FacemetricError, require


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
