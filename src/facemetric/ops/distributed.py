"""Collectives a loss needs across training processes: all-gather that keeps the gradient, and the
process group's rank and size (1 process when torch.distributed is not initialised).

``gather_with_grad`` is how a pair loss sees the global batch: every rank gets the concatenation of
all ranks' embeddings in rank order, and the backward pass sums, over ranks, the gradient each
rank's loss sent to a rank's rows (an all-reduce, which gloo, NCCL and every other backend support,
unlike reduce-scatter).
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def world() -> tuple[int, int]:
    """(rank, world_size) of the default process group; (0, 1) without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class _GatherWithGrad(torch.autograd.Function):
    """Forward: all ranks' (N, ...) tensors concatenated in rank order. Backward: the sum over ranks of
    the gradient with respect to this rank's rows, times ``scale``."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: float) -> torch.Tensor:
        rank, size = world()
        parts = [torch.empty_like(x) for _ in range(size)]
        dist.all_gather(parts, x.contiguous())
        ctx.rank, ctx.n, ctx.scale = rank, len(x), scale
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)  # every rank's loss may depend on every rank's rows
        mine = grad[ctx.rank * ctx.n : (ctx.rank + 1) * ctx.n]
        return (mine * ctx.scale if ctx.scale != 1.0 else mine), None


def gather_with_grad(x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """All ranks' ``x`` (same shape on every rank) concatenated in rank order, differentiable.

    Under DistributedDataParallel, which averages gradients over ranks: a loss every rank computes
    whole on the gathered batch needs ``scale=1`` (each rank's rows collect ``world_size`` equal
    gradients, the average divides them out); a loss split over ranks (Partial FC: each rank holds
    some classes) needs ``scale=world_size``. Without a process group, ``x`` itself.
    """
    if world()[1] == 1:
        return x
    return _GatherWithGrad.apply(x, scale)


def gather(x: torch.Tensor) -> torch.Tensor:
    """All ranks' ``x`` concatenated in rank order, without gradient (labels, indices)."""
    size = world()[1]
    if size == 1:
        return x
    parts = [torch.empty_like(x) for _ in range(size)]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts)


def all_reduce(x: torch.Tensor, op: str = "sum") -> torch.Tensor:
    """``x`` reduced over ranks in place (``sum`` or ``max``), without gradient; returns ``x``."""
    if world()[1] > 1:
        dist.all_reduce(x, op=dist.ReduceOp.MAX if op == "max" else dist.ReduceOp.SUM)
    return x
