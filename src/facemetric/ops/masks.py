"""Masks and masked reductions over the B x B pairs of a batch, shared by the losses and miners.

Everything is vectorised over anchors and stays O(B x B): triplets are never materialised as a
B x B x B tensor (miners describe them by positive *slot*, the k-th positive of every anchor).
"""

from __future__ import annotations

import torch

from facemetric.core.mining import PairMiner

REDUCTIONS = ("mean_nonzero", "mean")


def pair_masks(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """B x B boolean masks of positive pairs (same label, diagonal excluded) and negative pairs."""
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    return same & ~eye, ~same


def positive_slots(pos_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Column indices of each anchor's positives as a B x S matrix padded with 0, and its B x S validity mask."""
    rows, cols = pos_mask.nonzero(as_tuple=True)
    rank = (pos_mask.cumsum(dim=1) - 1)[rows, cols]
    slots = int(pos_mask.sum(dim=1).max()) if len(pos_mask) else 0
    idx = torch.zeros(len(pos_mask), slots, dtype=torch.long, device=pos_mask.device)
    valid = torch.zeros(len(pos_mask), slots, dtype=torch.bool, device=pos_mask.device)
    idx[rows, rank] = cols
    valid[rows, rank] = True
    return idx, valid


def masked_max(x: torch.Tensor, mask: torch.Tensor, dim: int = 1, keepdim: bool = False) -> torch.Tensor:
    """Max of ``x`` over ``mask`` along ``dim``; -inf where the mask is empty."""
    return x.masked_fill(~mask, float("-inf")).amax(dim=dim, keepdim=keepdim)


def masked_min(x: torch.Tensor, mask: torch.Tensor, dim: int = 1, keepdim: bool = False) -> torch.Tensor:
    """Min of ``x`` over ``mask`` along ``dim``; +inf where the mask is empty."""
    return x.masked_fill(~mask, float("inf")).amin(dim=dim, keepdim=keepdim)


def masked_logsumexp(x: torch.Tensor, mask: torch.Tensor, add_one: bool = False) -> torch.Tensor:
    """Row-wise ``log(sum_mask exp(x))`` (``log(1 + sum ...)`` with ``add_one``); 0 for empty rows.

    Stable for any magnitude (``torch.logsumexp``); empty rows get finite dummy inputs so that
    neither value nor gradient is NaN.
    """
    empty = ~mask.any(dim=1, keepdim=True)
    out = torch.logsumexp(x.masked_fill(~mask, float("-inf")).masked_fill(empty, 0.0), dim=1)
    if add_one:
        out = torch.nn.functional.softplus(out)  # log(1 + e^lse)
    return out.masked_fill(empty.squeeze(1), 0.0)


def term_count(losses: torch.Tensor, mask: torch.Tensor, reduction: str) -> torch.Tensor:
    """Divisor of a masked loss sum: the terms with loss > 0 (``mean_nonzero``, PML's AvgNonZeroReducer)
    or all terms in ``mask`` (``mean``)."""
    if reduction == "mean_nonzero":
        return (losses > 0).sum()
    return mask.expand_as(losses).sum()


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; available: {choices}")


def mine_pairs(
    miner: PairMiner | None, labels: torch.Tensor, dist: torch.Tensor | None = None, sim: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(positive, negative) B x B masks of the pairs a pair loss uses: its miner's, or every pair without
    one. The miner sees the batch's distances: ``dist``, or ``1 - sim`` for a loss working on cosine
    similarities (computed only when there is a miner), detached."""
    if miner is None:
        return pair_masks(labels)
    if dist is None:
        if sim is None:
            raise ValueError("mine_pairs needs the batch's distances (dist) or similarities (sim)")
        dist = 1.0 - sim
    pairs = miner.mine(dist.detach(), labels)
    return pairs.positive, pairs.negative
