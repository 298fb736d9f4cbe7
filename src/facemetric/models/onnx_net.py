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
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from facemetric.models.onnx_graph import OnnxGraph, OnnxGraphError, read_graph
from facemetric.models.onnx_ops import (
    BROADCAST,
    BUILDERS,
    FLATTEN,
    TRANSPOSE,
    BuildContext,
    check_supported,
    module_key,
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
        check_supported(graph)
        self.normalize = normalize
        self.path, self.source = str(graph.path), graph.path.name
        self.input_name, self.output_name = graph.input, graph.output
        channels, height, width = (graph.input_shape + (None,) * 4)[1:4]
        self.in_channels = channels or 3
        self.input_size = (height or 112, width or 112)
        self.layers = nn.ModuleDict()
        self.sources: list[tuple[str, str, str]] = []
        ctx = BuildContext(graph)
        steps: list[tuple[str, tuple[str, ...], str]] = []
        for node in graph.nodes:
            for name in node.inputs:
                if name and name not in ctx.ranks and name not in graph.tensors:
                    raise OnnxGraphError(
                        f"{graph.path}: node {node.name!r} reads {name!r} before any node computes it; the graph "
                        "is not in topological order (re-save it with onnx, which sorts it)"
                    )
            built = BUILDERS[node.op](node, ctx)
            key = module_key(node.name, set(self.layers.keys()), fallback=f"{node.op}_{len(steps)}")
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
