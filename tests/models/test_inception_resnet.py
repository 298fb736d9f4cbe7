from __future__ import annotations

import io

import pytest
import torch
import torch.nn.functional as F

import facemetric.models.inception_resnet  # noqa: F401  (registers inception_resnet_v1*)
from facemetric.models.inception_resnet import (
    MIN_INPUT_SIZE,
    Block8,
    Block17,
    Block35,
    ReductionA,
    ReductionB,
    spatial_sizes,
)
from facemetric.models.registry import build_model


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def conv_bn(cin: int, cout: int, kh: int, kw: int | None = None) -> int:
    """Bias-free conv weights + BN weight and bias."""
    return cin * cout * kh * (kh if kw is None else kw) + 2 * cout


# Hand counts of each module (conv weights + BN scale/shift; the linear 1x1 "up" convs have a bias).
STEM = (
    conv_bn(3, 32, 3)  # 864 + 64
    + conv_bn(32, 32, 3)  # 9,216 + 64
    + conv_bn(32, 64, 3)  # 18,432 + 128
    + conv_bn(64, 80, 1)  # 5,120 + 160
    + conv_bn(80, 192, 3)  # 138,240 + 384
    + conv_bn(192, 256, 3)
)  # 442,368 + 512                     = 615,552
BLOCK35 = (
    conv_bn(256, 32, 1)  # 8,256
    + conv_bn(256, 32, 1)
    + conv_bn(32, 32, 3)  # 8,256 + 9,280
    + conv_bn(256, 32, 1)
    + 2 * conv_bn(32, 32, 3)  # 8,256 + 18,560
    + 96 * 256
    + 256
)  # 24,832  -> 77,440
BLOCK17 = (
    conv_bn(896, 128, 1)  # 114,944
    + conv_bn(896, 128, 1)
    + conv_bn(128, 128, 1, 7)
    + conv_bn(128, 128, 7, 1)  # 114,944 + 2 x 114,944
    + 256 * 896
    + 896
)  # 230,272 -> 690,048
BLOCK8 = (
    conv_bn(1792, 192, 1)  # 344,448
    + conv_bn(1792, 192, 1)
    + conv_bn(192, 192, 1, 3)
    + conv_bn(192, 192, 3, 1)  # 344,448 + 2 x 110,976
    + 384 * 1792
    + 1792
)  # 689,920 -> 1,600,768
RED_A = (
    conv_bn(256, 384, 3)  # 885,504
    + conv_bn(256, 192, 1)
    + conv_bn(192, 192, 3)
    + conv_bn(192, 256, 3)
)  # 49,536 + 332,160 + 442,880
RED_B = (
    conv_bn(896, 256, 1)
    + conv_bn(256, 384, 3)  # 229,888 + 885,504
    + conv_bn(896, 256, 1)
    + conv_bn(256, 256, 3)  # 229,888 + 590,336
    + conv_bn(896, 256, 1)
    + 2 * conv_bn(256, 256, 3)
)  # 229,888 + 2 x 590,336


def test_block_parameter_counts_by_hand() -> None:
    assert (BLOCK35, BLOCK17, BLOCK8) == (77_440, 690_048, 1_600_768)
    assert (STEM, RED_A, RED_B) == (615_552, 1_710_080, 3_346_176)
    assert n_params(Block35()) == BLOCK35
    assert n_params(Block17()) == BLOCK17
    assert n_params(Block8()) == BLOCK8
    assert n_params(ReductionA()) == RED_A
    assert n_params(ReductionB()) == RED_B


@pytest.mark.parametrize(
    ("name", "repeats", "emb", "figure"),
    [
        ("inception_resnet_v1", (5, 10, 5), 128, 21_192_960),
        ("inception_resnet_v1", (5, 10, 5), 512, 21_881_856),
        ("inception_resnet_v1_small", (1, 2, 1), 128, 8_959_744),
        ("inception_resnet_v1_small", (1, 2, 1), 512, 9_648_640),
    ],
)
def test_registered_parameter_counts(name: str, repeats: tuple[int, int, int], emb: int, figure: int) -> None:
    a, b, c = repeats
    head = 1792 * emb + 2 * emb  # bias-free linear + BN1d
    assert STEM + a * BLOCK35 + RED_A + b * BLOCK17 + RED_B + c * BLOCK8 + head == figure
    with torch.device("meta"):  # shapes only: no memory, no initialisation time
        model = build_model(name, embedding_dim=emb, in_channels=3, input_size=(112, 112))
    assert abs(n_params(model) - figure) <= 0.02 * figure


def test_spatial_sizes_and_minimum_input() -> None:
    assert spatial_sizes(112) == [55, 53, 53, 26, 26, 24, 11, 5, 2]
    assert MIN_INPUT_SIZE == 75
    assert spatial_sizes(75)[-1] == 1 and spatial_sizes(74)[-1] == 0


def test_shape_and_unit_norm_at_112_and_at_the_minimum() -> None:
    torch.manual_seed(0)
    model = build_model("inception_resnet_v1", embedding_dim=64, in_channels=3, input_size=(112, 112)).eval()
    assert model.embedding_dim == 64
    shapes = []
    model.blocks_c.register_forward_hook(lambda module, inputs, output: shapes.append(tuple(output.shape)))
    with torch.no_grad():
        e = model(torch.randn(2, 3, 112, 112))
    assert shapes == [(2, 1792, 2, 2)]
    assert e.shape == (2, 64)
    assert torch.allclose(e.norm(dim=1), torch.ones(2), atol=1e-5)

    model = build_model("inception_resnet_v1_small", embedding_dim=16, in_channels=1, input_size=(75, 90)).eval()
    with torch.no_grad():
        e = model(torch.randn(2, 1, 75, 90))
    assert e.shape == (2, 16)
    assert torch.allclose(e.norm(dim=1), torch.ones(2), atol=1e-5)


def test_last_c_block_has_no_relu() -> None:
    with torch.device("meta"):
        model = build_model(
            "inception_resnet_v1_small", repeats=(0, 0, 3), embedding_dim=8, in_channels=3, input_size=(112, 112)
        )
    assert [blk.activate for blk in model.blocks_c] == [True, True, False]
    block = Block8(activate=False)
    torch.nn.init.constant_(block.up.bias, -10.0)  # the residual branch pushes everything negative
    assert (block(torch.zeros(1, 1792, 2, 2)) < 0).all()


def test_dropout_identity_in_eval_active_in_train() -> None:
    torch.manual_seed(0)
    model = build_model("inception_resnet_v1_small", embedding_dim=16, in_channels=3, input_size=(75, 75), dropout=0.5)
    x = torch.randn(2, 3, 75, 75)
    model.train()
    assert not torch.equal(model(x), model(x))
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))


def test_one_sgd_step_lowers_loss() -> None:
    torch.manual_seed(0)
    model = build_model("inception_resnet_v1_small", embedding_dim=32, in_channels=3, input_size=(75, 75), dropout=0.0)
    model.train()  # no dropout, so both losses see the same network (BN uses the batch statistics)
    x, targets = torch.randn(4, 3, 75, 75), F.normalize(torch.randn(4, 32), dim=1)
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
        ({"input_size": (74, 112)}, "at least 75"),
        ({"repeats": (1, 2)}, "three non-negative"),
        ({"repeats": (1, -1, 1)}, "three non-negative"),
        ({"dropout": 1.0}, "dropout"),
    ],
)
def test_bad_options_raise(override: dict, message: str) -> None:
    cfg = {"embedding_dim": 8, "in_channels": 3, "input_size": (112, 112), **override}
    with pytest.raises(ValueError, match=message):
        build_model("inception_resnet_v1_small", **cfg)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the TorchScript exporter needs no onnx package
def test_exports_to_onnx_in_eval_mode() -> None:
    model = build_model(
        "inception_resnet_v1_small", repeats=(1, 1, 1), embedding_dim=8, in_channels=3, input_size=(75, 75)
    ).eval()
    buf = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(model, (torch.randn(1, 3, 75, 75),), buf, dynamo=False, opset_version=17)
    assert len(buf.getvalue()) > 0
