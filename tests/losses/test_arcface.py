from __future__ import annotations

import math

import pytest
import torch

from facemetric.losses import build_loss, loss_needs_classes


def _head(scale: float = 10.0, margin: float = 0.5):
    loss = build_loss("arcface", num_classes=2, embedding_dim=2, scale=scale, margin=margin)
    with torch.no_grad():
        loss.weight.copy_(torch.eye(2))
    return loss


def test_hand_computed_margin() -> None:
    loss = _head()
    x = torch.tensor([[1.0, 1.0]])  # 45 degrees from both class centres
    logits = loss.logits(x, torch.tensor([0]))
    target = math.cos(math.pi / 4 + 0.5)
    assert logits[0].tolist() == pytest.approx([10 * target, 10 * math.cos(math.pi / 4)], abs=1e-5)
    expected = -math.log(math.exp(10 * target) / (math.exp(10 * target) + math.exp(10 * math.cos(math.pi / 4))))
    assert loss(x, torch.tensor([0])).item() == pytest.approx(expected, abs=1e-5)
    assert loss_needs_classes("arcface") and not loss_needs_classes("triplet")


def test_fallback_beyond_pi_keeps_logit_decreasing() -> None:
    loss = _head(scale=1.0, margin=0.5)
    thetas = torch.linspace(2.4, math.pi - 1e-3, 50)  # theta + m passes pi at 2.64
    x = torch.stack([torch.cos(thetas), torch.sin(thetas)], dim=1)
    target = loss.logits(x, torch.zeros(50, dtype=torch.long))[:, 0]
    assert (target[1:] < target[:-1]).all()  # monotonic: farther from the class, lower logit
    beyond = thetas + 0.5 > math.pi
    expected = torch.cos(thetas[beyond]) - 0.5 * math.sin(0.5)
    assert torch.allclose(target[beyond], expected, atol=1e-5)


def test_gradcheck_and_extremes() -> None:
    torch.manual_seed(0)
    loss = build_loss("arcface", num_classes=5, embedding_dim=4, scale=16.0).double()
    x = torch.randn(7, 4, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 5, (7,))
    assert torch.autograd.gradcheck(lambda t: loss(t, y), (x,))
    # embeddings exactly on (and opposite to) the class centre: finite value and gradient
    loss32 = build_loss("arcface", num_classes=5, embedding_dim=4, scale=64.0)
    x = torch.cat([loss32.weight.detach()[:2], -loss32.weight.detach()[2:4]]).requires_grad_(True)
    out = loss32(x, torch.tensor([0, 1, 2, 3]))
    out.backward()
    assert torch.isfinite(out) and torch.isfinite(x.grad).all()


def test_arcface_under_bfloat16_autocast() -> None:
    torch.manual_seed(0)
    loss = build_loss("arcface", num_classes=10, embedding_dim=16, scale=64.0)
    lin = torch.nn.Linear(8, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = loss(lin(torch.randn(32, 8)), torch.randint(0, 10, (32,)))
    out.backward()
    assert out.dtype == torch.float32 and torch.isfinite(out) and torch.isfinite(lin.weight.grad).all()
