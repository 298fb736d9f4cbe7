"""train.amp: auto turns bf16 on only where it was measured faster; explicit settings win."""

from __future__ import annotations

import pytest
import torch

import facemetric.train.precision as precision
from facemetric.core.config import ConfigError, load_config
from facemetric.train.precision import use_bf16

CPU = torch.device("cpu")


def test_explicit_settings_win() -> None:
    assert use_bf16(True, "mobilefacenet", CPU)[0] is True
    assert use_bf16(False, "iresnet50", CPU)[0] is False


def test_auto_follows_the_hardware_and_the_measured_exceptions(monkeypatch) -> None:
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    assert use_bf16("auto", "iresnet_tiny", CPU) == (True, "train.amp=auto: native bf16 on this CPU")
    enabled, why = use_bf16("auto", "mobilefacenet", CPU)
    assert not enabled and "mobilefacenet trains slower in bf16" in why
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    enabled, why = use_bf16("auto", "iresnet_tiny", CPU)
    assert not enabled and "no native bf16" in why


def test_config_accepts_auto_true_false_only() -> None:
    assert load_config(None, []).train.amp == "auto"
    assert load_config(None, ["train.amp=false"]).train.amp is False
    with pytest.raises(ConfigError, match="train.amp: 'fp16' is not valid: expected auto, true or false"):
        load_config(None, ["train.amp=fp16"])
