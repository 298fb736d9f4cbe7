"""``arcface_mbf_slim``'s registration and weights: ``arcface-mbf``'s tensors in its network (``MbfSlim``), cut to
the model's width and size.

The file's 49 convolutions, 34 PReLUs, linear layer and batch norm come in the order the network runs them, which
is the order :class:`MbfSlim` declares them: the teacher's tensors are read into a full-width ``MbfSlim`` (equal
to the file's network, checked by the tests against onnxruntime), then each group of channels that must be cut
alike keeps the ``width`` share that scores highest. A channel's score is the size of what writes it (the rows
of the convolutions producing it) times the size of what reads it (the columns of the convolutions consuming
it): a channel written large but read small, or the reverse, matters little to the output. The groups:

* the stem's channels, kept in the pairs its grouped conv reads together;
* each depthwise block's hidden channels (its expand rows, depthwise kernels and project columns);
* each stage's residual stream: every block of the stage writes and reads the same channels;
* the 1x1 conv's 512 channels after the last stage.

The last conv's 64 channels, the linear layer and the batch norm are kept whole; at an input size other than 112
the linear layer's weights over the 7x7 map are resized to the smaller map (:func:`resampled_linear`).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from facemetric.core.errors import ConfigError
from facemetric.core.weight_files import ARCFACE_MBF
from facemetric.models.mbf_slim import SIDE, STRIDE, DepthwiseBlock, MbfSlim
from facemetric.models.onnx_graph import read_graph
from facemetric.models.pretrained_onnx import ALIGN, ARCFACE_NORMALIZATION
from facemetric.models.registry import register_model
from facemetric.models.spec import ModelSpec, PretrainedWeights


def teacher_network(normalize: bool = True) -> MbfSlim:
    """``arcface-mbf``'s own network as a full-width :class:`MbfSlim`, its tensors read from the file."""
    graph = read_graph(ARCFACE_MBF.locate())
    net = MbfSlim(width=1.0, normalize=normalize)
    tensors = graph.tensors
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    prelus = [m for m in net.modules() if isinstance(m, nn.PReLU)]
    nodes = {op: [n for n in graph.nodes if n.op == op] for op in ("Conv", "PRelu", "Gemm", "BatchNormalization")}
    if [len(nodes[op]) for op in nodes] != [len(convs), len(prelus), 1, 1]:
        raise ConfigError(f"{graph.path.name} is not the arcface-mbf network (w600k_mbf.onnx) arcface_mbf_slim reads")
    with torch.no_grad():
        for conv, node in zip(convs, nodes["Conv"], strict=True):
            conv.weight.copy_(torch.from_numpy(tensors[node.inputs[1]].copy()))
            assert conv.bias is not None
            conv.bias.copy_(torch.from_numpy(tensors[node.inputs[2]].copy()))
        for prelu, node in zip(prelus, nodes["PRelu"], strict=True):
            prelu.weight.copy_(torch.from_numpy(tensors[node.inputs[1]].reshape(-1).copy()))
        gemm, bn = nodes["Gemm"][0], nodes["BatchNormalization"][0]
        net.fc.weight.copy_(torch.from_numpy(tensors[gemm.inputs[1]].copy()))
        net.fc.bias.copy_(torch.from_numpy(tensors[gemm.inputs[2]].copy()))
        for name, tensor in zip(("weight", "bias", "running_mean", "running_var"), bn.inputs[1:], strict=True):
            getattr(net.bn, name).copy_(torch.from_numpy(tensors[tensor].copy()))
    return net


def _rows(conv: nn.Conv2d) -> torch.Tensor:
    """The size of each output channel's weights."""
    return conv.weight.flatten(1).norm(dim=1)


def _columns(conv: nn.Conv2d) -> torch.Tensor:
    """The size of each input channel's weights (an ungrouped conv)."""
    return conv.weight.transpose(0, 1).flatten(1).norm(dim=1)


def _top(score: torch.Tensor, keep: int) -> torch.Tensor:
    """The ``keep`` highest-scoring indices, in their original order."""
    return score.topk(keep).indices.sort().values


def _stage_groups(net: MbfSlim) -> list[tuple[list[DepthwiseBlock], DepthwiseBlock | None]]:
    """Each stage's blocks (its stride-2 first block, then the residual ones) and the block that reads it next."""
    blocks = net.block_list
    starts = [i for i, b in enumerate(blocks) if not b.residual] + [len(blocks)]
    return [(blocks[a:b], blocks[b] if b < len(blocks) else None) for a, b in zip(starts[:-1], starts[1:], strict=True)]


def channel_choice(full: MbfSlim, student: MbfSlim) -> dict[str, torch.Tensor]:
    """For every convolution of ``full`` (by module name): the output channels the student keeps."""
    names = {m: n for n, m in full.named_modules()}
    keep: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        # the stem: pairs of channels (the grouped conv reads each pair together)
        c1, c2 = full.stem_convs
        first = full.block_list[0].expand.conv
        score = (_rows(c1) + _rows(c2)) * _columns(first)
        pairs = _top(score.view(-1, 2).sum(1), student.stem_convs[0].out_channels // 2)
        stem = torch.stack([2 * pairs, 2 * pairs + 1], 1).flatten()
        keep[names[c1]] = keep[names[c2]] = stem
        for (blocks, reader), (s_blocks, _) in zip(_stage_groups(full), _stage_groups(student), strict=True):
            for block, s_block in zip(blocks, s_blocks, strict=True):  # hidden channels
                score = _rows(block.expand.conv) * _rows(block.depthwise.conv) * _columns(block.project.conv)
                hidden = _top(score, s_block.expand.conv.out_channels)
                keep[names[block.expand.conv]] = keep[names[block.depthwise.conv]] = hidden
            written = torch.stack([_rows(b.project.conv) for b in blocks]).sum(0)  # the residual stream
            readers = [b.expand.conv for b in blocks[1:]] + [reader.expand.conv if reader else full.sep.conv]
            read = torch.stack([_columns(conv) for conv in readers]).sum(0)
            stream = _top(written * read, s_blocks[0].project.conv.out_channels)
            for block in blocks:
                keep[names[block.project.conv]] = stream
        keep[names[full.sep.conv]] = _top(
            _rows(full.sep.conv) * _columns(full.reduce.conv), student.sep.conv.out_channels
        )
        keep[names[full.reduce.conv]] = torch.arange(full.reduce.conv.out_channels)
    return keep


def prune_into(full: MbfSlim, student: MbfSlim) -> None:
    """Copy ``full``'s weights into ``student`` (narrower, or reading a smaller face): each conv's kept rows and its
    inputs' kept columns, the linear layer resized to the student's last map."""
    keep = channel_choice(full, student)
    s_modules = dict(student.named_modules())
    f_modules = dict(full.named_modules())
    previous = torch.arange(full.stem_convs[0].in_channels)  # the channels the next ungrouped conv reads
    stream = previous
    with torch.no_grad():
        for name, module in full.named_modules():
            if not isinstance(module, nn.Conv2d):
                continue
            target = s_modules[name]
            rows = keep[name]
            weight = module.weight[rows]
            if module.groups == 1:
                is_expand = name.endswith("expand.0") or name.startswith("sep")
                weight = weight[:, stream if is_expand else previous]
            assert isinstance(target, nn.Conv2d) and target.bias is not None and module.bias is not None
            target.weight.copy_(weight)
            target.bias.copy_(module.bias[rows])
            prelu_name = name[: -len(".0")] + ".1"
            if prelu_name in s_modules:
                s_modules[prelu_name].weight.copy_(f_modules[prelu_name].weight[rows])
            previous = rows
            if name.endswith("project.0") or name == "stem.1.0":
                stream = rows
        student.fc.weight.copy_(resampled_linear(full.fc.weight, full.final_size, student.final_size))
        student.fc.bias.copy_(full.fc.bias)
        student.bn.load_state_dict(full.bn.state_dict())


def resampled_linear(weight: torch.Tensor, size: tuple[int, int], new_size: tuple[int, int]) -> torch.Tensor:
    """The linear layer's weights over a ``size`` map (64 channels) for a ``new_size`` map of the same face: each
    channel's spatial weights resized (bilinear, antialiased) and scaled by the ratio of the areas, so that a map
    constant over the face gives nearly the same output (cosine 0.996 on arcface-mbf's layer, 7x7 to 4x4)."""
    if tuple(size) == tuple(new_size):
        return weight
    grid = weight.view(weight.shape[0], -1, *size)
    smaller = F.interpolate(grid, size=new_size, mode="bilinear", align_corners=False, antialias=True)
    return (smaller * (size[0] * size[1]) / (new_size[0] * new_size[1])).flatten(1)


def load_pruned(model: nn.Module) -> list[str]:
    """``model.pretrained: arcface-mbf`` for ``arcface_mbf_slim``: the teacher's weights (its strongest channels
    below full width, its linear layer resized below 112 pixels); none left out."""
    if not isinstance(model, MbfSlim) or model.embedding_dim != 512:
        raise ConfigError(
            "model.pretrained: arcface-mbf's weights fit arcface_mbf_slim with model.embedding_dim: 512 (the "
            "teacher's linear layer is kept whole)"
        )
    prune_into(teacher_network(model.normalize), model)
    return []


ARCFACE_MBF_PRUNED = PretrainedWeights(
    load=load_pruned, align=ALIGN, input_size=(SIDE, SIDE), min_side=STRIDE, normalization=ARCFACE_NORMALIZATION
)


# the class itself is the builder: its arguments are the model's options (``width``, ``normalize``)
register_model(
    "arcface_mbf_slim",
    spec=ModelSpec(
        input_size=(SIDE, SIDE),
        embedding_dim=512,
        normalization=ARCFACE_NORMALIZATION,
        bf16_slower_on_cpu=True,  # depthwise convolutions, as mobilefacenet
        pretrained={"arcface-mbf": ARCFACE_MBF_PRUNED},
    ),
)(MbfSlim)
