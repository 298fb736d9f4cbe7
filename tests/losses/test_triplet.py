from __future__ import annotations

import math

import pytest
import torch
from pk_batches import pk_batch as _batch
from pk_batches import triplet
from pytorch_metric_learning.distances import CosineSimilarity, LpDistance
from pytorch_metric_learning.losses import TripletMarginLoss
from pytorch_metric_learning.miners import BatchHardMiner, TripletMarginMiner

from facemetric.losses import build_loss
from facemetric.ops.distances import pairwise_distance

SQRT5 = math.sqrt(5)
# 4 points on a line-ish layout; d01 = d23 = 1, d02 = 3, d03 = sqrt(10), d12 = 2, d13 = sqrt(5)
POINTS = torch.tensor([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0], [3.0, 1.0]])
LABELS = torch.tensor([0, 0, 1, 1])


def _brute_force(x: torch.Tensor, y: torch.Tensor, margin: float, soft: bool) -> torch.Tensor:
    """Reference: loop over anchors, farthest positive vs nearest negative."""
    losses = []
    for a in range(len(x)):
        pos = [torch.dist(x[a], x[p]) for p in range(len(x)) if p != a and y[p] == y[a]]
        neg = [torch.dist(x[a], x[n]) for n in range(len(x)) if y[n] != y[a]]
        if pos and neg:
            gap = torch.stack(pos).max() - torch.stack(neg).min()
            losses.append(torch.nn.functional.softplus(gap) if soft else torch.relu(gap + margin))
    return torch.stack(losses).mean()


def test_hand_computed() -> None:
    x, y = POINTS, LABELS
    # hardest positive is always 1; hardest negatives 3, 2, 2, sqrt(5)
    expected = (0 + 0.5 + 0.5 + (1 - SQRT5 + 1.5)) / 4
    assert triplet(margin=1.5)(x, y).item() == pytest.approx(expected, abs=1e-6)
    assert triplet(margin=0.5)(x, y).item() == 0.0


def test_hand_computed_batch_all_and_semi_hard() -> None:
    x, y = POINTS, LABELS
    # margin 1.5, d_ap = 1 for every pair; the 8 triplets relu(1 - d_an + 1.5):
    # a0: n=2,3 -> 0, 0; a1: n=2 -> 0.5, n=3 -> 2.5 - sqrt5; a2: n=0 -> 0, n=1 -> 0.5; a3: n=0 -> 0, n=1 -> 2.5 - sqrt5
    nonzero = [0.5, 2.5 - SQRT5, 0.5, 2.5 - SQRT5]
    loss = triplet(margin=1.5, mining="batch_all")
    assert loss(x, y).item() == pytest.approx(sum(nonzero) / 4, abs=1e-6)
    assert triplet(margin=1.5, mining="batch_all", reduction="mean")(x, y).item() == pytest.approx(
        sum(nonzero) / 8, abs=1e-6
    )
    # semi-hard window 1 < d_an <= 2.5: a0 has none (dropped); a1 -> {2, sqrt5}; a2 -> {2}; a3 -> {sqrt5}
    hardest = [0.5, 0.5, 2.5 - SQRT5]  # a1 keeps its nearest (d=2)
    semi = triplet(margin=1.5, mining="semi_hard")
    assert semi(x, y).item() == pytest.approx(sum(hardest) / 3, abs=1e-6)
    assert triplet(margin=1.5, mining="semi_hard", semi_hard="all")(x, y).item() == pytest.approx(
        sum(nonzero) / 4, abs=1e-6
    )
    # fallback: a0 gets its nearest (d=3) or farthest (sqrt10) negative, loss 0 either way, counted by "mean"
    for fallback in ("hardest", "easiest"):
        kw = dict(margin=1.5, mining="semi_hard", fallback=fallback, reduction="mean")
        assert triplet(**kw)(x, y).item() == pytest.approx(sum(hardest) / 4, abs=1e-6)


@pytest.mark.parametrize("soft", [False, True])
def test_matches_brute_force_and_gradcheck(soft: bool) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(12, 5, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.arange(4).repeat_interleave(3)
    loss = triplet(margin=0.3, soft_margin=soft)
    assert loss(x, y).item() == pytest.approx(_brute_force(x, y, 0.3, soft).item(), rel=1e-10)
    assert torch.autograd.gradcheck(lambda t: loss(t, y), (x,))


@pytest.mark.parametrize(
    "cfg",
    [
        dict(mining="batch_all"),
        dict(mining="batch_all", distance="squared_euclidean", reduction="mean", soft_margin=True),
        dict(mining="semi_hard", margin=0.5),
        dict(mining="semi_hard", margin=0.5, semi_hard="all", fallback="hardest"),
        dict(mining="semi_hard", margin=0.5, semi_hard="all"),  # the weighted-sum fast path
        dict(mining="batch_all", distance="cosine", reduction="mean", margin=0.5),
        dict(mining="semi_hard", margin=0.5, fallback="easiest", distance="cosine"),
        dict(mining="batch_hard", distance="cosine", normalize_embeddings=True),
    ],
)
def test_gradcheck(cfg: dict) -> None:
    x, y = _batch(3, p=4, k=3, d=5)
    x = (x * 1.5).requires_grad_(True)
    loss = triplet(**cfg)
    assert torch.autograd.gradcheck(lambda t: loss(t, y), (x,))


LP = LpDistance(normalize_embeddings=False)
PML_CASES = {
    "batch_hard": (dict(mining="batch_hard", reduction="mean_nonzero"), BatchHardMiner(distance=LP), LP),
    "batch_all": (dict(mining="batch_all"), None, LP),
    "batch_all_miner": (dict(mining="batch_all"), TripletMarginMiner(0.2, type_of_triplets="all", distance=LP), LP),
    "semi_hard": (
        dict(mining="semi_hard", semi_hard="all"),
        TripletMarginMiner(0.2, type_of_triplets="semihard", distance=LP),
        LP,
    ),
    "batch_all_cosine": (dict(mining="batch_all", distance="cosine"), None, CosineSimilarity()),
}


def _assert_same_as_pml(ours, pml, miner, x: torch.Tensor, y: torch.Tensor, tol: float = 1e-5) -> None:
    x1, x2 = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    a = ours(x1, y)
    b = pml(x2, y, miner(x2, y)) if miner else pml(x2, y)
    a.backward(), b.backward()
    assert a.item() == pytest.approx(b.item(), abs=tol)
    assert torch.allclose(x1.grad, x2.grad, atol=tol)


@pytest.mark.parametrize("case", PML_CASES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_matches_pml(case: str, dtype: torch.dtype) -> None:
    cfg, miner, distance = PML_CASES[case]
    for seed in range(3):
        x, y = _batch(seed, dtype)
        _assert_same_as_pml(triplet(margin=0.2, **cfg), TripletMarginLoss(0.2, distance=distance), miner, x, y)


def test_differences_from_pml_are_parameters() -> None:
    x, y = _batch(5)
    x = x * torch.linspace(0.5, 2.0, len(x), dtype=x.dtype)[:, None]  # not unit norm
    # PML's LpDistance L2-normalises by default; ours only with normalize_embeddings=True
    _assert_same_as_pml(triplet(mining="batch_all", normalize_embeddings=True), TripletMarginLoss(0.2), None, x, y)
    ours, pml = triplet(mining="batch_all")(x, y), TripletMarginLoss(0.2)(x, y)
    assert abs(ours.item() - pml.item()) > 1e-3
    # soft margin: Hermans' softplus(d_ap - d_an) is PML's smooth_loss with margin 0
    soft = triplet(mining="batch_all", soft_margin=True, margin=0.7)
    _assert_same_as_pml(soft, TripletMarginLoss(0.0, smooth_loss=True, distance=LP), None, x, y)
    # batch-hard default reduction is Hermans' mean over anchors, PML (BatchHardMiner) averages the non-zero ones:
    # on POINTS with margin 1.5 the anchor losses are 0, 0.5, 0.5, 2.5 - sqrt5
    nz = triplet(margin=1.5, reduction="mean_nonzero")(POINTS, LABELS)
    assert nz.item() == pytest.approx((3.5 - SQRT5) / 3, abs=1e-6)


@pytest.mark.parametrize("mining", ["batch_all", "batch_hard", "semi_hard"])
def test_finite_float32_and_bfloat16_autocast(mining: str) -> None:
    x, y = _batch(0, torch.float32, p=16, k=4, d=32)
    collapsed = torch.ones_like(x) / math.sqrt(x.shape[1])  # all distances 0
    for emb in (x, collapsed, x.bfloat16()):
        for autocast in (False, True):
            e = emb.clone().requires_grad_(True)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                out = triplet(mining=mining, fallback="hardest")(e, y)
            out.backward()
            assert out.dtype == torch.float32 and torch.isfinite(out) and torch.isfinite(e.grad).all()


def test_no_valid_triplet_gives_zero_with_graph() -> None:
    for mining in ("batch_hard", "batch_all", "semi_hard"):
        x = torch.randn(3, 4, requires_grad=True)
        out = triplet(mining=mining)(x, torch.tensor([0, 1, 2]))
        out.backward()
        assert out.item() == 0.0 and x.grad is not None


def test_distance_matrix_and_finite_gradient_at_zero() -> None:
    x = torch.randn(6, 3, dtype=torch.float64)
    x[1] = x[0]  # duplicate point: distance exactly 0 off the diagonal too
    x.requires_grad_(True)
    d = pairwise_distance(x, "euclidean")
    assert torch.allclose(d, torch.cdist(x, x), atol=1e-7)
    d.sum().backward()
    assert torch.isfinite(x.grad).all()
    assert torch.allclose(pairwise_distance(x, "squared_euclidean"), torch.cdist(x, x) ** 2, atol=1e-7)
    n = torch.nn.functional.normalize(x, dim=1)
    assert torch.allclose(pairwise_distance(x, "cosine"), 1 - n @ n.T)


def test_unknown_settings() -> None:
    from facemetric.core.errors import ConfigError
    from facemetric.miners import build_miner

    with pytest.raises(KeyError, match="unknown miner 'random'"):
        triplet(mining="random")
    with pytest.raises(ValueError, match="unknown fallback"):
        triplet(mining="semi_hard", fallback="random")
    with pytest.raises(KeyError, match="available"):
        build_loss("nope")
    with pytest.raises(ConfigError, match="needs a triplet miner, got AllPairsMiner"):
        build_loss("triplet", miner=build_miner("all_pairs"))


def test_default_miner_is_batch_hard() -> None:
    from facemetric.miners.batch_hard import BatchHardMiner

    loss = build_loss("triplet", margin=1.5)
    assert isinstance(loss.miner, BatchHardMiner) and loss.resolved_reduction() == "mean"
    assert loss(POINTS, LABELS).item() == triplet(margin=1.5)(POINTS, LABELS).item()
