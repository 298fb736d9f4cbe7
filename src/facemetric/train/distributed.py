"""How a run uses its processes: one (the default) or several under ``torchrun`` (DDP).

A :class:`Strategy` is what the :class:`~facemetric.train.trainer.Trainer` asks about processes,
so the loop has no distributed branches:

* the module each step calls (the model in DistributedDataParallel, the loss over the global batch:
  :class:`~facemetric.losses.global_batch.GlobalBatchLoss`, or a Partial FC head that is already
  split over the ranks);
* whether this process writes files (rank 0: checkpoints, logs, the report; it also validates);
* the decisions every rank must share (stop after this epoch), taken on rank 0 and broadcast;
* the state that differs between ranks (a Partial FC shard and its optimiser state), gathered into
  rank 0's checkpoint so that one file holds the whole run.

``torchrun`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``;
:func:`strategy_from_env` reads them. Every rank draws its share of one seeded global P x K batch
(the data's ``share``), so the global batch, and hence a pair loss's mining, is the one a single
process would see.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
from collections.abc import Iterator
from typing import Any

import torch
import torch.distributed as dist
import torch.nn as nn

from facemetric.core.config import DistributedConfig
from facemetric.core.errors import ConfigError, FacemetricError
from facemetric.losses.global_batch import GlobalBatchLoss
from facemetric.losses.partial_fc import PartialFC

log = logging.getLogger("facemetric")


# what gloo and NCCL say when a peer process died or stopped answering
_PEER_LOST = ("timed out", "timeout", "connection closed", "connection reset", "broken pipe", "peer")


class PeerLostError(FacemetricError):
    """Another training process died or stopped answering within ``train.distributed.timeout_s``."""


class Strategy:
    """One process: the model and loss as they are, every decision local."""

    rank, world_size, backend = 0, 1, "none"

    @property
    def is_main(self) -> bool:
        """Whether this process writes the run's files (and validates)."""
        return self.rank == 0

    @property
    def share(self) -> tuple[int, int]:
        """(which part, of how many) of each global batch this process trains on."""
        return self.rank, self.world_size

    def wrap_model(self, model: nn.Module) -> nn.Module:
        return model

    def wrap_loss(self, loss: nn.Module) -> nn.Module:
        return loss

    def agree(self, flag: bool) -> bool:
        """Rank 0's value of ``flag`` on every rank."""
        return flag

    def sharded(self, loss: nn.Module) -> bool:
        """Whether ranks hold different loss weights (a Partial FC head split over them)."""
        return False

    def gather(self, state: dict[str, Any]) -> list[dict[str, Any]] | None:
        """Every rank's ``state`` on rank 0 (None elsewhere); collective: all ranks call it."""
        return [state]

    def close(self) -> None:
        """Leave the process group."""

    @contextlib.contextmanager
    def main_first(self) -> Iterator[None]:
        """Rank 0 runs the block first (decoding a dataset into its cache), the others after it."""
        yield

    def describe(self) -> dict[str, Any]:
        return {"world_size": self.world_size, "backend": self.backend, "rank": self.rank}

    def explain(self, exc: BaseException, out: str) -> BaseException:
        """``exc``, or a :class:`PeerLostError` saying what happened when it is a collective that lost a rank."""
        return exc


class DDPStrategy(Strategy):
    """Several processes in torch.distributed's default process group (already initialised)."""

    def __init__(self, device: torch.device, sync_bn: bool = False) -> None:
        self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
        self.backend = str(dist.get_backend())
        self.device, self.sync_bn = device, sync_bn

    def wrap_model(self, model: nn.Module) -> nn.Module:
        if self.sync_bn:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids)

    def wrap_loss(self, loss: nn.Module) -> nn.Module:
        return loss if isinstance(loss, PartialFC) else GlobalBatchLoss(loss)

    def agree(self, flag: bool) -> bool:
        box = [bool(flag)]
        dist.broadcast_object_list(box, src=0)
        return bool(box[0])

    def sharded(self, loss: nn.Module) -> bool:
        return isinstance(loss, PartialFC)

    def gather(self, state: dict[str, Any]) -> list[dict[str, Any]] | None:
        cpu = _to_cpu(state)
        out: list[Any] | None = [None] * self.world_size if self.is_main else None
        dist.gather_object(cpu, out, dst=0)
        return out

    def close(self) -> None:
        if dist.is_initialized():
            dist.destroy_process_group()

    def explain(self, exc: BaseException, out: str) -> BaseException:
        text = str(exc).lower()
        if not isinstance(exc, RuntimeError) or not any(s in text for s in _PEER_LOST):
            return exc
        return PeerLostError(
            f"rank {self.rank} of {self.world_size}: another training process died or stopped answering "
            f"({str(exc).splitlines()[0][-160:]}); every checkpoint in {out} is whole: run the same torchrun "
            "command with --resume (train.distributed.timeout_s sets how long a rank waits)"
        )

    @contextlib.contextmanager
    def main_first(self) -> Iterator[None]:
        if not self.is_main:
            dist.barrier()
        yield
        if self.is_main:
            dist.barrier()


def _to_cpu(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {k: _to_cpu(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_cpu(v) for v in value)
    return value


def launched_world_size() -> int:
    """WORLD_SIZE as set by torchrun (1 when not launched by it)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise ConfigError(f"WORLD_SIZE={os.environ['WORLD_SIZE']!r} is not a number") from None


def local_device(device: torch.device) -> torch.device:
    """This process's device: under torchrun on CUDA, GPU ``LOCAL_RANK``."""
    if device.type == "cuda" and launched_world_size() > 1:
        index = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(index)
        return torch.device("cuda", index)
    return device


def strategy_from_env(cfg: DistributedConfig, device: torch.device) -> Strategy:
    """A :class:`DDPStrategy` when started by torchrun with more than one process, else one process.

    Initialises the default process group (``backend`` auto: NCCL on CUDA, gloo on CPU) with
    ``cfg.timeout_s``: a collective that waits longer for a dead or hung rank fails on the others.
    """
    if launched_world_size() == 1:
        return Strategy()
    backend = cfg.backend if cfg.backend != "auto" else ("nccl" if device.type == "cuda" else "gloo")
    if backend == "nccl" and device.type != "cuda":
        raise ConfigError("train.distributed.backend: nccl needs CUDA devices; use gloo on CPU")
    if cfg.sync_bn and device.type != "cuda":
        raise ConfigError("train.distributed.sync_bn: torch's SyncBatchNorm runs on CUDA only; set it false on CPU")
    if not dist.is_initialized():
        if backend == "nccl":  # a hung NCCL collective must raise, not block forever
            os.environ.setdefault("TORCH_NCCL_ASYNC_ERROR_HANDLING", "1")
        dist.init_process_group(
            backend, timeout=datetime.timedelta(seconds=cfg.timeout_s), device_id=device if backend == "nccl" else None
        )
    strategy = DDPStrategy(device, cfg.sync_bn)
    if not strategy.is_main:  # one voice: the other ranks report only problems
        logging.getLogger("facemetric").setLevel(logging.WARNING)
    log.info(
        "distributed: %d processes, backend %s, timeout %.0f s", strategy.world_size, strategy.backend, cfg.timeout_s
    )
    return strategy
