"""A backbone is one file: dropped into the models package it is discovered and built by name, and what it
declares beside its builder (natural input, embedding size, bf16 on CPU, pretrained weights and their
crops) is what the catalogue, the precision choice and the training run read."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn as nn

import facemetric.models as models
from facemetric.core.config import load_config
from facemetric.core.errors import ConfigError
from facemetric.core.registry import discover
from facemetric.models import ModelSpec, PretrainedWeights, build_model, model_spec, register_model
from facemetric.models.zoo import describe
from facemetric.train import precision
from facemetric.train.build import build_run, check_config
from facemetric.train.precision import use_bf16
from tiny_run import tiny_overrides

DROPPED = '''
"""A backbone that exists only in this test's folder."""

import torch
import torch.nn as nn
import torch.nn.functional as F

from facemetric.models import ModelSpec, register_model


@register_model("test_dropped_net", spec=ModelSpec(input_size=(24, 20), channels=1, embedding_dim=16))
class DroppedNet(nn.Module):
    def __init__(self, embedding_dim: int = 16, in_channels: int = 1, input_size: tuple[int, int] = (24, 20)) -> None:
        super().__init__()
        self.embedding_dim = embedding_dim
        self.fc = nn.Linear(in_channels * input_size[0] * input_size[1], embedding_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.fc(x.flatten(1)), dim=1)
'''


def test_a_module_dropped_into_the_package_is_found_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "dropped_net.py").write_text(textwrap.dedent(DROPPED))
    monkeypatch.setattr(models, "__path__", [*models.__path__, str(tmp_path)])
    monkeypatch.delitem(sys.modules, "facemetric.models.dropped_net", raising=False)
    assert "dropped_net" in discover(models.__name__, models.__path__)
    assert "test_dropped_net" in models.available_models()
    net = build_model("test_dropped_net", embedding_dim=8, in_channels=1, input_size=(24, 20))
    assert net(torch.zeros(2, 1, 24, 20)).shape == (2, 8)
    row = describe("test_dropped_net", speed=False)  # what `facemetric models` prints, from its declaration
    assert (row.input, row.embedding_dim) == ("1x24x20", 16)


def test_the_built_in_backbones_declare_their_natural_input() -> None:
    assert model_spec("iresnet_tiny") == ModelSpec()
    assert model_spec("hardnet").input_shape == (1, 32, 32) and model_spec("l2net").embedding_dim == 128
    assert model_spec("dlib_resnet").input_shape == (3, 150, 150) and set(model_spec("dlib_resnet").pretrained) == {
        "dlib"
    }
    built_in = [n for n in models.available_models() if not n.startswith("test_")]
    slower = ["arcface_mbf", "arcface_mbf_slim", "mobilefacenet", "mobilefacenet_v3", "sface"]  # depthwise convolutions
    assert [n for n in built_in if model_spec(n).bf16_slower_on_cpu] == slower


class _Tiny(nn.Module):
    def __init__(self, embedding_dim: int, in_channels: int, input_size: tuple[int, int]) -> None:
        super().__init__()
        self.fc = nn.Linear(in_channels * input_size[0] * input_size[1], embedding_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.fc(x.flatten(1)), dim=1)


def _fill(model: nn.Module) -> list[str]:
    with torch.no_grad():
        model.fc.weight.fill_(0.01)  # type: ignore[operator]
    return ["fc.bias"]


WEIGHTS = PretrainedWeights(
    load=_fill, align="crop", input_size=(32, 32), min_side=24, normalization=((0.4,) * 3, (0.2,) * 3)
)
register_model(
    "test_pretrained_net", spec=ModelSpec(input_size=(32, 32), bf16_slower_on_cpu=True, pretrained={"test": WEIGHTS})
)(_Tiny)


def test_declared_pretrained_weights_are_loaded_with_their_normalisation(synthetic_faces: Path, tmp_path: Path) -> None:
    base = [*tiny_overrides(synthetic_faces, tmp_path), "model.name=test_pretrained_net", "loss.name=triplet"]
    run = build_run(load_config(None, [*base, "model.pretrained=test"]))
    assert torch.all(run.model.fc.weight == 0.01)
    assert (run.data.spec.mean, run.data.spec.std) == ((0.4,) * 3, (0.2,) * 3)
    with pytest.raises(ConfigError, match="model.pretrained: test's weights are for model.name test_pretrained_net"):
        check_config(load_config(None, [*base, "model.pretrained=test", "model.name=iresnet_tiny"]))
    with pytest.raises(ConfigError, match="no backbone declares weights named 'nothing'"):
        check_config(load_config(None, [*base, "model.pretrained=nothing"]))
    with pytest.raises(ConfigError, match="down to 24x24.*--align crop"):
        build_run(load_config(None, [*base, "model.pretrained=test", "data.image_size=[16, 16]"]))


def test_bf16_on_cpu_follows_the_declaration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    assert use_bf16("auto", "iresnet_tiny", torch.device("cpu"))[0]
    enabled, why = use_bf16("auto", "test_pretrained_net", torch.device("cpu"))
    assert not enabled and "test_pretrained_net trains slower in bf16" in why
