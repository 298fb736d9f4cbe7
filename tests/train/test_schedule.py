"""Loss schedules switch settings at epoch boundaries and keep the loss's learned parameters."""

from __future__ import annotations

from pathlib import Path

import pytest

from facemetric.config import ConfigError, load_config
from facemetric.train.engine import Trainer


def test_schedule_switches_options_and_keeps_parameters(synthetic_faces: Path, tmp_path: Path) -> None:
    cfg = load_config(None, [
        f"data.source={synthetic_faces}", "data.image_size=[32, 32]", "data.val_identities=3", "data.cache_dir=null",
        "sampler.p=4", "sampler.k=3", "train.epochs=3", "train.progress=false", f"train.out={tmp_path}",
        "loss.name=arcface", "loss.options={margin: 0.1}", "loss.schedule={3: {margin: 0.4}}",
    ])
    trainer = Trainer(cfg)
    weight = trainer.loss_fn.weight
    assert trainer.scheduled_loss_options(1)["margin"] == 0.1 and trainer.scheduled_loss_options(2)["margin"] == 0.4
    trainer.fit()
    assert trainer.loss_fn.margin == 0.4
    assert trainer.loss_fn.weight is weight  # same Parameter object: the optimizer still updates it
    assert any(p is weight for group in trainer.optimizer.param_groups for p in group["params"])
    rows = (tmp_path / "train.csv").read_text().splitlines()
    assert "spread/mean_distance" in rows[0] and len(rows) == 4  # collapse-monitor statistics per epoch


def test_schedule_validation() -> None:
    with pytest.raises(ConfigError, match="loss.schedule"):
        load_config(None, ["loss.schedule={0: {margin: 0.4}}"])
