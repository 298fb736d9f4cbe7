from __future__ import annotations

import math

import pytest
import torch
from pk_batches import TINY, TINY_LABELS
from pk_batches import pk_batch as _batch
from pytorch_metric_learning.losses import SupConLoss

from facemetric.losses import build_loss


def test_hand_computed() -> None:
    # T = 0.5, logits s / T. Anchor 0: positive 0, negative 2 -> -log(e^0 / (e^0 + e^2)) = log(1 + e^2)
    # anchor 1: positive 0, negative 0 -> log 2; anchor 2 has no positive: excluded
    expected = (math.log(1 + math.exp(2)) + math.log(2)) / 2
    assert build_loss("supcon", temperature=0.5)(TINY, TINY_LABELS).item() == pytest.approx(expected, abs=1e-6)


def test_gradcheck() -> None:
    x, y = _batch(0, p=4, k=3, d=5)
    loss = build_loss("supcon", temperature=0.5)
    assert torch.autograd.gradcheck(lambda t: loss(t, y), ((x * 1.3).requires_grad_(True),))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("temperature", [0.1, 0.05])
def test_matches_pml(dtype: torch.dtype, temperature: float) -> None:
    for seed in range(3):
        x, y = _batch(seed, dtype)
        x1, x2 = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
        a, b = build_loss("supcon", temperature=temperature)(x1, y), SupConLoss(temperature)(x2, y)
        a.backward(), b.backward()
        assert a.item() == pytest.approx(b.item(), abs=1e-5)
        assert torch.allclose(x1.grad, x2.grad, atol=1e-5)


def test_finite_float32_and_bfloat16_autocast() -> None:
    x, y = _batch(0, torch.float32, p=16, k=4, d=32)
    for emb in (x, torch.ones_like(x), x.bfloat16()):
        for autocast in (False, True):
            e = emb.clone().requires_grad_(True)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                out = build_loss("supcon", temperature=0.01)(e, y)
            out.backward()
            assert out.dtype == torch.float32 and torch.isfinite(out) and torch.isfinite(e.grad).all()


def test_single_class_batch_gives_zero() -> None:
    x = torch.randn(4, 3, requires_grad=True)
    out = build_loss("supcon")(x, torch.zeros(4, dtype=torch.long))
    out.backward()
    assert out.item() == 0.0 and torch.isfinite(x.grad).all()
