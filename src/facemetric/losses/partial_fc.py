"""Partial FC (An et al., "Partial FC: Training 10 Million Identities on a Single Machine", ICCVW 2021):
a margin head whose class centres are split over the training processes, with a sampled softmax.

Rank ``r`` of ``W`` holds the centres of classes ``[start_r, start_r + n_r)`` (``n_r`` about
``num_classes / W``), so the head's memory per rank falls as ``1 / W``. Each step every rank gathers
the global batch's embeddings and labels, computes logits against its own centres only (a fraction
``sample_rate`` of them: every centre a label of the batch needs, plus random others), and the
softmax is normalised across ranks by an all-reduce of each row's maximum and sum of exponentials.
With one process and ``sample_rate: 1.0`` this is exactly the ordinary head (a test checks the loss
and every gradient).

Gradients: the cross-entropy's backward is local (softmax minus one-hot over this rank's columns);
the embeddings' gradient is summed over ranks by :func:`~facemetric.ops.distributed.gather_with_grad`
and scaled by ``W`` so that DistributedDataParallel's average over ranks leaves the true gradient.
The centres are not replicated (each rank owns its shard), so DDP never sees them.

Sampling note: the shard stays one parameter; centres not sampled at a step get a zero gradient
(an optimiser with momentum, e.g. AdamW, still moves them by their momentum and weight decay, as
in arcface_torch with SGD).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from facemetric.losses.margin import ClassifierLoss, CosineMarginLoss
from facemetric.losses.softmax import SoftmaxLoss
from facemetric.ops.distributed import all_reduce, gather, gather_with_grad, world
from facemetric.ops.normalize import normalize_rows

INIT_CHUNK = 4096  # classes per seeded block of the initial centres (the same centres for any world size)


def shard_range(num_classes: int, rank: int, world_size: int) -> tuple[int, int]:
    """(first class, number of classes) of ``rank``'s shard: the first ``num_classes % world_size``
    ranks hold one class more (arcface_torch's split)."""
    base, extra = divmod(num_classes, world_size)
    return base * rank + min(rank, extra), base + (rank < extra)


def supports_partial_fc(head: nn.Module) -> bool:
    """Whether ``head`` is a margin head Partial FC can shard: cosine logits with a target transform
    (ArcFace, CosFace, NormFace, combined margins, sub-centres) or plain softmax, and no loss of its own
    beyond cross-entropy (not SphereFace's annealing, circle's pair weights or centre loss)."""
    own_forward = type(head).forward is not ClassifierLoss.forward
    if isinstance(head, CosineMarginLoss):
        return not own_forward and type(head)._logits is CosineMarginLoss._logits
    return type(head) is SoftmaxLoss


def seeded_centres(rows: tuple[int, int], per_class: int, dim: int, seed: int, std: float = 0.01) -> torch.Tensor:
    """Normal(0, std) initial centres of classes ``rows[0] .. rows[0] + rows[1] - 1`` (``per_class`` rows each),
    drawn in seeded blocks of :data:`INIT_CHUNK` classes: a shard gets the rows one process would have."""
    first, count = rows
    out = torch.empty(count * per_class, dim)
    c = first
    while c < first + count:
        block = c // INIT_CHUNK
        gen = torch.Generator().manual_seed(seed * 1_000_003 + block)
        full = torch.randn(INIT_CHUNK * per_class, dim, generator=gen).mul_(std)
        lo, hi = c - block * INIT_CHUNK, min(first + count - block * INIT_CHUNK, INIT_CHUNK)
        out[(c - first) * per_class : (c - first + hi - lo) * per_class] = full[lo * per_class : hi * per_class]
        c += hi - lo
    return out


class _ShardedCrossEntropy(torch.autograd.Function):
    """Mean cross-entropy of rows whose columns are split over ranks; ``target`` is the column on this
    rank (-1 where another rank holds the row's class). Backward is local: softmax minus one-hot."""

    @staticmethod
    def forward(ctx, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        top = all_reduce(logits.detach().amax(dim=1), "max")
        e = torch.exp(logits - top[:, None])
        total = all_reduce(e.sum(dim=1), "sum")
        mine = target >= 0
        picked = torch.zeros_like(total)
        picked[mine] = logits[mine, target[mine]]
        picked = all_reduce(picked, "sum")  # each row's target logit, from the rank that holds it
        ctx.save_for_backward(e.div_(total[:, None]), target)
        return (total.log() + top - picked).mean()

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        prob, target = ctx.saved_tensors
        g = prob.clone()
        mine = torch.nonzero(target >= 0).squeeze(1)
        g[mine, target[mine]] -= 1.0
        return g.mul_(grad / len(g)), None


class PartialFC(nn.Module):
    """Partial FC around a margin ``head`` built for this rank's ``shard`` = (first class, count).

    ``head.weight`` (and a softmax head's bias) hold the shard's centres; its margin settings stay on
    the head: reading or setting one on the Partial FC (a loss schedule's ``margin``) reaches the head.
    """

    _OWN = frozenset({"head", "num_classes", "sample_rate", "class_start", "num_local", "num_sample"})

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            head = self._modules.get("head")
            if head is None or name in self._OWN:
                raise
            return getattr(head, name)

    def __setattr__(self, name: str, value: Any) -> None:
        head = self.__dict__.get("_modules", {}).get("head")
        if head is not None and name not in self._OWN and name not in self.__dict__ and hasattr(head, name):
            setattr(head, name, value)  # a setting of the head, e.g. a scheduled margin
            return
        super().__setattr__(name, value)

    def __init__(
        self, head: ClassifierLoss, num_classes: int, shard: tuple[int, int], sample_rate: float = 1.0
    ) -> None:
        super().__init__()
        if not supports_partial_fc(head):
            name = type(head).__name__
            raise ValueError(f"Partial FC cannot shard {name}; it shards cosine margin heads and softmax")
        if not 0.0 < sample_rate <= 1.0:
            raise ValueError(f"sample_rate must be in (0, 1], got {sample_rate}")
        if head.num_classes != shard[1]:
            raise ValueError(f"the head has {head.num_classes} classes, the shard {shard[1]}")
        self.head, self.num_classes, self.sample_rate = head, num_classes, sample_rate
        self.class_start, self.num_local = shard
        self.num_sample = max(1, int(sample_rate * self.num_local))

    def sample(self, local: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
        """Which of this shard's centres take part (None: all) and the targets renumbered into them.
        Every centre a row's label needs is kept; the rest are drawn at random."""
        if self.num_sample >= self.num_local:
            return None, local
        mine = local >= 0
        positive = torch.unique(local[mine])
        if len(positive) >= self.num_sample:
            index = positive
        else:
            score = torch.rand(self.num_local, device=local.device)
            score[positive] = 2.0
            index = torch.topk(score, self.num_sample).indices.sort().values
        renumbered = local.clone()
        renumbered[mine] = torch.searchsorted(index, local[mine])
        return index, renumbered

    def _logits(self, emb: torch.Tensor, index: torch.Tensor | None, target: torch.Tensor) -> torch.Tensor:
        head = self.head
        weight = head.weight.to(emb.dtype)
        if isinstance(head, SoftmaxLoss):
            bias = head.bias.to(emb.dtype)
            if index is not None:
                weight, bias = weight[index], bias[index]
            return F.linear(emb, weight, bias)
        assert isinstance(head, CosineMarginLoss)
        sub = head.subcenters
        if index is not None:
            weight = weight.view(self.num_local, sub, -1)[index].reshape(-1, weight.shape[1])
        cos = F.linear(normalize_rows(emb), normalize_rows(weight))
        if sub > 1:
            cos = cos.view(len(cos), -1, sub).amax(dim=2)
        cos = cos.clamp(-1.0, 1.0)
        if head.has_margin:
            valid = (target >= 0)[:, None]
            at = target.clamp_min(0)[:, None]
            old = cos.gather(1, at)
            cos = cos.scatter(1, at, torch.where(valid, head.target_transform(old), old))
        return head.logit_scale(emb) * cos

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean margin cross-entropy over the global batch (every rank returns the same value)."""
        size = world()[1]
        dtype = torch.promote_types(embeddings.dtype, torch.float32)
        with torch.autocast(embeddings.device.type, enabled=False):  # float32 math under autocast
            emb = gather_with_grad(embeddings.to(dtype), scale=float(size))
            local = gather(labels) - self.class_start
            local = torch.where((local >= 0) & (local < self.num_local), local, torch.full_like(local, -1))
            index, target = self.sample(local)
            logits = self._logits(emb, index, target)
            return _ShardedCrossEntropy.apply(logits, target)
