"""L2-Net / HardNet: parameter count, output contract, brightness invariance, learning, bad sizes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import facemetric.models.l2net  # noqa: F401  (registers l2net and hardnet)
from facemetric.models import build_model


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", ["l2net", "hardnet"])
def test_parameter_count_matches_hand_arithmetic(name: str) -> None:
    model = build_model(name, embedding_dim=128, in_channels=1, input_size=(32, 32))
    # seven bias-free convs, weights = in * out * kh * kw; BatchNorm(affine=False) has none
    expected = (
        1 * 32 * 3 * 3  # 288
        + 32 * 32 * 3 * 3  # 9,216
        + 32 * 64 * 3 * 3  # 18,432
        + 64 * 64 * 3 * 3  # 36,864
        + 64 * 128 * 3 * 3  # 73,728
        + 128 * 128 * 3 * 3  # 147,456
        + 128 * 128 * 8 * 8  # 1,048,576
    )
    assert expected == 1_334_560
    assert n_params(model) == expected
    assert abs(n_params(model) - 1.33e6) / 1.33e6 < 0.02
    assert model.embedding_dim == 128


@pytest.mark.parametrize("name", ["l2net", "hardnet"])
@pytest.mark.parametrize("size", [(32, 32), (64, 64), (24, 40)])
def test_unit_norm_output(name: str, size: tuple[int, int]) -> None:
    torch.manual_seed(0)
    model = build_model(name, embedding_dim=128, in_channels=1, input_size=size).eval()
    with torch.no_grad():
        e = model(torch.rand(4, 1, *size))
    assert e.shape == (4, 128)
    assert torch.allclose(e.norm(dim=1), torch.ones(4), atol=1e-5)


def test_other_channels_and_dim() -> None:
    model = build_model("hardnet", embedding_dim=32, in_channels=3, input_size=(16, 16)).eval()
    with torch.no_grad():
        assert model(torch.rand(2, 3, 16, 16)).shape == (2, 32)


def test_input_norm_gives_affine_brightness_invariance() -> None:
    torch.manual_seed(1)
    model = build_model("hardnet", embedding_dim=128, in_channels=1, input_size=(32, 32))
    # eval with non-trivial running statistics, so the invariance is not an artefact of BN at init
    with torch.no_grad():
        model.train()
        for _ in range(3):
            model(torch.rand(8, 1, 32, 32))
    model.eval()
    x = torch.rand(4, 1, 32, 32)
    with torch.no_grad():
        a, b = model(x), model(3 * x + 5)
        assert (a - b).abs().max() < 1e-4
        # and the invariance really comes from the input normalisation
        raw = build_model("hardnet", input_norm=False)
        raw.load_state_dict(model.state_dict())
        raw.eval()
        assert (raw(x) - raw(3 * x + 5)).abs().max() > 1e-2


def test_one_sgd_step_lowers_loss() -> None:
    torch.manual_seed(2)
    model = build_model("l2net", embedding_dim=32, in_channels=1, input_size=(16, 16)).train()
    x = torch.rand(8, 1, 16, 16)
    target = F.normalize(torch.randn(8, 32), dim=1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)

    def loss_fn() -> torch.Tensor:
        return (1 - (model(x) * target).sum(dim=1)).mean()

    before = loss_fn()
    opt.zero_grad()
    before.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    opt.step()
    with torch.no_grad():
        after = loss_fn()
    assert after.item() < before.item() - 1e-3


@pytest.mark.parametrize("size", [(30, 32), (32, 30), (4, 4), (4, 32), (0, 32)])
def test_bad_sizes_raise(size: tuple[int, int]) -> None:
    with pytest.raises(ValueError, match="divisible by 4 and at least 8"):
        build_model("l2net", embedding_dim=128, in_channels=1, input_size=size)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the (fast) TorchScript exporter
def test_onnx_export_matches_torch(tmp_path) -> None:
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    torch.manual_seed(3)
    model = build_model("hardnet", embedding_dim=16, in_channels=1, input_size=(16, 16)).eval()
    x = torch.rand(2, 1, 16, 16)
    path = tmp_path / "hardnet.onnx"
    torch.onnx.export(model, (x,), str(path), input_names=["x"], output_names=["e"], dynamo=False)
    out = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x.numpy()})[0]
    with torch.no_grad():
        assert torch.allclose(torch.from_numpy(out), model(x), atol=1e-5)


def test_normalize_false_returns_the_raw_descriptor_of_the_same_network() -> None:
    torch.manual_seed(0)
    unit = build_model("l2net", embedding_dim=16, in_channels=1, input_size=(16, 16)).eval()
    raw = build_model("l2net", embedding_dim=16, in_channels=1, input_size=(16, 16), normalize=False).eval()
    raw.load_state_dict(unit.state_dict())
    x = torch.rand(4, 1, 16, 16)
    with torch.no_grad():
        r, u = raw(x), unit(x)
    assert not torch.allclose(r.norm(dim=1), torch.ones(4))  # a free length
    assert torch.allclose(torch.nn.functional.normalize(r, dim=1), u, atol=1e-6)
