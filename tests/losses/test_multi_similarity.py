from __future__ import annotations

import math

import pytest
import torch
from pk_batches import TINY, TINY_LABELS, multi_similarity
from pk_batches import pk_batch as _batch
from pytorch_metric_learning.losses import MultiSimilarityLoss
from pytorch_metric_learning.miners import MultiSimilarityMiner

from facemetric.losses import build_loss


def test_hand_computed() -> None:
    # alpha 2, beta 50, base 0.5; positive term log(1 + e^{-2 (s - 0.5)}) / 2,
    # negative term log(1 + sum e^{50 (s - 0.5)}) / 50
    pos = math.log(1 + math.e) / 2  # s01 = 0
    a0 = pos + math.log(1 + math.exp(25)) / 50  # negative s02 = 1
    a1 = pos + math.log(1 + math.exp(-25)) / 50  # negative s12 = 0
    a2 = math.log(1 + math.exp(25) + math.exp(-25)) / 50  # no positive; negatives s20 = 1, s21 = 0
    no_mining = multi_similarity(mining=False)(TINY, TINY_LABELS)
    assert no_mining.item() == pytest.approx((a0 + a1 + a2) / 3, abs=1e-6)
    # mining (epsilon 0.1): anchor 2 has no positive, so none of its negatives is kept -> 0
    mined = multi_similarity()(TINY, TINY_LABELS)
    assert mined.item() == pytest.approx((a0 + a1) / 3, abs=1e-6)
    assert build_loss("multi_similarity")(TINY, TINY_LABELS).item() == mined.item()  # its default miner


@pytest.mark.parametrize("mining", [False, True])
def test_gradcheck(mining: bool) -> None:
    x, y = _batch(0, p=4, k=3, d=5)
    loss = multi_similarity(beta=10.0, mining=mining, epsilon=0.5)
    assert torch.autograd.gradcheck(lambda t: loss(t, y), ((x * 1.3).requires_grad_(True),))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("mining", [False, True])
def test_matches_pml(dtype: torch.dtype, mining: bool) -> None:
    for seed in range(3):
        x, y = _batch(seed, dtype)
        x1, x2 = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
        a = multi_similarity(mining=mining)(x1, y)
        pml = MultiSimilarityLoss(alpha=2, beta=50, base=0.5)
        b = pml(x2, y, MultiSimilarityMiner(0.1)(x2, y)) if mining else pml(x2, y)
        a.backward(), b.backward()
        assert a.item() == pytest.approx(b.item(), abs=1e-5)
        assert torch.allclose(x1.grad, x2.grad, atol=1e-5)


@pytest.mark.parametrize("mining", [False, True])
def test_finite_float32_and_bfloat16_autocast(mining: bool) -> None:
    x, y = _batch(0, torch.float32, p=16, k=4, d=32)
    for emb in (x, torch.ones_like(x), x.bfloat16()):
        for autocast in (False, True):
            e = emb.clone().requires_grad_(True)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                out = multi_similarity(mining=mining, beta=200.0)(e, y)
            out.backward()
            assert out.dtype == torch.float32 and torch.isfinite(out) and torch.isfinite(e.grad).all()
