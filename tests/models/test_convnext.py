from __future__ import annotations

import io

import pytest
import torch
import torch.nn.functional as F

import facemetric.models.convnext  # noqa: F401  (registers the convnext_face family)
from facemetric.models.convnext import ConvNeXtBlock, DropPath
from facemetric.models.registry import build_model


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def tiny_cfg(**over) -> dict:
    """A 4-stage ConvNeXt small enough for unit tests (a few ms per forward at 32x32)."""
    return {
        "embedding_dim": 16,
        "in_channels": 3,
        "input_size": (32, 32),
        "depths": (1, 1, 1, 1),
        "dims": (8, 16, 16, 16),
        **over,
    }


def test_block_parameter_count_by_hand() -> None:
    d = 48
    dwconv = 7 * 7 * d + d  # depthwise 7x7 weights + bias = 2352 + 48
    norm = d + d  # LayerNorm weight + bias
    expand = d * (4 * d) + 4 * d  # Linear 48 -> 192 = 9216 + 192
    project = (4 * d) * d + d  # Linear 192 -> 48 = 9216 + 48
    gamma = d  # layer scale
    assert dwconv + norm + expand + project + gamma == 21216
    assert n_params(ConvNeXtBlock(d)) == 21216
    assert n_params(ConvNeXtBlock(d, layer_scale=0.0)) == 21216 - d  # 0 disables the layer scale


def expected_count(depths: tuple[int, ...], dims: tuple[int, ...], emb: int, side: int, cin: int = 3) -> int:
    """Written-out count: stem + blocks (8 d^2 + 58 d each) + downsamplings + flatten head."""
    stem = cin * dims[0] * 2 * 2 + dims[0] + 2 * dims[0]  # conv 2x2 + bias, LN
    blocks = sum(n * (8 * d * d + 58 * d) for n, d in zip(depths, dims))
    downs = sum(2 * a + a * b * 2 * 2 + b for a, b in zip(dims, dims[1:]))  # LN, conv 2x2 + bias
    s = side // 2 ** len(depths)
    head = 2 * dims[-1] + dims[-1] * s * s * emb + emb + 2 * emb  # BN2d, FC + bias, BN1d
    return stem + blocks + downs + head


@pytest.mark.parametrize(
    ("name", "emb", "figure"),
    [
        # tiny: stem 720 + blocks 4,441,152 + downs 388,416 + head 768 + 9,633,792 + 512 + 1,024 (under 21 M)
        ("convnext_face_tiny", 512, 14_466_384),
        ("convnext_face_tiny", 128, 7_239_888),
        # small: 12,448,576 trunk + 12,847,616 head at 512-d: over the 21 M cap; at 128-d it fits
        ("convnext_face_small", 512, 25_296_192),
        ("convnext_face_small", 128, 15_661_248),
    ],
)
def test_registered_parameter_counts(name: str, emb: int, figure: int) -> None:
    depths, dims = {
        "convnext_face_tiny": ((2, 2, 6, 2), (48, 96, 192, 384)),
        "convnext_face_small": ((3, 3, 9, 3), (64, 128, 256, 512)),
    }[name]
    assert expected_count(depths, dims, emb, 112) == figure
    with torch.device("meta"):  # shapes only: no memory, no initialisation time
        model = build_model(name, embedding_dim=emb, in_channels=3, input_size=(112, 112))
    assert abs(n_params(model) - figure) <= 0.02 * figure


@pytest.mark.parametrize("head", ["flatten", "gap"])
def test_shape_and_unit_norm_at_two_sizes(head: str) -> None:
    torch.manual_seed(0)
    model = build_model("convnext_face_tiny", embedding_dim=32, in_channels=3, input_size=(112, 112), head=head).eval()
    assert model.embedding_dim == 32
    with torch.no_grad():
        features = model.forward_features(torch.randn(2, 3, 112, 112))
        e = model.head(features)
    assert features.shape == (2, 384, 7, 7)  # stages at 56, 28, 14, 7
    assert e.shape == (2, 32)
    assert torch.allclose(e.norm(dim=1), torch.ones(2), atol=1e-5)

    model = build_model("convnext_face", **tiny_cfg(in_channels=1, input_size=(50, 37), head=head)).eval()
    with torch.no_grad():
        e = model(torch.randn(2, 1, 50, 37))  # odd sides: every halving floors
    assert e.shape == (2, 16)
    assert torch.allclose(e.norm(dim=1), torch.ones(2), atol=1e-5)


def test_drop_path_identity_in_eval_active_in_train() -> None:
    dp, x = DropPath(0.5), torch.randn(64, 4, 3, 3)
    dp.eval()
    assert torch.equal(dp(x), x)
    dp.train()
    y = dp(x).flatten(1)
    kept = (y != 0).all(dim=1)
    assert 0 < kept.sum() < 64  # per sample: some rows dropped, some kept
    assert torch.allclose(y[kept], 2 * x.flatten(1)[kept])  # survivors rescaled by 1 / keep

    torch.manual_seed(0)
    model = build_model("convnext_face", **tiny_cfg(drop_path=0.5, layer_scale=1.0))
    rates = [b.drop_path.p for stage in model.stages for b in stage]
    assert rates == pytest.approx([0.0, 0.5 / 3, 1.0 / 3, 0.5])  # linear over the blocks
    x = torch.randn(2, 3, 32, 32)
    model.train()
    assert not torch.equal(model(x), model(x))
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))


def test_one_sgd_step_lowers_loss() -> None:
    torch.manual_seed(0)
    model = build_model("convnext_face_tiny", embedding_dim=32, in_channels=3, input_size=(48, 48), drop_path=0.0)
    model.train()  # drop_path=0 so both losses see the same network (BN uses the batch statistics)
    x, targets = torch.randn(4, 3, 48, 48), F.normalize(torch.randn(4, 32), dim=1)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)

    def loss_fn() -> torch.Tensor:
        return (1 - F.cosine_similarity(model(x), targets, dim=1)).mean()

    before = loss_fn()
    opt.zero_grad()
    before.backward()
    assert all(p.grad is not None for p in model.parameters())
    opt.step()
    with torch.no_grad():
        after = loss_fn()
    assert after.item() < before.item()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"depths": (1, 1), "dims": (8,)}, "same length"),
        ({"depths": (1, 0, 1, 1)}, "positive"),
        ({"drop_path": 1.0}, "drop_path"),
        ({"layer_scale": -1e-6}, "layer_scale"),
        ({"head": "avg"}, "head"),
        ({"dropout": -0.1}, "dropout"),
        ({"input_size": (15, 64)}, "at least 16"),
    ],
)
def test_bad_options_raise(override: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_model("convnext_face", **tiny_cfg(**override))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the TorchScript exporter needs no onnx package
def test_exports_to_onnx_in_eval_mode() -> None:
    model = build_model("convnext_face", **tiny_cfg(drop_path=0.3)).eval()
    buf = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(model, (torch.randn(1, 3, 32, 32),), buf, dynamo=False, opset_version=17)
    assert len(buf.getvalue()) > 0
