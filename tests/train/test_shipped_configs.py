"""Every config shipped in configs/ loads and names only registered components with valid options."""

from __future__ import annotations

from pathlib import Path

import pytest

from facemetric.core.config import load_config
from facemetric.train.build import check_config

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").rglob("*.yaml"))


def test_configs_are_found() -> None:
    assert len(CONFIGS) >= 10 and any(p.parent.name == "patches" for p in CONFIGS)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(p.parents[1])))
def test_shipped_config_is_valid(path: Path) -> None:
    cfg = load_config(path)
    if cfg.model.init:  # a second stage starts from the first stage's checkpoint, made when the user runs it
        cfg = load_config(path, ["model.init=null"])
    check_config(cfg)
