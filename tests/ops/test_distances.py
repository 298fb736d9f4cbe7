"""Distance matrices and their one-matmul backward against plain autograd and torch.cdist."""

from __future__ import annotations

import pytest
import torch

from facemetric.ops.distances import pairwise_distance
from facemetric.ops.gram import self_euclidean, self_gram
from facemetric.ops.normalize import normalize_rows


def _batch(dtype: torch.dtype = torch.float64) -> torch.Tensor:
    g = torch.Generator().manual_seed(3)
    x = torch.randn(9, 5, generator=g, dtype=dtype)
    x[4] = x[1]  # a duplicate row: an off-diagonal zero distance
    return x


def test_hand_computed_distances() -> None:
    x = torch.tensor([[0.0, 0.0], [3.0, 4.0], [1.0, 0.0]])
    want = torch.tensor([[0.0, 5.0, 1.0], [5.0, 0.0, 20.0**0.5], [1.0, 20.0**0.5, 0.0]])
    assert torch.allclose(pairwise_distance(x), want, atol=1e-6)
    assert torch.allclose(pairwise_distance(x, "squared_euclidean"), want**2, atol=1e-5)
    cos = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    assert torch.allclose(pairwise_distance(cos, "cosine"), torch.tensor([[0.0, 1.0], [1.0, 0.0]]), atol=1e-7)


@pytest.mark.parametrize("fn", [self_gram, self_euclidean, lambda x: self_euclidean(x, squared=True)])
def test_gradcheck(fn) -> None:
    x = _batch()[[0, 1, 2, 3, 5, 6]].requires_grad_(
        True
    )  # no duplicate: d is differentiable everywhere off the diagonal
    assert torch.autograd.gradcheck(fn, (x,))


def test_matches_plain_autograd_and_cdist() -> None:
    x = _batch().requires_grad_(True)
    upstream = torch.randn(9, 9, dtype=torch.float64, generator=torch.Generator().manual_seed(1))

    def grads(matrix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        (g,) = torch.autograd.grad((matrix * upstream).sum(), x)
        return matrix.detach(), g

    for ours, ref in [
        (self_gram(x), x @ x.t()),
        (self_euclidean(x), torch.cdist(x, x)),
        (self_euclidean(x, squared=True), torch.cdist(x, x) ** 2),
    ]:
        (v1, g1), (v2, g2) = grads(ours), grads(ref)
        # the Gram expansion leaves ~sqrt(float64 round-off) where two rows coincide (as cdist does
        # itself above 25 rows); everywhere else the two agree to round-off
        assert torch.allclose(v1, v2, atol=1e-7)
        assert torch.allclose(g1, g2, atol=1e-7)
    assert torch.all(self_euclidean(x).diagonal() == 0)
    assert float(self_euclidean(x.detach())[1, 4]) < 1e-7


def test_float32_under_bfloat16_autocast() -> None:
    x = _batch(torch.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        for name in ("euclidean", "squared_euclidean", "cosine"):
            assert pairwise_distance(x, name).dtype == torch.float32


def test_normalize_rows_matches_f_normalize() -> None:
    x = _batch().requires_grad_(True)
    x.data[2] = 0.0  # a zero row: output and gradient follow F.normalize's eps clamp
    upstream = torch.randn(9, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    (g1,) = torch.autograd.grad((normalize_rows(x) * upstream).sum(), x)
    (g2,) = torch.autograd.grad((torch.nn.functional.normalize(x, dim=1) * upstream).sum(), x)
    assert torch.allclose(normalize_rows(x), torch.nn.functional.normalize(x, dim=1), atol=1e-12)
    assert torch.allclose(g1, g2, atol=1e-9)
    assert torch.autograd.gradcheck(normalize_rows, (_batch()[:4].requires_grad_(True),))
