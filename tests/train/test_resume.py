"""An interrupted and resumed run ends with exactly the weights of an uninterrupted one."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from facemetric.core.checkpoint import CheckpointError
from facemetric.core.config import load_config
from facemetric.optim.warmup_cosine import warmup_cosine_lr
from facemetric.train.build import build_run
from facemetric.train.trainer import Trainer


def _cfg(data: Path, out: Path):
    return load_config(
        None,
        [
            f"data.source={data}",
            "data.image_size=[32, 32]",
            "data.val_identities=4",
            "data.cache_dir=null",
            "sampler.p=4",
            "sampler.k=3",
            "train.epochs=2",
            "train.progress=false",
            f"train.out={out}",
            "model.options={dropout: 0.2}",  # dropout draws from the global RNG: its state must be restored too
        ],
    )


def test_interrupt_then_resume_equals_uninterrupted(synthetic_faces: Path, tmp_path: Path, monkeypatch) -> None:
    full = build_run(_cfg(synthetic_faces, tmp_path / "full"))
    full_result = full.fit()

    interrupted = build_run(_cfg(synthetic_faces, tmp_path / "cut"))
    steps = interrupted.trainer.steps_per_epoch
    stop_at = steps + 2  # mid-way through the second epoch
    original = Trainer.train_step

    def step_or_interrupt(self, x, y):
        if self.global_step == stop_at:
            raise KeyboardInterrupt
        return original(self, x, y)

    monkeypatch.setattr(Trainer, "train_step", step_or_interrupt)
    with pytest.raises(KeyboardInterrupt):
        interrupted.fit()
    monkeypatch.setattr(Trainer, "train_step", original)

    resumed = build_run(_cfg(synthetic_faces, tmp_path / "cut"), resume=True)
    t = resumed.trainer
    assert (t.epoch, t.step_in_epoch, t.global_step) == (1, 2, stop_at)
    assert t.scheduler.last_epoch == stop_at  # the learning-rate schedule continues where it stopped
    result = resumed.fit()
    assert result.global_step == full_result.global_step == 2 * steps
    for (name, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-6), f"{name} differs after resume"
    assert result.val is not None and full_result.val is not None
    assert result.val.summary()["accuracy"] == pytest.approx(full_result.val.summary()["accuracy"])
    assert result.best_accuracy == pytest.approx(full_result.best_accuracy)  # the validation callback's state too


def test_resume_without_checkpoint_is_a_clear_error(synthetic_faces: Path, tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no checkpoint"):
        build_run(_cfg(synthetic_faces, tmp_path / "none"), resume=True)


def test_learning_rate_schedule() -> None:
    lrs = [warmup_cosine_lr(1.0, s, total_steps=30, warmup_steps=10, min_lr_ratio=0.0) for s in range(30)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)  # linear warm-up
    assert lrs[10] == pytest.approx(1.0) and lrs[20] == pytest.approx(0.5, abs=0.01)  # cosine
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))


def test_the_scheduler_sets_each_step_s_rate(synthetic_faces: Path, tmp_path: Path) -> None:
    cfg = load_config(
        None,
        [
            f"data.source={synthetic_faces}",
            "data.image_size=[32, 32]",
            "data.val_identities=0",
            "data.cache_dir=null",
            "sampler.p=4",
            "sampler.k=3",
            "train.epochs=2",
            "train.progress=false",
            f"train.out={tmp_path}",
            "optim.lr=1.0",
            "scheduler.options={warmup_epochs: 1.0, min_lr_ratio: 0.0}",
            "monitor.enabled=false",
        ],
    )
    run = build_run(cfg)
    seen: list[float] = []
    original = run.trainer.train_step

    def recording(x, y):
        out = original(x, y)
        seen.append(out[2])
        return out

    run.trainer.train_step = recording  # type: ignore[method-assign]
    run.fit()
    steps = run.trainer.steps_per_epoch
    assert seen == [warmup_cosine_lr(1.0, s, 2 * steps, steps, 0.0) for s in range(2 * steps)]
