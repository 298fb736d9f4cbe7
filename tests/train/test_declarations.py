"""Losses written outside facemetric declare what they need (``LossNeeds``) and train like built-in ones:
a triplet loss that is not called "triplet" gets a batch-hard miner, a margin head of its own runs under
Partial FC, and a loss that learns from a teacher gets the teacher callback. The builder reads the
declarations, never the names."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from facemetric.core.config import load_config
from facemetric.core.errors import ConfigError
from facemetric.core.mining import TripletMiner
from facemetric.core.needs import LossNeeds
from facemetric.losses import LOSSES, loss_needs, register_loss
from facemetric.losses.distill import DistillLoss
from facemetric.losses.margin import SHARDABLE_HEAD, CosineMarginLoss
from facemetric.losses.partial_fc import PartialFC
from facemetric.miners.batch_hard import BatchHardMiner
from facemetric.ops.distances import pairwise_distance
from facemetric.train.build import build_run, check_config
from facemetric.train.callbacks import CALLBACKS, Callback
from facemetric.train.callbacks.distill import DistillCallback
from tiny_run import tiny_overrides


class SquaredTripletLoss(nn.Module):
    """``relu(d(a,p)^2 - d(a,n)^2 + margin)`` over the sparse triplets its miner picks."""

    def __init__(self, margin: float = 0.2, miner: TripletMiner | None = None) -> None:
        super().__init__()
        if miner is None:
            raise ValueError("needs a miner")
        self.margin, self.miner, self.mined = margin, miner, 0

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            dist = pairwise_distance(embeddings, "euclidean")
        t = self.miner.mine(dist, labels, self.margin)
        assert t.anchors is not None and t.positives is not None and t.negatives is not None
        self.mined += len(t.anchors)
        d_ap = (embeddings[t.anchors] - embeddings[t.positives]).square().sum(1)
        d_an = (embeddings[t.anchors] - embeddings[t.negatives]).square().sum(1)
        return F.relu(d_ap - d_an + self.margin).mean()


class CosineMarginHead(CosineMarginLoss):
    """A margin head of its own: target cosine ``cos(theta) - margin``, squared-cosine shaped."""

    def __init__(self, num_classes: int, embedding_dim: int, scale: float = 16.0, margin: float = 0.2) -> None:
        super().__init__(num_classes, embedding_dim, scale)
        self.margin = margin

    def target_transform(self, cos: torch.Tensor) -> torch.Tensor:
        return cos - self.margin * (1.0 + cos) / 2.0


class UnshardableHead(CosineMarginHead):
    """The same head, declared without Partial FC."""


class TeacherRegression(DistillLoss):
    """Pointwise regression onto the teacher only."""

    def __init__(self) -> None:
        super().__init__(cosine=1.0, relation=0.0)


@pytest.fixture(scope="module", autouse=True)
def _registered() -> None:
    """The losses are registered when these tests run, not when the module is collected, so a test that is
    parametrised over every registered loss (test_loss_selection) sees only the built-in ones."""
    if "test_squared_triplet" in LOSSES:
        return
    register_loss("test_squared_triplet", needs=LossNeeds(miner="triplets"))(SquaredTripletLoss)
    register_loss("test_cosine_margin", needs=SHARDABLE_HEAD)(CosineMarginHead)
    register_loss("test_unshardable_head", needs=LossNeeds(classes=True))(UnshardableHead)
    register_loss("test_teacher_regression", needs=LossNeeds(teacher=True))(TeacherRegression)


def _rows(out: Path) -> list[dict[str, str]]:
    return list(csv.DictReader((out / "train.csv").open()))


def test_a_triplet_loss_declared_outside_the_package_trains_with_a_batch_hard_miner(
    synthetic_faces: Path, tmp_path: Path
) -> None:
    cfg = load_config(
        None, [*tiny_overrides(synthetic_faces, tmp_path), "loss.name=test_squared_triplet", "miner.name=batch_hard"]
    )
    run = build_run(cfg)
    loss = run.trainer.loss
    assert isinstance(loss, SquaredTripletLoss) and isinstance(loss.miner, BatchHardMiner)
    run.fit()
    assert loss.mined > 0 and all(math.isfinite(float(r["loss"])) for r in _rows(tmp_path))
    # a pair miner does not fit what it declared
    wrong = [*tiny_overrides(synthetic_faces), "loss.name=test_squared_triplet", "miner.name=all_pairs"]
    with pytest.raises(ConfigError, match="miner.name: 'all_pairs' does not mine triplets.*available: .*batch_hard"):
        check_config(load_config(None, wrong))


def test_a_margin_head_declared_outside_the_package_trains_under_partial_fc(
    synthetic_faces: Path, tmp_path: Path
) -> None:
    cfg = load_config(
        None, [*tiny_overrides(synthetic_faces, tmp_path), "loss.name=test_cosine_margin", "loss.sample_rate=0.5"]
    )
    run = build_run(cfg)
    loss = run.trainer.loss
    assert isinstance(loss, PartialFC) and isinstance(loss.head, CosineMarginHead)
    assert loss.num_sample == 4 and loss.num_local == 8  # 8 training people, half of the centres a step
    before = loss.head.weight.detach().clone()
    run.fit()
    assert all(math.isfinite(float(r["loss"])) for r in _rows(tmp_path))
    assert not torch.equal(loss.head.weight.detach(), before)
    # the same head, declared without Partial FC, is refused a sample rate
    unshardable = [*tiny_overrides(synthetic_faces, tmp_path / "u"), "loss.name=test_unshardable_head"]
    with pytest.raises(ConfigError, match="loss.sample_rate: Partial FC samples the centres of heads that declare it"):
        build_run(load_config(None, [*unshardable, "loss.sample_rate=0.5"]))


def test_a_loss_declaring_a_teacher_gets_the_teacher_callback(
    synthetic_faces: Path, tiny_checkpoint: Path, tmp_path: Path
) -> None:
    assert loss_needs("test_teacher_regression").teacher
    overrides = [*tiny_overrides(synthetic_faces, tmp_path), "loss.name=test_teacher_regression", "train.epochs=1"]
    with pytest.raises(ConfigError, match="distill.teacher"):
        check_config(load_config(None, overrides))
    run = build_run(load_config(None, [*overrides, f"distill.teacher={tiny_checkpoint}", "distill.center=false"]))
    assert isinstance(run.trainer.callbacks[0], DistillCallback)
    run.fit()
    assert math.isfinite(float(_rows(tmp_path)[0]["loss"]))


def test_every_callback_is_registered_and_implied_ones_are_not_named_in_a_config(synthetic_faces: Path) -> None:
    import facemetric.train.callbacks as package
    from facemetric.train.callbacks.tracking import TrackerCallback

    def subclasses(cls: type) -> set[type]:
        return {c for s in cls.__subclasses__() for c in {s} | subclasses(s)}

    ours = {c for c in subclasses(Callback) if c.__module__.startswith(package.__name__)} - {TrackerCallback}
    registered = {CALLBACKS.get(name) for name in CALLBACKS.names()}
    assert len(ours) >= 13 and ours <= registered, sorted(c.__name__ for c in ours - registered)
    cfg = load_config(None, [*tiny_overrides(synthetic_faces), "train.callbacks=[{name: validation}]"])
    with pytest.raises(ConfigError, match="train.callbacks.0.name: 'validation' is added by facemetric itself"):
        check_config(cfg)
