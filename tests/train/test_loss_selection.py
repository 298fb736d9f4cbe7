"""Every registered loss trains by name from a config; the FaceNet semi-hard -> hard schedule switches mining."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from facemetric.config import load_config
from facemetric.losses import available_losses
from facemetric.train.engine import Trainer


def _cfg(data: Path, out: Path, *extra: str):
    return load_config(None, [
        f"data.source={data}", "data.image_size=[32, 32]", "data.val_identities=3", "data.cache_dir=null",
        "sampler.p=4", "sampler.k=3", "sampler.batches_per_epoch=2", "train.progress=false", f"train.out={out}",
        "train.val_every=10", *extra,
    ])


@pytest.mark.parametrize("name", available_losses())
def test_each_loss_trains_from_config(name: str, synthetic_faces: Path, tmp_path: Path) -> None:
    trainer = Trainer(_cfg(synthetic_faces, tmp_path, f"loss.name={name}", "train.epochs=1"))
    trainer.fit()
    rows = list(csv.DictReader((tmp_path / "train.csv").open()))
    assert len(rows) == 1 and math.isfinite(float(rows[0]["loss"]))


def test_semi_hard_then_hard_schedule(synthetic_faces: Path, tmp_path: Path) -> None:
    trainer = Trainer(_cfg(synthetic_faces, tmp_path, "loss.name=triplet", "train.epochs=3",
                           "loss.options={mining: semi_hard, margin: 0.3}", "loss.schedule={3: {mining: batch_hard}}"))
    assert trainer.loss_fn.mining == "semi_hard"
    trainer.fit()
    assert trainer.loss_fn.mining == "batch_hard" and trainer.loss_fn.margin == 0.3
