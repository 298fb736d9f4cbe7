"""Two gloo processes on the global batch give the loss and gradients of one process on the
concatenated batch: pair losses through GlobalBatchLoss, margin heads through Partial FC."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn

from facemetric.losses import build_loss
from facemetric.losses.global_batch import GlobalBatchLoss
from facemetric.losses.partial_fc import PartialFC, seeded_centres, shard_range
from facemetric.miners import build_miner

N, D_IN, D, CLASSES, WORLD = 24, 12, 8, 7, 2
TIMEOUT_S = 120

CASES: dict[str, tuple[str, dict, str | None]] = {
    "triplet-batch-hard": ("triplet", {"margin": 0.2}, "batch_hard"),
    "triplet-semi-hard": ("triplet", {"margin": 0.2}, "semi_hard"),
    "triplet-batch-all": ("triplet", {"margin": 0.2}, "batch_all"),
    "contrastive": ("contrastive", {}, None),
    "multi-similarity": ("multi_similarity", {}, None),
    "circle": ("circle", {}, None),
    "arcface": ("arcface", {}, None),
    "arcface-pfc": ("arcface", {}, "pfc"),
    "cosface-subcenters-pfc": ("cosface", {"subcenters": 2}, "pfc"),
    "softmax-pfc": ("softmax", {}, "pfc"),
}


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(5)
    x = torch.randn(N, D_IN, generator=g)
    labels = torch.arange(N) % CLASSES  # every class appears on both ranks' halves or one of them
    return x, labels[torch.randperm(N, generator=g)]


def _model() -> nn.Module:
    torch.manual_seed(3)
    return nn.Sequential(nn.Linear(D_IN, 16), nn.PReLU(), nn.Linear(16, D))


def _loss(case: str, rank: int, world_size: int) -> nn.Module:
    name, options, miner = CASES[case]
    if miner == "pfc":
        first, count = shard_range(CLASSES, rank, world_size)
        head = build_loss(name, num_classes=count, embedding_dim=D, **options)
        per = getattr(head, "subcenters", 1)
        with torch.no_grad():
            head.weight.copy_(seeded_centres((first, count), per, D, seed=1, std=0.3))
        return PartialFC(head, CLASSES, (first, count))
    if name in ("arcface",):
        head = build_loss(name, num_classes=CLASSES, embedding_dim=D, **options)
        with torch.no_grad():
            head.weight.copy_(seeded_centres((0, CLASSES), 1, D, seed=1, std=0.3))
        return head
    extra = {"miner": build_miner(miner)} if miner else {}
    return build_loss(name, **options, **extra)


def _grads(model: nn.Module, loss_fn: nn.Module) -> dict[str, torch.Tensor]:
    out = {f"model.{k}": p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}
    out.update({f"loss.{k}": p.grad.clone() for k, p in loss_fn.named_parameters() if p.grad is not None})
    return out


def _worker(rank: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    torch.set_num_threads(1)
    try:
        x, labels = _batch()
        share = slice(rank * N // WORLD, (rank + 1) * N // WORLD)
        results = {}
        for case in CASES:
            model = nn.parallel.DistributedDataParallel(_model())
            loss_fn = _loss(case, rank, WORLD)
            wrapped = loss_fn if isinstance(loss_fn, PartialFC) else GlobalBatchLoss(loss_fn)
            loss = wrapped(model(x[share]), labels[share])
            loss.backward()
            results[case] = {"loss": loss.detach(), **_grads(model.module, loss_fn)}
        torch.save(results, Path(out) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    out = tmp_path_factory.mktemp("ddp")
    ctx = mp.start_processes(_worker, args=(_free_port(), str(out)), nprocs=WORLD, join=False, start_method="spawn")
    for p in ctx.processes:
        p.join(TIMEOUT_S)
    alive = [p.pid for p in ctx.processes if p.is_alive()]
    for p in ctx.processes:
        if p.is_alive():
            p.kill()
    assert not alive, f"ranks {alive} did not finish within {TIMEOUT_S} s"
    assert all(p.exitcode == 0 for p in ctx.processes), [p.exitcode for p in ctx.processes]
    return [torch.load(out / f"rank{r}.pt") for r in range(WORLD)]


@pytest.mark.parametrize("case", list(CASES))
def test_two_processes_equal_one_on_the_concatenated_batch(two_ranks: list[dict], case: str) -> None:
    x, labels = _batch()
    model = _model()
    loss_fn = _loss(case, 0, 1)
    loss = loss_fn(model(x), labels)
    loss.backward()
    want = {"loss": loss.detach(), **_grads(model, loss_fn)}
    assert loss.item() > 1e-3  # a loss with something to learn, so the gradients are not all zero
    for rank, got in enumerate(two_ranks):
        got = got[case]
        torch.testing.assert_close(got["loss"], want["loss"], atol=1e-5, rtol=1e-5)
        for key, value in want.items():
            if key.startswith("loss.") and key not in got:
                continue
            if key.startswith("loss.") and CASES[case][2] == "pfc":  # each rank holds some classes' rows
                first, count = shard_range(CLASSES, rank, WORLD)
                per = getattr(loss_fn.head, "subcenters", 1)
                value = value[first * per : (first + count) * per]
            torch.testing.assert_close(got[key], value, atol=1e-5, rtol=1e-4, msg=f"{case} rank {rank} {key}")
        assert {k for k in got if k.startswith("model.")} == {k for k in want if k.startswith("model.")}
