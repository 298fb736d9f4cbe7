"""Masks, miners and reductions on the B x B distance / similarity matrix, shared by the losses.

Everything is vectorised over anchors. Triplets are never materialised as a B x B x B tensor:
:func:`mine_triplets` yields them in chunks, one per *positive slot* (the k-th positive of every
anchor), each at most B x B. With S = the largest number of positives of any anchor (K - 1 for a
P x K batch), forward + backward keep O(S x B x B) floats alive (the autograd graph of each chunk),
i.e. B x K x B at most; each chunk's temporaries are O(B x B).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

SEMI_HARD_SELECTIONS = ("hardest", "all")
FALLBACKS = ("drop", "hardest", "easiest")
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


def batch_hard(
    dist: torch.Tensor, pos_mask: torch.Tensor, neg_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per anchor: index of the farthest positive, of the nearest negative, and whether both exist."""
    valid = pos_mask.any(dim=1) & neg_mask.any(dim=1)
    hardest_pos = dist.masked_fill(~pos_mask, float("-inf")).argmax(dim=1)
    hardest_neg = dist.masked_fill(~neg_mask, float("inf")).argmin(dim=1)
    return hardest_pos, hardest_neg, valid


def semi_hard_mask(dist: torch.Tensor, d_ap: torch.Tensor, neg_mask: torch.Tensor, margin: float) -> torch.Tensor:
    """B x B mask of the semi-hard negatives of the pairs (a, p) with distances ``d_ap`` (B x 1).

    FaceNet / pytorch-metric-learning ``TripletMarginMiner("semihard")``: 0 < d(a,n) - d(a,p) <= margin.
    """
    gap = dist.detach() - d_ap.detach()
    return neg_mask & (gap > 0) & (gap <= margin)


def multi_similarity_pairs(
    sim: torch.Tensor, pos_mask: torch.Tensor, neg_mask: torch.Tensor, epsilon: float = 0.1
) -> tuple[torch.Tensor, torch.Tensor]:
    """Multi-Similarity pair mining (Wang et al. 2019) on a similarity matrix.

    Keeps a positive if ``S_ap - epsilon < max_n S_an`` and a negative if ``S_an + epsilon > min_p S_ap``
    (anchors without negatives keep no positive and vice versa).
    """
    sim = sim.detach()
    hardest_neg = masked_max(sim, neg_mask, keepdim=True)
    hardest_pos = masked_min(sim, pos_mask, keepdim=True)
    return pos_mask & (sim - epsilon < hardest_neg), neg_mask & (sim + epsilon > hardest_pos)


def mine_triplets(
    dist: torch.Tensor,
    labels: torch.Tensor,
    mining: str,
    margin: float,
    semi_hard: str = "hardest",
    fallback: str = "drop",
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Yield chunks ``(d_ap, d_an, mask)`` whose broadcast lists the mined triplets where ``mask`` holds.

    ``batch_all``: every (a, p, n). ``semi_hard``: per (a, p) the negatives of :func:`semi_hard_mask`;
    ``semi_hard="hardest"`` keeps the nearest one (FaceNet), ``"all"`` keeps them all
    (pytorch-metric-learning). ``fallback`` for a pair with no semi-hard negative: ``"drop"`` the pair
    (pytorch-metric-learning), or use the anchor's ``"hardest"`` (nearest) or ``"easiest"`` (farthest)
    negative. (``batch_hard`` needs no matrix gradient: see :func:`batch_hard`.)
    """
    pos_mask, neg_mask = pair_masks(labels)
    idx, slot_valid = positive_slots(pos_mask)
    has_neg = neg_mask.any(dim=1, keepdim=True)
    if fallback == "hardest":
        fallback_an = masked_min(dist, neg_mask, keepdim=True)
    elif fallback == "easiest":
        fallback_an = masked_max(dist, neg_mask, keepdim=True)
    for k in range(idx.shape[1]):
        d_ap = dist.gather(1, idx[:, k, None])
        anchors = slot_valid[:, k, None]
        if mining == "batch_all":
            yield d_ap, dist, anchors & neg_mask
            continue
        candidates = anchors & semi_hard_mask(dist, d_ap, neg_mask, margin)
        found = candidates.any(dim=1, keepdim=True)
        if semi_hard == "all":
            yield d_ap, dist, candidates
            if fallback != "drop":
                yield d_ap, fallback_an, anchors & has_neg & ~found
        elif fallback == "drop":
            yield d_ap, masked_min(dist, candidates, keepdim=True), found
        else:
            nearest = masked_min(dist, candidates, keepdim=True)
            yield d_ap, torch.where(found, nearest, fallback_an), anchors & has_neg


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
