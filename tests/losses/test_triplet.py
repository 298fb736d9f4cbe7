from __future__ import annotations

import math

import pytest
import torch

from facemetric.losses import build_loss
from facemetric.mining.distances import pairwise_distance


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
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0], [3.0, 1.0]])
    y = torch.tensor([0, 0, 1, 1])
    # hardest positive is always 1; hardest negatives 3, 2, 2, sqrt(5)
    expected = (0 + 0.5 + 0.5 + (1 - math.sqrt(5) + 1.5)) / 4
    assert build_loss("triplet", margin=1.5)(x, y).item() == pytest.approx(expected, abs=1e-6)
    assert build_loss("triplet", margin=0.5)(x, y).item() == 0.0


@pytest.mark.parametrize("soft", [False, True])
def test_matches_brute_force_and_gradcheck(soft: bool) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(12, 5, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.arange(4).repeat_interleave(3)
    loss = build_loss("triplet", margin=0.3, soft_margin=soft)
    assert loss(x, y).item() == pytest.approx(_brute_force(x, y, 0.3, soft).item(), rel=1e-10)
    assert torch.autograd.gradcheck(lambda t: loss(t, y), (x,))


def test_no_valid_triplet_gives_zero_with_graph() -> None:
    x = torch.randn(3, 4, requires_grad=True)
    out = build_loss("triplet")(x, torch.tensor([0, 1, 2]))
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
    with pytest.raises(ValueError, match="unknown mining"):
        build_loss("triplet", mining="random")
    with pytest.raises(KeyError, match="available"):
        build_loss("nope")
