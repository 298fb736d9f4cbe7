from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from pk_batches import TINY, TINY_LABELS
from pk_batches import pk_batch as _batch
from pytorch_metric_learning.losses import CircleLoss

from facemetric.losses import build_loss


def test_hand_computed() -> None:
    # m = 0.25, gamma = 2. Anchor 0: positive s=0 -> a_p = 1.25, logit -2 * 1.25 * (0 - 0.75) = 1.875;
    #   negative s=1 -> a_n = 1.25, logit 2 * 1.25 * (1 - 0.25) = 1.875 -> softplus(3.75)
    # anchor 1: positive 1.875; negative s=0 -> a_n = 0.25, logit 2 * 0.25 * (0 - 0.25) = -0.125 -> softplus(1.75)
    # anchor 2 has no positive: excluded from the mean
    expected = (F.softplus(torch.tensor(3.75)) + F.softplus(torch.tensor(1.75))) / 2
    assert build_loss("circle", m=0.25, gamma=2.0)(TINY, TINY_LABELS).item() == pytest.approx(expected.item(), abs=1e-6)


def _frozen_weight_reference(x: torch.Tensor, y: torch.Tensor, m: float, gamma: float, w: torch.Tensor) -> torch.Tensor:
    """Circle loss by a loop over anchors, with a_p, a_n computed from the constant embeddings ``w``."""
    s, s_w = F.normalize(x, dim=1) @ F.normalize(x, dim=1).T, F.normalize(w, dim=1) @ F.normalize(w, dim=1).T
    losses = []
    for a in range(len(y)):
        pos = [p for p in range(len(y)) if p != a and y[p] == y[a]]
        neg = [n for n in range(len(y)) if y[n] != y[a]]
        lp = torch.stack([-gamma * torch.relu(1 + m - s_w[a, p]) * (s[a, p] - 1 + m) for p in pos]).logsumexp(0)
        ln = torch.stack([gamma * torch.relu(s_w[a, n] + m) * (s[a, n] - m) for n in neg]).logsumexp(0)
        losses.append(F.softplus(lp + ln))
    return torch.stack(losses).mean()


def test_gradcheck_with_detached_weights() -> None:
    # a_p, a_n are constants in the gradient (paper, PML): gradcheck the frozen-weight reference, then
    # check that our autograd gradient is that reference's gradient
    x, y = _batch(0, p=4, k=3, d=5)
    x = (x * 1.3).requires_grad_(True)
    w = x.detach().clone()
    assert torch.autograd.gradcheck(lambda t: _frozen_weight_reference(t, y, 0.25, 4.0, w), (x,))
    ours = build_loss("circle", m=0.25, gamma=4.0)(x, y)
    (grad,) = torch.autograd.grad(ours, x)
    ref = _frozen_weight_reference(x, y, 0.25, 4.0, w)
    (ref_grad,) = torch.autograd.grad(ref, x)
    assert ours.item() == pytest.approx(ref.item(), rel=1e-12) and torch.allclose(grad, ref_grad, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("m, gamma", [(0.25, 256.0), (0.4, 80.0)])
def test_matches_pml(dtype: torch.dtype, m: float, gamma: float) -> None:
    for seed in range(3):
        x, y = _batch(seed, dtype)
        x1, x2 = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
        a, b = build_loss("circle", m=m, gamma=gamma)(x1, y), CircleLoss(m=m, gamma=gamma)(x2, y)
        a.backward(), b.backward()
        assert a.item() == pytest.approx(b.item(), rel=1e-6, abs=1e-5)
        assert torch.allclose(x1.grad, x2.grad, atol=1e-5)


@pytest.mark.parametrize("gamma", [8.0, 64.0, 256.0, 1024.0])
@pytest.mark.parametrize("m", [0.25, 0.5])
def test_finite_for_large_gamma_float32_and_bfloat16(gamma: float, m: float) -> None:
    x, y = _batch(0, torch.float32, p=16, k=4, d=32)
    near = F.normalize(torch.ones_like(x) + 1e-3 * x, dim=1)  # nearly collapsed: huge negative logits
    for emb in (x, near, x.bfloat16()):
        for autocast in (False, True):
            e = emb.clone().requires_grad_(True)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                out = build_loss("circle", m=m, gamma=gamma)(e, y)
            out.backward()
            assert out.dtype == torch.float32 and torch.isfinite(out) and torch.isfinite(e.grad).all()


def test_no_pair_gives_zero_with_graph() -> None:
    x = torch.randn(3, 4, requires_grad=True)
    out = build_loss("circle")(x, torch.tensor([0, 1, 2]))
    out.backward()
    assert out.item() == 0.0 and torch.isfinite(x.grad).all()
