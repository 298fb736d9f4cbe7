"""An interrupted and resumed run ends with exactly the weights of an uninterrupted one."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from facemetric.config import load_config
from facemetric.train.engine import Trainer, learning_rate


def _cfg(data: Path, out: Path):
    return load_config(None, [
        f"data.source={data}", "data.image_size=[32, 32]", "data.val_identities=3", "data.cache_dir=null",
        "sampler.p=4", "sampler.k=3", "train.epochs=2", "train.progress=false", f"train.out={out}",
        "model.options={dropout: 0.2}",  # dropout draws from the global RNG: its state must be restored too
    ])


def test_interrupt_then_resume_equals_uninterrupted(synthetic_faces: Path, tmp_path: Path, monkeypatch) -> None:
    full = Trainer(_cfg(synthetic_faces, tmp_path / "full"))
    full.fit()

    interrupted = Trainer(_cfg(synthetic_faces, tmp_path / "cut"))
    steps = interrupted.sampler.batches_per_epoch
    stop_at = steps + 2  # mid-way through the second epoch
    original = Trainer._train_step

    def step_or_interrupt(self, x, y, lr):
        if self.global_step == stop_at:
            raise KeyboardInterrupt
        return original(self, x, y, lr)

    monkeypatch.setattr(Trainer, "_train_step", step_or_interrupt)
    with pytest.raises(KeyboardInterrupt):
        interrupted.fit()
    monkeypatch.setattr(Trainer, "_train_step", original)

    resumed = Trainer(_cfg(synthetic_faces, tmp_path / "cut"), resume=True)
    assert (resumed.epoch, resumed.step_in_epoch, resumed.global_step) == (1, 2, stop_at)
    result = resumed.fit()
    assert result.global_step == full.global_step == 2 * steps
    for (name, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-6), f"{name} differs after resume"
    assert result.val["accuracy"] == pytest.approx(full.last_val["accuracy"])


def test_resume_without_checkpoint_is_a_clear_error(synthetic_faces: Path, tmp_path: Path) -> None:
    from facemetric.train.checkpoint import CheckpointError

    with pytest.raises(CheckpointError, match="no checkpoint"):
        Trainer(_cfg(synthetic_faces, tmp_path / "none"), resume=True)


def test_learning_rate_schedule() -> None:
    cfg = load_config(None, ["optim.lr=1.0", "optim.warmup_epochs=1", "optim.min_lr_ratio=0.0"])
    lrs = [learning_rate(cfg, s, total_steps=30, steps_per_epoch=10) for s in range(30)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)  # linear warm-up
    assert lrs[10] == pytest.approx(1.0) and lrs[20] == pytest.approx(0.5, abs=0.01)  # cosine
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))
