"""Every registered loss trains by name from a config; FaceNet's semi-hard -> hard schedule swaps the miner."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from facemetric.core.config import load_config
from facemetric.losses import available_losses
from facemetric.miners.batch_hard import BatchHardMiner
from facemetric.miners.semi_hard import SemiHardMiner
from facemetric.train.build import build_run


def _cfg(data: Path, out: Path, *extra: str):
    return load_config(
        None,
        [
            f"data.source={data}",
            "data.image_size=[32, 32]",
            "data.val_identities=4",
            "data.cache_dir=null",
            "sampler.p=4",
            "sampler.k=3",
            "sampler.batches_per_epoch=2",
            "train.progress=false",
            f"train.out={out}",
            "train.val_every=10",
            *extra,
        ],
    )


@pytest.mark.parametrize("name", available_losses())
def test_each_loss_trains_from_config(
    name: str, synthetic_faces: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # distillation learns a teacher's embeddings: a small trained checkpoint is one
    teacher = [f"distill.teacher={request.getfixturevalue('tiny_checkpoint')}"] if name == "distill" else []
    build_run(_cfg(synthetic_faces, tmp_path, f"loss.name={name}", "train.epochs=1", *teacher)).fit()
    rows = list(csv.DictReader((tmp_path / "train.csv").open()))
    assert len(rows) == 1 and math.isfinite(float(rows[0]["loss"]))


def test_semi_hard_then_hard_schedule_swaps_the_miner(synthetic_faces: Path, tmp_path: Path) -> None:
    run = build_run(
        _cfg(
            synthetic_faces,
            tmp_path,
            "loss.name=triplet",
            "train.epochs=3",
            "loss.options={margin: 0.3}",
            "miner.name=semi_hard",
            "miner.schedule={3: {name: batch_hard}}",
        )
    )
    loss = run.trainer.loss
    assert isinstance(loss.miner, SemiHardMiner) and loss.resolved_reduction() == "mean_nonzero"
    seen = []
    original = run.trainer.train_step

    def recording(x, y):
        seen.append(type(loss.miner).__name__)
        return original(x, y)

    run.trainer.train_step = recording  # type: ignore[method-assign]
    run.fit()
    assert seen == ["SemiHardMiner"] * 4 + ["BatchHardMiner"] * 2
    assert run.trainer.loss is loss and isinstance(loss.miner, BatchHardMiner) and loss.margin == 0.3
    assert loss.resolved_reduction() == "mean"  # Hermans' mean follows the batch-hard miner, as before
