"""A miner, an optimizer, a scheduler and a callback written outside facemetric: registered from here, named in
a config, checked like the built-in ones, and trained with."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
import torch

from facemetric.core.config import load_config
from facemetric.core.errors import ConfigError
from facemetric.core.mining import TripletMiner, Triplets
from facemetric.miners import register_miner
from facemetric.ops.masks import pair_masks
from facemetric.optim import register_optimizer, register_scheduler
from facemetric.train.build import build_run, check_config
from facemetric.train.callbacks import Callback, StepOutput, register_callback


@register_miner("test_random_negative")
class RandomNegativeMiner(TripletMiner):
    """One triplet per anchor: its nearest positive and a random negative."""

    sparse = True

    def __init__(self, seed: int = 0) -> None:
        self.seed, self.calls = seed, 0
        self.generator = torch.Generator().manual_seed(seed)

    def mine(self, dist: torch.Tensor, labels: torch.Tensor, margin: float) -> Triplets:
        self.calls += 1
        pos, neg = pair_masks(labels)
        anchors = (pos.any(1) & neg.any(1)).nonzero().squeeze(1)
        positives = dist.masked_fill(~pos, float("inf")).argmin(1)[anchors]
        scores = torch.rand(dist.shape, generator=self.generator).masked_fill(~neg, -1.0)
        return Triplets(anchors=anchors, positives=positives, negatives=scores.argmax(1)[anchors])


@register_optimizer("test_plain_sgd")
def plain_sgd(params: Any, lr: float, weight_decay: float, dampening: float = 0.0) -> torch.optim.SGD:
    return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay, momentum=0.5, dampening=dampening)


@register_scheduler("test_halving")
def halving(
    optimizer: torch.optim.Optimizer, total_steps: int, steps_per_epoch: int, every: int = 1
) -> torch.optim.lr_scheduler.StepLR:
    return torch.optim.lr_scheduler.StepLR(optimizer, step_size=every, gamma=0.5)


@register_callback("test_recorder")
class Recorder(Callback):
    """Keeps each step's learning rate and miner; adds a number to each epoch's record."""

    made: list[Recorder] = []

    def __init__(self, tag: str = "recorder") -> None:
        self.tag, self.lrs, self.miners = tag, [], []
        Recorder.made.append(self)

    def on_batch_end(self, trainer: Any, output: StepOutput) -> None:
        self.lrs.append(output.lr)
        self.miners.append(trainer.loss.miner)

    def on_epoch_end(self, trainer: Any, logs: dict[str, Any]) -> None:
        logs[f"{self.tag}/steps"] = len(self.lrs)


def _overrides(data: Path, out: Path) -> list[str]:
    return [
        f"data.source={data}",
        "data.image_size=[32, 32]",
        "data.val_identities=4",
        "data.cache_dir=null",
        "sampler.p=4",
        "sampler.k=3",
        "sampler.batches_per_epoch=3",
        "train.epochs=2",
        "train.progress=false",
        f"train.out={out}",
        "loss.name=triplet",
        "miner.name=test_random_negative",
        "miner.options={seed: 3}",
        "optim.name=test_plain_sgd",
        "optim.lr=0.1",
        "optim.weight_decay=0.0",
        "optim.options={dampening: 0.1}",
        "scheduler.name=test_halving",
        "scheduler.options={every: 2}",
        "train.callbacks=[{name: test_recorder, options: {tag: rec}}]",
    ]


def test_trains_with_components_registered_outside_the_package(synthetic_faces: Path, tmp_path: Path) -> None:
    run = build_run(load_config(None, _overrides(synthetic_faces, tmp_path)))
    trainer = run.trainer
    assert isinstance(trainer.optimizer, torch.optim.SGD) and trainer.optimizer.defaults["dampening"] == 0.1
    assert isinstance(trainer.scheduler, torch.optim.lr_scheduler.StepLR)
    miner = trainer.loss.miner
    assert isinstance(miner, RandomNegativeMiner) and miner.seed == 3
    run.fit()
    recorder = Recorder.made[-1]
    assert recorder.tag == "rec" and recorder.lrs == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025, 0.025])
    assert miner.calls == 6 and all(m is miner for m in recorder.miners)
    rows = list(csv.DictReader((tmp_path / "train.csv").open()))
    assert [r["rec/steps"] for r in rows] == ["3", "6"]  # the callback's numbers reach the logs
    assert (tmp_path / "last.pt").is_file()


@pytest.mark.parametrize(
    "override, message",
    [
        (
            "miner.options={seeed: 1}",
            "miner.options: miner 'test_random_negative' has no option 'seeed'; its options: seed",
        ),
        (
            "optim.options={dampening: wet}",
            "optim.options.dampening: 'wet' is not valid for optimizer 'test_plain_sgd'",
        ),
        ("scheduler.options={every: 2.5}", "scheduler.options.every: 2.5 is not valid for scheduler 'test_halving'"),
        (
            "train.callbacks=[{name: test_recorder, options: {tags: x}}]",
            "train.callbacks.0.options: callback 'test_recorder' has no option 'tags'; its options: tag",
        ),
    ],
)
def test_their_options_are_checked_like_the_built_in_ones(
    synthetic_faces: Path, tmp_path: Path, override: str, message: str
) -> None:
    cfg = load_config(None, _overrides(synthetic_faces, tmp_path) + [override])
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        check_config(cfg)
