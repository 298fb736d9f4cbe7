from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from pytorch_metric_learning.miners import MultiSimilarityMiner

from facemetric.core.mining import Triplets
from facemetric.miners import MINERS, build_miner
from facemetric.miners.all_triplets import AllTripletsMiner
from facemetric.miners.batch_hard import BatchHardMiner, batch_hard
from facemetric.miners.multi_similarity import MultiSimilarityMiner as OurMultiSimilarityMiner
from facemetric.miners.semi_hard import SemiHardMiner, semi_hard_mask
from facemetric.ops.distances import cosine_similarity, pairwise_distance
from facemetric.ops.masks import check_choice, masked_logsumexp, pair_masks, positive_slots

LABELS = torch.tensor([0, 1, 0, 0, 1, 2])


def _batch(seed: int, p: int = 6, k: int = 4, d: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(p).repeat_interleave(k)
    return F.normalize(torch.randn(p * k, d, generator=g, dtype=torch.float64), dim=1), y[
        torch.randperm(p * k, generator=g)
    ]


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


def _triplets(t: Triplets) -> list[tuple[int, int, int]]:
    """(a, p, n) of either form of mined triplets."""
    if t.sparse:
        return list(zip(t.anchors.tolist(), t.positives.tolist(), t.negatives.tolist()))
    out = []
    for k in range(t.positive_index.shape[1]):
        for a, n in t.negative_masks[k].nonzero().tolist():
            out.append((a, int(t.positive_index[a, k]), n))
    return out


def _mined(dist: torch.Tensor, t: Triplets) -> list[tuple]:
    return sorted((a, float(dist[a, p]), float(dist[a, n])) for a, p, n in _triplets(t))


@pytest.mark.parametrize("fallback", ["drop", "hardest", "easiest"])
def test_semi_hard_hardest_matches_facenet_loops(fallback: str) -> None:
    x, y = _batch(1)
    dist = pairwise_distance(x)
    miner = SemiHardMiner(selection="hardest", fallback=fallback)
    assert miner.sparse
    assert _mined(dist, miner.mine(dist, y, margin=0.2)) == _semi_hard_reference(dist, y, 0.2, fallback)
    assert _mined(dist, SemiHardMiner(fallback=fallback, margin=0.2).mine(dist, y, margin=9.0)) == _semi_hard_reference(
        dist, y, 0.2, fallback
    )  # its own margin wins over the loss's


@pytest.mark.parametrize("fallback", ["drop", "hardest", "easiest"])
def test_semi_hard_all_keeps_every_window_negative(fallback: str) -> None:
    x, y = _batch(3)
    dist = pairwise_distance(x)
    got = set(_triplets(SemiHardMiner(selection="all", fallback=fallback).mine(dist, y, margin=0.2)))
    ref = set()
    for a, p in itertools.permutations(range(len(y)), 2):
        if y[a] != y[p]:
            continue
        negs = [n for n in range(len(y)) if y[n] != y[a]]
        window = {(a, p, n) for n in negs if 0 < dist[a, n] - dist[a, p] <= 0.2}
        if not window and fallback != "drop":
            pick = min if fallback == "hardest" else max
            window = {(a, p, pick(negs, key=lambda n: float(dist[a, n])))}
        ref |= window
    assert got == ref


def test_batch_hard_miner_picks_one_triplet_per_anchor() -> None:
    x, y = _batch(4)
    dist = pairwise_distance(x)
    got = _triplets(BatchHardMiner().mine(dist, y, margin=0.2))
    assert sorted(a for a, _, _ in got) == list(range(len(y)))
    for a, p, n in got:
        assert dist[a, p] == max(dist[a, q] for q in range(len(y)) if q != a and y[q] == y[a])
        assert dist[a, n] == min(dist[a, m] for m in range(len(y)) if y[m] != y[a])


def test_batch_all_enumerates_every_triplet_in_bxb_slot_masks() -> None:
    x, y = _batch(2, p=5, k=3)
    dist = pairwise_distance(x)
    t = AllTripletsMiner().mine(dist, y, margin=0.2)
    assert t.negative_masks.shape == (2, *dist.shape)  # K - 1 slots of B x B: never B x B x B
    got = _mined(dist, t)
    ref = sorted(
        (a, float(dist[a, p]), float(dist[a, n]))
        for a, p, n in itertools.product(range(len(y)), repeat=3)
        if a != p and y[a] == y[p] and y[n] != y[a]
    )
    assert got == ref


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_multi_similarity_pairs_match_pml(seed: int) -> None:
    x, y = _batch(seed)
    pairs = OurMultiSimilarityMiner(epsilon=0.1).mine(1.0 - cosine_similarity(x), y)
    pos, neg = pairs.positive, pairs.negative
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


def test_registry_builds_by_name_and_checks_options() -> None:
    from facemetric.core.errors import ConfigError, UnknownNameError

    assert {"batch_hard", "batch_all", "semi_hard", "multi_similarity", "all_pairs"} <= set(MINERS.names())
    assert isinstance(build_miner("semi_hard", fallback="hardest"), SemiHardMiner)
    with pytest.raises(
        ConfigError, match="miner 'semi_hard' has no option 'fallbak'; its options: selection, fallback"
    ):
        build_miner("semi_hard", fallbak="hardest")
    with pytest.raises(ConfigError, match="unknown fallback"):
        build_miner("semi_hard", fallback="random")
    with pytest.raises(UnknownNameError, match="unknown miner 'nope'; available: all_pairs"):
        build_miner("nope")
