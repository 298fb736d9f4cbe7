from __future__ import annotations

import io
import warnings

import pytest
import torch
import torch.nn.functional as F

import facemetric.models.mobilefacenet  # noqa: F401  (registers mobilefacenet, mobilefacenet_v3)
from facemetric.models.mobilefacenet import MobileFaceNet, make_divisible
from facemetric.models.registry import available_models, build_model

PAPER_PARAMS = 0.99e6  # Chen et al. 2018, Table 2: MobileFaceNet, 128-d output
PAPER_MACS = 221e6  # multiply-adds at 112x112


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def bottleneck_params(c_in: int, c_out: int, t: int) -> int:
    """1x1 expand + BN + PReLU, 3x3 depthwise + BN + PReLU, 1x1 projection + BN (BN: weight and bias)."""
    h = c_in * t
    return (c_in * h + 2 * h + h) + (9 * h + 2 * h + h) + (h * c_out + 2 * c_out)


def test_parameter_count_by_hand_and_against_paper() -> None:
    stem = 3 * 64 * 9 + 2 * 64 + 64  # conv3x3 s2, BN, PReLU
    dw = 64 * 9 + 2 * 64 + 64  # depthwise conv3x3, BN, PReLU
    stages = (
        5 * bottleneck_params(64, 64, 2)  # 18,432 each
        + bottleneck_params(64, 128, 4)  # 53,248
        + 6 * bottleneck_params(128, 128, 2)  # 69,632 each
        + bottleneck_params(128, 128, 4)  # 139,008
        + 2 * bottleneck_params(128, 128, 2)
    )
    conv_last = 128 * 512 + 2 * 512 + 512  # conv1x1 to 512, BN, PReLU
    gdconv = 512 * 7 * 7 + 2 * 512  # depthwise 7x7, BN
    linear = 512 * 128 + 2 * 128  # linear 1x1 to 128 (no bias), BN
    hand = stem + dw + stages + conv_last + gdconv + linear
    assert hand == 1_003_136

    model = build_model("mobilefacenet", embedding_dim=128, in_channels=3, input_size=(112, 112))
    assert n_params(model) == hand
    assert abs(hand - PAPER_PARAMS) / PAPER_PARAMS < 0.02
    # conv weights alone (what BN folding leaves, less PReLU) are also within 2% of the paper: 976,000
    conv_only = sum(p.numel() for p in model.parameters() if p.dim() > 1)
    assert conv_only == 976_000
    assert abs(conv_only - PAPER_PARAMS) / PAPER_PARAMS < 0.02


def test_multiply_adds_match_paper() -> None:
    model = build_model("mobilefacenet", embedding_dim=128, in_channels=3, input_size=(112, 112)).eval()
    macs = []

    def count(mod: torch.nn.Module, _inp: tuple, out: torch.Tensor) -> None:
        if isinstance(mod, torch.nn.Conv2d):
            k = mod.kernel_size[0] * mod.kernel_size[1] * mod.in_channels // mod.groups
            macs.append(out[0].numel() * k)
        else:
            macs.append(mod.in_features * mod.out_features)

    for mod in model.modules():
        if isinstance(mod, (torch.nn.Conv2d, torch.nn.Linear)):
            mod.register_forward_hook(count)
    with torch.no_grad():
        model(torch.randn(1, 3, 112, 112))
    assert abs(sum(macs) - PAPER_MACS) / PAPER_MACS < 0.01  # measured: 220,965,376


def test_v3_parameter_count() -> None:
    def se(h: int) -> int:  # reduce 4 with biases, both ways
        return 2 * h * (h // 4) + h // 4 + h

    hidden = [128] * 5 + [256] + [256] * 6 + [512] + [256] * 2
    prelu_removed = sum(2 * h for h in hidden)  # hard-swish has no parameters
    expected = 1_003_136 - prelu_removed + sum(se(h) for h in hidden)
    assert expected == 1_467_488
    model = build_model("mobilefacenet_v3", embedding_dim=128, in_channels=3, input_size=(112, 112))
    assert n_params(model) == expected


@pytest.mark.parametrize(
    ("name", "channels", "size", "dim"),
    [
        ("mobilefacenet", 3, (112, 112), 128),
        ("mobilefacenet", 1, (96, 80), 64),
        ("mobilefacenet_v3", 3, (112, 112), 128),
        ("mobilefacenet_v3", 1, (96, 80), 32),
    ],
)
def test_unit_norm_embeddings(name: str, channels: int, size: tuple[int, int], dim: int) -> None:
    torch.manual_seed(0)
    model = build_model(name, embedding_dim=dim, in_channels=channels, input_size=size).eval()
    assert model.embedding_dim == dim
    with torch.no_grad():
        e = model(torch.randn(3, channels, *size))
    assert e.shape == (3, dim)
    assert torch.allclose(e.norm(dim=1), torch.ones(3), atol=1e-5)
    assert not torch.allclose(e[0], e[1], atol=1e-3)  # different images, different embeddings


@pytest.mark.parametrize(
    ("size", "final"), [((112, 112), (7, 7)), ((96, 80), (6, 5)), ((100, 90), (7, 6)), ((16, 16), (1, 1))]
)
def test_gdconv_kernel_covers_final_feature_map(size: tuple[int, int], final: tuple[int, int]) -> None:
    model = MobileFaceNet(embedding_dim=16, in_channels=1, input_size=size).eval()
    gdconv = model.gdconv[0]
    assert gdconv.kernel_size == final
    assert gdconv.groups == gdconv.in_channels == 512
    with torch.no_grad():
        feats = model.features(torch.randn(2, 1, *size))
        assert feats.shape == (2, 512, *final)
        assert model.gdconv(feats).shape == (2, 512, 1, 1)


def test_wrong_input_size_fails_loudly() -> None:
    model = MobileFaceNet(embedding_dim=16, input_size=(64, 64)).eval()
    with pytest.raises(RuntimeError):
        model(torch.randn(2, 3, 112, 112))


def test_width_mult_rounds_channels_to_multiples_of_8() -> None:
    assert [make_divisible(v) for v in (64, 32, 19.2, 12.8, 3, 100)] == [64, 32, 24, 16, 8, 104]
    model = MobileFaceNet(embedding_dim=32, input_size=(64, 64), width_mult=0.3).eval()
    widths = [m.out_channels for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.groups == 1]
    assert widths[0] == 24  # stem: 64 * 0.3 = 19.2 -> 16, under 90% of 19.2 -> 24
    assert model.conv_last[0].out_channels == 152  # 512 * 0.3 = 153.6 -> 152
    assert all(w % 8 == 0 for w in widths)
    assert n_params(model) < n_params(MobileFaceNet(embedding_dim=32, input_size=(64, 64))) / 4
    with torch.no_grad():
        e = model(torch.randn(2, 3, 64, 64))
    assert torch.allclose(e.norm(dim=1), torch.ones(2), atol=1e-5)


@pytest.mark.parametrize("name", ["mobilefacenet", "mobilefacenet_v3"])
def test_one_sgd_step_lowers_cosine_loss(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(name, embedding_dim=32, in_channels=3, input_size=(64, 64)).train()
    x = torch.randn(8, 3, 64, 64)
    targets = F.normalize(torch.randn(8, 32), dim=1)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)

    def loss() -> torch.Tensor:
        return (1 - (model(x) * targets).sum(dim=1)).mean()

    before = loss()
    opt.zero_grad()
    before.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    opt.step()
    with torch.no_grad():
        after = loss()
    assert after < before.detach() - 0.2  # measured: 1.06 -> 0.49 (v2), 0.94 -> 0.56 (v3)


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("mobilefacenet", {"block": "v4"}, "unknown MobileFaceNet block 'v4'; expected one of v2, v3"),
        ("mobilefacenet", {"width_mult": 0}, "width_mult must be a number > 0, got 0"),
        ("mobilefacenet", {"width_mult": -0.5}, "width_mult must be a number > 0, got -0.5"),
        ("mobilefacenet", {"width_mult": float("nan")}, "width_mult must be a number > 0, got nan"),
        ("mobilefacenet", {"input_size": (15, 112)}, "input_size must be at least 16x16; got 15x112"),
        ("mobilefacenet_v3", {"input_size": (112, 8)}, "input_size must be at least 16x16; got 112x8"),
        ("mobilefacenet_v3", {"block": "v2"}, "mobilefacenet_v3 always uses block='v3'"),
    ],
)
def test_bad_options_raise(name: str, options: dict, message: str) -> None:
    cfg = {"embedding_dim": 16, "in_channels": 3, "input_size": (64, 64), **options}
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build_model(name, **cfg)


def test_registered() -> None:
    assert {"mobilefacenet", "mobilefacenet_v3"} <= set(available_models())
    assert build_model("mobilefacenet").block == "v2"
    assert build_model("mobilefacenet_v3", input_size=(32, 32)).block == "v3"


@pytest.mark.parametrize(
    ("name", "ops"),
    [("mobilefacenet", [b"PRelu"]), ("mobilefacenet_v3", [b"HardSwish", b"HardSigmoid", b"GlobalAveragePool"])],
)
def test_exports_to_onnx_with_standard_ops(name: str, ops: list[bytes]) -> None:
    model = build_model(name, embedding_dim=16, in_channels=1, input_size=(32, 24)).eval()
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(model, (torch.randn(1, 1, 32, 24),), buf, dynamo=False, opset_version=17)
        except (ImportError, ModuleNotFoundError) as exc:  # pragma: no cover - exporter missing its dependencies
            pytest.skip(f"torch.onnx exporter unavailable: {exc}")
    proto = buf.getvalue()  # op types are plain strings in the protobuf; BNs are folded into the convs
    for op in [b"Conv", b"Flatten", b"MatMul", b"ReduceL2", b"Div", *ops]:
        assert op in proto, op
    assert b"ATen" not in proto
