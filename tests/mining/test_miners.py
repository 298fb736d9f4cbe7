from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from pytorch_metric_learning.miners import MultiSimilarityMiner

from facemetric.mining.distances import cosine_similarity, pairwise_distance
from facemetric.mining.miners import (
    batch_hard,
    check_choice,
    masked_logsumexp,
    mine_triplets,
    multi_similarity_pairs,
    pair_masks,
    positive_slots,
    semi_hard_mask,
)

LABELS = torch.tensor([0, 1, 0, 0, 1, 2])


def _batch(seed: int, p: int = 6, k: int = 4, d: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(p).repeat_interleave(k)
    return F.normalize(torch.randn(p * k, d, generator=g, dtype=torch.float64), dim=1), y[torch.randperm(p * k, generator=g)]


def test_pair_masks_and_positive_slots() -> None:
    pos, neg = pair_masks(LABELS)
    assert not pos.diagonal().any() and not neg.diagonal().any()
    assert pos.sum() == 3 * 2 + 2 * 1 and neg.sum() == 36 - 6 - 8
    idx, valid = positive_slots(pos)
    assert idx.shape == (6, 2)
    for a in range(6):
        assert set(idx[a][valid[a]].tolist()) == set(pos[a].nonzero().flatten().tolist())
    assert valid.sum(dim=1).tolist() == [2, 1, 2, 2, 1, 0]


def test_batch_hard_matches_brute_force() -> None:
    x, y = _batch(0)
    dist = pairwise_distance(x)
    hp, hn, valid = batch_hard(dist, *pair_masks(y))
    assert valid.all()
    for a in range(len(y)):
        assert dist[a, hp[a]] == max(dist[a, p] for p in range(len(y)) if p != a and y[p] == y[a])
        assert dist[a, hn[a]] == min(dist[a, n] for n in range(len(y)) if y[n] != y[a])
    assert not batch_hard(dist[:3, :3], *pair_masks(torch.tensor([0, 1, 2])))[2].any()


def test_semi_hard_window() -> None:
    dist = torch.tensor([[0.0, 1.0, 1.5, 2.0, 0.9], [1.0, 0.0, 1.0, 1.0, 1.0]])[:, :5]
    neg = torch.tensor([[False, False, True, True, True], [False] * 5])
    # d_ap = 1, margin 0.5: window (1, 1.5] keeps column 2 (1.5), not 3 (2.0) nor 4 (0.9 < d_ap)
    mask = semi_hard_mask(dist, torch.ones(2, 1), neg, 0.5)
    assert mask.tolist() == [[False, False, True, False, False], [False] * 5]


def _semi_hard_reference(dist: torch.Tensor, y: torch.Tensor, margin: float, fallback: str) -> list[tuple]:
    """FaceNet by loops: per (a, p) the nearest n with 0 < d_an - d_ap <= margin, else the fallback."""
    out = []
    for a, p in itertools.permutations(range(len(y)), 2):
        if y[a] != y[p]:
            continue
        negs = [n for n in range(len(y)) if y[n] != y[a]]
        window = [n for n in negs if 0 < dist[a, n] - dist[a, p] <= margin]
        if window:
            out.append((a, float(dist[a, p]), float(min(dist[a, n] for n in window))))
        elif fallback != "drop" and negs:
            pick = min if fallback == "hardest" else max
            out.append((a, float(dist[a, p]), float(pick(dist[a, n] for n in negs))))
    return sorted(out)


def _mined(dist: torch.Tensor, y: torch.Tensor, **kw) -> list[tuple]:
    out = []
    for d_ap, d_an, mask in mine_triplets(dist, y, **kw):
        d_ap, d_an = torch.broadcast_tensors(d_ap, d_an)
        mask = mask.expand_as(d_ap)
        for a, j in mask.nonzero().tolist():
            out.append((a, float(d_ap[a, j]), float(d_an[a, j])))
    return sorted(out)


@pytest.mark.parametrize("fallback", ["drop", "hardest", "easiest"])
def test_semi_hard_hardest_matches_facenet_loops(fallback: str) -> None:
    x, y = _batch(1)
    dist = pairwise_distance(x)
    got = _mined(dist, y, mining="semi_hard", margin=0.2, semi_hard="hardest", fallback=fallback)
    assert got == _semi_hard_reference(dist, y, 0.2, fallback)


def test_batch_all_enumerates_every_triplet_in_bxb_chunks() -> None:
    x, y = _batch(2, p=5, k=3)
    dist = pairwise_distance(x)
    chunks = list(mine_triplets(dist, y, mining="batch_all", margin=0.2))
    assert len(chunks) == 2 and all(torch.broadcast_shapes(*(c.shape for c in ch)) == dist.shape for ch in chunks)
    got = sorted(t for t in _mined(dist, y, mining="batch_all", margin=0.2))
    ref = sorted(
        (a, float(dist[a, p]), float(dist[a, n]))
        for a, p, n in itertools.product(range(len(y)), repeat=3)
        if a != p and y[a] == y[p] and y[n] != y[a]
    )
    assert got == ref


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_multi_similarity_pairs_match_pml(seed: int) -> None:
    x, y = _batch(seed)
    pos, neg = multi_similarity_pairs(cosine_similarity(x), *pair_masks(y), epsilon=0.1)
    a1, p, a2, n = MultiSimilarityMiner(epsilon=0.1)(x, y)
    assert set(zip(a1.tolist(), p.tolist())) == set(map(tuple, pos.nonzero().tolist()))
    assert set(zip(a2.tolist(), n.tolist())) == set(map(tuple, neg.nonzero().tolist()))


def test_masked_logsumexp_empty_rows_and_large_values() -> None:
    x = torch.tensor([[1000.0, 1000.0, -5.0], [1.0, 2.0, 3.0]], requires_grad=True)
    mask = torch.tensor([[True, True, False], [False, False, False]])
    out = masked_logsumexp(x, mask)
    # row 0: 1000 + log 2; row 1: empty -> 0
    assert torch.allclose(out, torch.tensor([1000.0 + torch.log(torch.tensor(2.0)), 0.0]))
    assert masked_logsumexp(x, mask, add_one=True)[1] == 0.0
    out.sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad[1].abs().sum() == 0 and x.grad[0, 2] == 0


def test_float32_under_bfloat16_autocast() -> None:
    x = torch.randn(6, 4, dtype=torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert pairwise_distance(x).dtype == torch.float32
        assert cosine_similarity(x).dtype == torch.float32
    assert pairwise_distance(x.double(), "cosine").dtype == torch.float64


def test_normalize_and_unknown_choice() -> None:
    x = torch.randn(5, 3, dtype=torch.float64) * 3
    n = F.normalize(x, dim=1)
    assert torch.allclose(pairwise_distance(x, normalize=True), torch.cdist(n, n), atol=1e-7)
    with pytest.raises(ValueError, match="unknown fallback"):
        check_choice("fallback", "random", ("drop",))
    with pytest.raises(ValueError, match="unknown distance"):
        pairwise_distance(x, "manhattan")
