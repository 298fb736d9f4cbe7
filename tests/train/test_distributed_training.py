"""Whole training runs on two gloo processes, started the way torchrun starts them (RANK, WORLD_SIZE,
MASTER_ADDR/PORT in the environment): the same weights as one process on the same global batches,
and a Partial FC run that resumes from its gathered checkpoint."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from facemetric.core.config import load_config
from facemetric.core.errors import ConfigError
from plain_cnn import MODEL, register

pytestmark = pytest.mark.slow

TIMEOUT_S = 240


def _overrides(orl: Path, out: Path, loss: list[str], epochs: int = 3) -> list[str]:
    return [
        f"data.source={orl}",
        "data.image_size=[32, 32]",
        "data.val_identities=10",
        "data.cache_dir=null",
        "data.workers=0",
        f"model.name={MODEL}",
        "model.embedding_dim=32",
        "sampler.p=8",
        "sampler.k=4",
        "augment.shift=0.08",  # the shares' random numbers must be the whole batch's
        "augment.saturation=0.2",
        f"train.epochs={epochs}",
        "train.val_every=3",
        "train.progress=false",
        "train.threads=1",
        "train.amp=false",  # fp32: bf16 autocast (on by default with AVX512-BF16) rounds half a batch unlike all of it
        "monitor.enabled=false",
        f"train.out={out}",
        *loss,
    ]


def _rank(rank: int, world: int, port: int, overrides: list[str], resume: bool) -> None:
    os.environ.update(
        RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
    )
    register()
    from facemetric.train.build import train

    train(load_config(None, overrides), resume=resume)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(world: int, overrides: list[str], resume: bool = False) -> None:
    ctx = mp.start_processes(
        _rank, args=(world, _free_port(), overrides, resume), nprocs=world, join=False, start_method="spawn"
    )
    for p in ctx.processes:
        p.join(TIMEOUT_S)
    for p in ctx.processes:
        if p.is_alive():
            p.kill()
    assert [p.exitcode for p in ctx.processes] == [0] * world


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=False)["model"]


MULTI_SIMILARITY = ["loss.name=multi_similarity", "loss.options={}"]


def test_two_processes_train_the_weights_of_one(shared_data: Path, tmp_path: Path) -> None:
    register()
    orl = shared_data / "orl"
    _run(2, _overrides(orl, tmp_path / "two", MULTI_SIMILARITY))
    _run(1, _overrides(orl, tmp_path / "one", MULTI_SIMILARITY))
    two, one = torch.load(tmp_path / "two" / "last.pt", weights_only=False), _weights(tmp_path / "one" / "last.pt")
    assert two["world_size"] == 2 and two["global_step"] > 20
    for key, value in one.items():
        torch.testing.assert_close(two["model"][key], value, atol=2e-5, rtol=1e-4, msg=key)
    assert any((v != 0).any() for v in one.values())
    env = (tmp_path / "two" / "environment.json").read_text()
    assert '"world_size": 2' in env and '"backend": "gloo"' in env
    assert (tmp_path / "two" / "val.csv").read_text().count("\n") == 2  # validated once, by rank 0


def test_a_pair_loss_run_resumes_on_another_number_of_processes(shared_data: Path, tmp_path: Path) -> None:
    """Without Partial FC every process holds the same state and the global batch does not depend on
    their number: 2 epochs in one process, then a third in two, equal 3 epochs in one."""
    register()
    orl, loss = shared_data / "orl", [*MULTI_SIMILARITY, "scheduler.name=constant"]
    _run(1, _overrides(orl, tmp_path / "whole", loss, epochs=3))
    _run(1, _overrides(orl, tmp_path / "cut", loss, epochs=2))
    _run(2, _overrides(orl, tmp_path / "cut", loss, epochs=3), resume=True)
    whole, cut = _weights(tmp_path / "whole" / "last.pt"), torch.load(tmp_path / "cut" / "last.pt", weights_only=False)
    assert cut["world_size"] == 2
    for key, value in whole.items():
        torch.testing.assert_close(cut["model"][key], value, atol=2e-5, rtol=1e-4, msg=key)


def test_partial_fc_checkpoint_holds_every_shard_and_resumes(shared_data: Path, tmp_path: Path) -> None:
    register()
    # a constant learning rate, so a run of 2 epochs is the first 2 epochs of a run of 3
    arcface = ["loss.name=arcface", "loss.options={scale: 16.0, margin: 0.3}", "scheduler.name=constant"]
    orl = shared_data / "orl"
    _run(2, _overrides(orl, tmp_path / "whole", arcface, epochs=3))
    _run(2, _overrides(orl, tmp_path / "cut", arcface, epochs=2))
    _run(2, _overrides(orl, tmp_path / "cut", arcface, epochs=3), resume=True)
    whole, cut = (torch.load(tmp_path / d / "last.pt", weights_only=False) for d in ("whole", "cut"))
    assert len(whole["shards"]) == 2
    assert [s["loss"]["head.weight"].shape[0] for s in whole["shards"]] == [15, 15]  # 30 training people
    for key, value in whole["model"].items():
        torch.testing.assert_close(cut["model"][key], value, atol=1e-6, rtol=1e-5, msg=key)
    for a, b in zip(whole["shards"], cut["shards"]):
        torch.testing.assert_close(a["loss"]["head.weight"], b["loss"]["head.weight"], atol=1e-6, rtol=1e-5)
    with pytest.raises(Exception, match="split over 2 processes"):  # one process cannot take two shards
        _rank_resume_alone(_overrides(orl, tmp_path / "cut", arcface, epochs=4))


def _rank_resume_alone(overrides: list[str]) -> None:
    from facemetric.train.build import build_run

    build_run(load_config(None, [*overrides, "loss.sample_rate=0.5"]), resume=True)


def test_a_global_batch_that_does_not_split_is_refused(shared_data: Path, tmp_path: Path, monkeypatch) -> None:
    from facemetric.train.check import check_distributed as _check_distributed
    from facemetric.train.distributed import Strategy

    two = Strategy()
    two.world_size = 2
    cfg = load_config(None, ["sampler.p=5", "sampler.k=3"])
    with pytest.raises(ConfigError, match="cannot be split into 2"):
        _check_distributed(cfg, two)
