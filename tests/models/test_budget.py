"""Parameter counts against hand arithmetic and published figures; FLOPs; the max_params budget."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from facemetric.core.config import ConfigError, load_config, parse_count
from facemetric.models import build_model
from facemetric.models.budget import ParameterBudgetError, check_budget, count_flops, count_parameters


def _ir_block(cin: int, cout: int, stride: int) -> int:
    """BN(in) conv3x3 BN PReLU conv3x3 BN, plus a 1x1 conv + BN shortcut when the shape changes."""
    n = 2 * cin + 9 * cin * cout + 2 * cout + cout + 9 * cout * cout + 2 * cout
    if stride != 1 or cin != cout:
        n += cin * cout + 2 * cout
    return n


def _iresnet_by_hand(layers: tuple[int, ...], dim: int = 512, side: int = 112) -> int:
    widths = (64, 128, 256, 512)
    n = 3 * 64 * 9 + 2 * 64 + 64  # stem conv3x3 + BN + PReLU
    cin = 64
    for depth, w in zip(layers, widths):
        n += _ir_block(cin, w, 2) + (depth - 1) * _ir_block(w, w, 1)
        cin = w
    final = side // 16
    n += 2 * 512 + (512 * final * final * dim + dim) + 2 * dim  # head: BN2d, FC, BN1d
    return n


@pytest.mark.parametrize(
    "name,layers,published",
    [
        ("iresnet18", (2, 2, 2, 2), 24.0e6),
        ("iresnet34", (3, 4, 6, 3), 34.1e6),
        ("iresnet50", (3, 4, 14, 3), 43.6e6),
        ("iresnet100", (3, 13, 30, 3), 65.2e6),
    ],
)
def test_iresnet_parameters_by_hand_and_published(name: str, layers: tuple[int, ...], published: float) -> None:
    model = build_model(name, embedding_dim=512, in_channels=3, input_size=(112, 112))
    n = count_parameters(model)
    assert n == _iresnet_by_hand(layers)
    assert abs(n - published) / published < 0.02  # insightface's ArcFace models at 512-d, 112x112


def test_flops_counted_by_hand_for_a_small_network() -> None:
    import torch.nn as nn

    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.Flatten(), nn.Linear(8 * 4 * 4, 10))
    # conv: 2 * (3*3*3) MACs per output * 8 channels * 16 positions; linear: 2 * 128 * 10
    assert count_flops(net, (3, 4, 4)) == 2 * 27 * 8 * 16 + 2 * 128 * 10
    # iresnet50 at 112x112: 6.3 G multiply-adds as published for ArcFace's r50 -> 12.6 GFLOPs
    flops = count_flops(build_model("iresnet50", embedding_dim=512, input_size=(112, 112)), (3, 112, 112))
    assert abs(flops / 2 - 6.3e9) / 6.3e9 < 0.02


def test_budget_check_and_counts_in_config() -> None:
    model = build_model("iresnet_tiny", embedding_dim=128, input_size=(64, 64))
    n = count_parameters(model)
    assert check_budget(model, None, "iresnet_tiny") == n == check_budget(model, n, "iresnet_tiny")
    with pytest.raises(
        ParameterBudgetError, match=r"over model.max_params = 1,000,000 .*facemetric models --max-params"
    ):
        check_budget(model, 1_000_000, "iresnet_tiny")
    assert [parse_count(v, "x") for v in ("21M", "21e6", 21000000, "500k", "1_000", None)] == [
        21_000_000,
        21_000_000,
        21_000_000,
        500_000,
        1000,
        None,
    ]
    assert load_config(None, ["model.max_params=21M"]).model.max_params == 21_000_000
    for bad in ("-5", "lots", "0"):
        with pytest.raises(ConfigError, match="model.max_params"):
            load_config(None, [f"model.max_params={bad}"])


def test_over_budget_model_refused_before_any_data_is_read(tmp_path) -> None:
    from facemetric.train.build import build_run

    missing = tmp_path / "no-such-photos"  # were the data read first, this would be a DatasetError
    (missing / "ada").mkdir(parents=True)  # it exists (the command line checks that), but holds no image
    (missing / "ada" / "1.jpg").write_text("not an image")
    cfg = load_config(
        None,
        [
            f"data.source={missing}",
            f"train.out={tmp_path / 'run'}",
            "model.name=iresnet50",
            "data.image_size=[112, 112]",
            "model.max_params=21M",
        ],
    )
    with pytest.raises(ParameterBudgetError, match="'iresnet50' has 33,955,904 parameters"):
        build_run(cfg)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "facemetric",
            "train",
            "--data",
            str(missing),
            "--out",
            str(tmp_path / "cli"),
            "--set",
            "model.name=iresnet50",
            "--set",
            "data.image_size=[112, 112]",
            "--set",
            "model.max_params=21M",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2 and "over model.max_params = 21,000,000" in result.stderr
    assert "Traceback" not in result.stderr


def test_models_command_lists_counts_and_the_cap() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "facemetric",
            "models",
            "--no-speed",
            "--json",
            "--max-params",
            "21M",
            "iresnet_tiny",
            "iresnet50",
            "l2net",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert rows["iresnet50"]["params"] == _iresnet_by_hand((3, 4, 14, 3)) and rows["iresnet50"]["fits"] is False
    assert rows["iresnet_tiny"]["fits"] is True and rows["iresnet_tiny"]["input"] == "3x112x112"
    assert rows["l2net"]["input"] == "1x32x32" and rows["l2net"]["embedding_dim"] == 128
    assert abs(rows["iresnet50"]["gflops"] - 12.6) < 0.3
    bad = subprocess.run(
        [sys.executable, "-m", "facemetric", "models", "--no-speed", "resnet_imaginary"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 2 and "unknown model" in bad.stderr
