from __future__ import annotations

import math

import pytest
import torch
from pk_batches import pk_batch as _batch
from pytorch_metric_learning.distances import LpDistance
from pytorch_metric_learning.losses import ContrastiveLoss

from facemetric.losses import build_loss


def test_hand_computed() -> None:
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0], [3.0, 1.0]])
    y = torch.tensor([0, 0, 1, 1])
    # positives (0,1), (2,3) both orders, d = 1: relu(1 - 0.5) = 0.5 each -> mean 0.5
    # negatives d = 3, sqrt10, 2, sqrt5, each twice: relu(2.5 - d) = 0, 0, 0.5, 2.5 - sqrt5
    neg = [0.5, 2.5 - math.sqrt(5)]
    loss = build_loss("contrastive", pos_margin=0.5, neg_margin=2.5)
    assert loss(x, y).item() == pytest.approx(0.5 + sum(neg) / 2, abs=1e-6)
    mean = build_loss("contrastive", pos_margin=0.5, neg_margin=2.5, reduction="mean")
    assert mean(x, y).item() == pytest.approx(0.5 + 2 * sum(neg) / 8, abs=1e-6)


def test_gradcheck() -> None:
    x, y = _batch(0, p=4, k=3, d=5)
    x = (x * 1.3).requires_grad_(True)
    for cfg in (dict(), dict(distance="squared_euclidean", reduction="mean", pos_margin=0.1)):
        loss = build_loss("contrastive", neg_margin=1.5, **cfg)
        assert torch.autograd.gradcheck(lambda t, loss=loss: loss(t, y), (x,))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("margins", [(0.0, 1.0), (0.3, 1.2)])
def test_matches_pml(dtype: torch.dtype, margins: tuple[float, float]) -> None:
    for seed in range(3):
        x, y = _batch(seed, dtype)
        x1, x2 = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
        a = build_loss("contrastive", pos_margin=margins[0], neg_margin=margins[1])(x1, y)
        b = ContrastiveLoss(*margins, distance=LpDistance(normalize_embeddings=False))(x2, y)
        a.backward(), b.backward()
        assert a.item() == pytest.approx(b.item(), abs=1e-5)
        assert torch.allclose(x1.grad, x2.grad, atol=1e-5)


def test_normalize_embeddings_matches_pml_default() -> None:
    x, y = _batch(4)
    x = (x * torch.linspace(0.5, 2.0, len(x), dtype=x.dtype)[:, None]).requires_grad_(True)
    x2 = x.detach().clone().requires_grad_(True)
    a, b = build_loss("contrastive", normalize_embeddings=True)(x, y), ContrastiveLoss()(x2, y)
    a.backward(), b.backward()
    assert a.item() == pytest.approx(b.item(), abs=1e-10) and torch.allclose(x.grad, x2.grad, atol=1e-10)


def test_finite_float32_and_bfloat16_autocast() -> None:
    x, y = _batch(0, torch.float32, p=16, k=4, d=32)
    for emb in (x, torch.ones_like(x), x.bfloat16()):
        for autocast in (False, True):
            e = emb.clone().requires_grad_(True)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                out = build_loss("contrastive")(e, y)
            out.backward()
            assert out.dtype == torch.float32 and torch.isfinite(out) and torch.isfinite(e.grad).all()
