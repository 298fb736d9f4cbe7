"""Loss schedules change settings at epoch boundaries and keep the loss's learned parameters."""

from __future__ import annotations

from pathlib import Path

import pytest

from facemetric.core.config import load_config
from facemetric.core.errors import ConfigError
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
            "train.epochs=3",
            "train.progress=false",
            f"train.out={out}",
            *extra,
        ],
    )


def test_schedule_switches_options_and_keeps_parameters(synthetic_faces: Path, tmp_path: Path) -> None:
    run = build_run(
        _cfg(
            synthetic_faces,
            tmp_path,
            "loss.name=arcface",
            "loss.options={margin: 0.1}",
            "loss.schedule={3: {margin: 0.4}}",
        )
    )
    loss = run.trainer.loss
    weight = loss.weight
    margins = []
    original = run.trainer.train_step

    def recording(x, y):
        margins.append(loss.margin)
        return original(x, y)

    run.trainer.train_step = recording  # type: ignore[method-assign]
    run.fit()
    steps = run.trainer.steps_per_epoch
    assert margins == [0.1] * (2 * steps) + [0.4] * steps  # from epoch 3 (1-based) on
    assert run.trainer.loss is loss and loss.weight is weight  # same Parameter: the optimizer still updates it
    assert any(p is weight for group in run.trainer.optimizer.param_groups for p in group["params"])
    rows = (tmp_path / "train.csv").read_text().splitlines()
    assert "spread/mean_distance" in rows[0] and len(rows) == 4  # collapse-monitor statistics per epoch


@pytest.mark.parametrize(
    "schedule, message",
    [
        ("{0: {margin: 0.4}}", "loss.schedule: .* is not valid: epochs are counted from 1, got 0"),
        ("{2: {margn: 0.4}}", "loss.schedule.2: loss 'arcface' has no option 'margn'"),
        ("{2: {margin: big}}", r"loss.schedule.2.margin: 'big' is not valid"),
        ("{2: {subcenters: 3}}", "subcenters cannot change during training"),
    ],
)
def test_schedule_validation(synthetic_faces: Path, tmp_path: Path, schedule: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_run(_cfg(synthetic_faces, tmp_path, f"loss.schedule={schedule}"))
