"""Margin-softmax family: hand-computed values, gradchecks, parity with pytorch-metric-learning,
and finiteness at the extremes (large scales, embeddings on / opposite to a class weight)."""

from __future__ import annotations

import math

import pytest
import torch
from pytorch_metric_learning import losses as pml
from torch.func import functional_call

from facemetric.losses import build_loss, loss_needs_classes

NAMES = ["softmax", "normface", "cosface", "arcface", "combined_margin", "sphereface", "center", "circle_class"]
C45 = math.cos(math.pi / 4)


def _two_class(name: str, **cfg) -> torch.nn.Module:
    """2 classes, 2-d embeddings, class weights the unit axes."""
    loss = build_loss(name, num_classes=2, embedding_dim=2, **cfg)
    with torch.no_grad():
        loss.weight.copy_(torch.eye(2))
    return loss


def _ce(target: float, other: float) -> float:
    """Cross-entropy of a 2-class logit pair whose first entry is the target."""
    return math.log(1.0 + math.exp(other - target))


def test_all_registered_and_need_classes() -> None:
    for name in NAMES:
        assert loss_needs_classes(name)
        loss = build_loss(name, num_classes=5, embedding_dim=4)
        x = torch.randn(3, 4)
        assert loss.logits(x).shape == (3, 5) and loss(x, torch.tensor([0, 1, 4])).ndim == 0
    with pytest.raises(ValueError):
        build_loss("cosface", num_classes=1, embedding_dim=4)


# ---- hand-computed values: W = I, so cos(theta_j) are the normalised coordinates of x ----


def test_softmax_hand_computed() -> None:
    loss = _two_class("softmax")
    with torch.no_grad():
        loss.bias.copy_(torch.tensor([0.5, 0.0]))
    # logits W x + b = [1 + 0.5, 2 + 0] = [1.5, 2]; CE = log(1 + e^(2 - 1.5)) = 0.974077
    assert loss(torch.tensor([[1.0, 2.0]]), torch.tensor([0])).item() == pytest.approx(0.974077, abs=1e-5)


def test_normface_and_cosface_hand_computed() -> None:
    x, y = torch.tensor([[3.0, 3.0]]), torch.tensor([0])  # 45 degrees from both classes
    # normface s=10: both logits 10 cos45 = 7.0711 -> CE = log 2
    assert _two_class("normface", scale=10.0)(x, y).item() == pytest.approx(math.log(2), abs=1e-5)
    # cosface s=10 m=0.35: target 10 (0.70711 - 0.35) = 3.5711, other 7.0711 -> log(1 + e^3.5) = 3.529750
    cosface = _two_class("cosface", scale=10.0, margin=0.35)
    assert cosface.logits(x, y)[0].tolist() == pytest.approx([10 * (C45 - 0.35), 10 * C45], abs=1e-5)
    assert cosface(x, y).item() == pytest.approx(3.529750, abs=1e-5)


def test_combined_margin_hand_computed() -> None:
    loss = _two_class("combined_margin", scale=10.0, m1=1.0, m2=0.3, m3=0.2)
    # target 10 (cos(pi/4 + 0.3) - 0.2) = 10 (0.466561 - 0.2) = 2.665606; other 7.071068
    # CE = log(1 + e^(7.071068 - 2.665606)) = log(1 + e^4.405462) = 4.417599
    assert loss(torch.tensor([[1.0, 1.0]]), torch.tensor([0])).item() == pytest.approx(4.417599, abs=1e-5)


def test_sphereface_hand_computed() -> None:
    loss = _two_class("sphereface", margin=4, lambda_base=0.0, lambda_min=0.0)
    x = 2.0 * torch.tensor([[math.cos(math.pi / 3), math.sin(math.pi / 3)]])  # norm 2, theta_0 = 60 deg
    # k = floor(60 / 45) = 1: psi = -cos(4 * 60 deg) - 2 = 0.5 - 2 = -1.5, target 2 * -1.5 = -3
    # other: 2 cos 30 deg = 1.732051 -> CE = log(1 + e^(1.732051 + 3)) = 4.740821
    assert loss.logits(x, torch.tensor([0]))[0].tolist() == pytest.approx([-3.0, 1.732051], abs=1e-5)
    assert loss(x, torch.tensor([0])).item() == pytest.approx(4.740821, abs=1e-5)


def test_sphereface_lambda_annealing_and_resume() -> None:
    loss = _two_class("sphereface")
    x, y = torch.tensor([[1.0, 0.2]]), torch.tensor([0])
    assert loss.current_lambda().item() == pytest.approx(1000.0)
    loss(x, y)
    assert loss.iteration.item() == 1 and loss.current_lambda().item() == pytest.approx(1000.0 / 1.12, rel=1e-6)
    loss.eval()
    loss(x, y)
    assert loss.iteration.item() == 1  # evaluation does not advance the schedule
    resumed = _two_class("sphereface")
    resumed.load_state_dict({**loss.state_dict(), "iteration": torch.tensor(10**6)})
    assert resumed.iteration.item() == 10**6 and resumed.current_lambda().item() == pytest.approx(5.0)
    # lambda -> the target (lambda cos + psi) / (1 + lambda): with lambda = 5 and cos = 1, psi = 1
    assert resumed.logits(torch.tensor([[1.0, 0.0]]), y)[0, 0].item() == pytest.approx(1.0, abs=1e-5)


def test_center_hand_computed() -> None:
    loss = _two_class("center", lambda_c=0.5)
    with torch.no_grad():
        loss.centers.copy_(torch.eye(2))
    # logits [1, 2] -> CE = log(1 + e) = 1.313262; ||(1, 2) - (1, 0)||^2 = 4 -> + 0.5 / 2 * 4 = 1
    assert loss(torch.tensor([[1.0, 2.0]]), torch.tensor([0])).item() == pytest.approx(2.313262, abs=1e-5)


def test_circle_class_hand_computed_and_reference() -> None:
    loss = _two_class("circle_class", gamma=10.0, margin=0.25)
    # s_p = s_n = 0.707107; alpha_p = 1.25 - 0.707107 = 0.542893, logit_p = 10 * 0.542893 * (0.707107 - 0.75)
    # = -0.232864; alpha_n = 0.957107, logit_n = 10 * 0.957107 * (0.707107 - 0.25) = 4.375
    # CE = log(1 + e^(4.375 + 0.232864)) = 4.617788
    assert loss(torch.tensor([[1.0, 1.0]]), torch.tensor([0])).item() == pytest.approx(4.617788, abs=1e-5)
    # paper's form, log(1 + sum_n exp(gamma a_n (s_n - m)) * exp(-gamma a_p (s_p - 1 + m))), on a random batch
    torch.manual_seed(0)
    loss = build_loss("circle_class", num_classes=6, embedding_dim=5, gamma=64.0, margin=0.4).double()
    x, y = torch.randn(9, 5, dtype=torch.float64), torch.randint(0, 6, (9,))
    cos = loss.cosine(x)
    positive = torch.nn.functional.one_hot(y, 6).bool()
    sp, sn = cos[positive], cos[~positive].view(9, 5)
    neg = torch.logsumexp(64.0 * (sn + 0.4).clamp_min(0) * (sn - 0.4), dim=1)
    pos = 64.0 * (1.4 - sp).clamp_min(0) * (sp - 0.6)
    assert loss(x, y).item() == pytest.approx(torch.nn.functional.softplus(neg - pos).mean().item(), abs=1e-9)


# ---- gradients ----


@pytest.mark.parametrize("name", [n for n in NAMES if n != "circle_class"])
def test_gradcheck_embeddings_and_weights(name: str) -> None:
    torch.manual_seed(0)
    cfg = {"scale": 16.0} if name in {"normface", "cosface", "arcface", "combined_margin"} else {}
    loss = build_loss(name, num_classes=4, embedding_dim=3, **cfg).double().eval()
    with torch.no_grad():
        for p in loss.parameters():
            p.copy_(torch.randn_like(p))
    x, y = torch.randn(5, 3, dtype=torch.float64, requires_grad=True), torch.randint(0, 4, (5,))
    w = loss.weight.detach().clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t, v: functional_call(loss, {"weight": v}, (t, y)), (x, w))


def test_circle_class_gradient_holds_alpha_constant() -> None:
    """alpha_p, alpha_n are detached (authors' code), so gradcheck the loss with alpha frozen at x0."""
    torch.manual_seed(0)
    loss = build_loss("circle_class", num_classes=4, embedding_dim=3, gamma=16.0, margin=0.25).double()
    x0, y = torch.randn(5, 3, dtype=torch.float64), torch.randint(0, 4, (5,))
    positive = torch.nn.functional.one_hot(y, 4).bool()
    cos0 = loss.cosine(x0).detach()
    alpha = torch.where(positive, 1.25 - cos0, cos0 + 0.25).clamp_min(0)
    delta = torch.where(positive, 0.75, 0.25)

    def frozen(t: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.cross_entropy(16.0 * alpha * (loss.cosine(t) - delta), y)

    x = x0.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(frozen, (x,))
    expected = torch.autograd.grad(frozen(x), x)[0]
    torch.testing.assert_close(torch.autograd.grad(loss(x, y), x)[0], expected, atol=1e-12, rtol=0)


def test_gradcheck_subcenters() -> None:
    torch.manual_seed(0)
    loss = build_loss("arcface", num_classes=3, embedding_dim=4, scale=8.0, subcenters=3).double()
    x, y = torch.randn(5, 4, dtype=torch.float64, requires_grad=True), torch.randint(0, 3, (5,))
    assert torch.autograd.gradcheck(lambda t: loss(t, y), (x,))


# ---- combined margin: special cases and the general (m1 != 1) path ----


def _value_and_grad(loss: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x = x.detach().clone().requires_grad_(True)
    out = loss(x, y)
    return out.detach(), torch.autograd.grad(out, x)[0]


def _batch(loss: torch.nn.Module, n: int = 48, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random float64 batch: a third near the own class, a third near its opposite (fallback), a third random."""
    gen = torch.Generator().manual_seed(seed)
    classes = loss.num_classes
    w = loss.weight.detach().double().view(classes, -1, loss.weight.shape[1])[:, 0]
    y = torch.randint(0, classes, (n,), generator=gen)
    sign = torch.tensor([1.0, -1.0, 0.0], dtype=torch.float64).repeat(n // 3 + 1)[:n, None]
    x = sign * w[y] / w[y].norm(dim=1, keepdim=True)
    return x + 0.4 * torch.randn(x.shape, generator=gen, dtype=torch.float64), y


@pytest.mark.parametrize(("special", "cfg"), [("arcface", {"margin": 0.5}), ("cosface", {"margin": 0.35})])
def test_combined_margin_special_cases(special: str, cfg: dict) -> None:
    torch.manual_seed(0)
    ref = build_loss(special, num_classes=7, embedding_dim=6, scale=64.0, **cfg).double()
    m = cfg["margin"]
    m2, m3 = (m, 0.0) if special == "arcface" else (0.0, m)
    combined = build_loss("combined_margin", num_classes=7, embedding_dim=6, scale=64.0, m1=1.0, m2=m2, m3=m3).double()
    combined.load_state_dict(ref.state_dict())
    x, y = _batch(ref)
    for a, b in zip(_value_and_grad(combined, x, y), _value_and_grad(ref, x, y)):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=0)


def test_combined_margin_general_path_against_acos() -> None:
    m1, m2, m3 = 1.2, 0.2, 0.1
    loss = build_loss("combined_margin", num_classes=5, embedding_dim=8, scale=30.0, m1=m1, m2=m2, m3=m3).double()
    x, y = torch.randn(32, 8, dtype=torch.float64), torch.randint(0, 5, (32,))
    cos = loss.cosine(x)
    assert (m1 * torch.acos(cos) + m2 < math.pi).all()  # no fallback in this batch
    target = torch.cos(m1 * torch.acos(cos.gather(1, y[:, None])) + m2) - m3
    expected = torch.nn.functional.cross_entropy(30.0 * cos.scatter(1, y[:, None], target), y)
    assert loss(x, y).item() == pytest.approx(expected.item(), abs=1e-10)


@pytest.mark.parametrize(("m1", "m2"), [(1.0, 0.5), (1.35, 0.3), (2.0, 0.0), (0.8, 0.4)])
def test_combined_margin_fallback_is_monotonic(m1: float, m2: float) -> None:
    loss = _two_class("combined_margin", scale=1.0, m1=m1, m2=m2, m3=0.2).double()
    thetas = torch.linspace(0.0, math.pi, 2001, dtype=torch.float64)
    x = torch.stack([torch.cos(thetas), torch.sin(thetas)], dim=1)
    target = loss.logits(x, torch.zeros(len(x), dtype=torch.long))[:, 0]
    assert (target[1:] <= target[:-1] + 1e-12).all()


# ---- parity with pytorch-metric-learning (float64, same weights, PML's W = our weight.T) ----


def _pml_pair(name: str, pml_loss, **cfg) -> tuple[torch.nn.Module, torch.nn.Module]:
    torch.manual_seed(1)
    ours = build_loss(name, num_classes=10, embedding_dim=8, **cfg).double()
    with torch.no_grad():
        pml_loss.W.data = ours.weight.detach().t().clone()
    return ours, pml_loss


PML_CASES = {
    "normface": (dict(scale=20.0), lambda: pml.NormalizedSoftmaxLoss(10, 8, temperature=1 / 20.0)),
    "cosface": (dict(scale=64.0, margin=0.35), lambda: pml.CosFaceLoss(10, 8, margin=0.35, scale=64)),
    "arcface": (dict(scale=64.0, margin=0.5), lambda: pml.ArcFaceLoss(10, 8, margin=math.degrees(0.5), scale=64)),
    "subcenter_arcface": (
        dict(scale=32.0, margin=0.4, subcenters=3),
        lambda: pml.SubCenterArcFaceLoss(num_classes=10, embedding_size=8, margin=math.degrees(0.4), scale=32),
    ),
    "sphereface": (
        dict(margin=4, lambda_base=0.0, lambda_min=0.0),
        lambda: pml.SphereFaceLoss(10, 8, margin=4, scale=1),
    ),
}


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # PML's numpy use in LargeMarginSoftmaxLoss
@pytest.mark.parametrize("case", sorted(PML_CASES))
def test_matches_pml_value_and_gradient(case: str) -> None:
    cfg, make_pml = PML_CASES[case]
    name = "arcface" if case == "subcenter_arcface" else case
    ours, theirs = _pml_pair(name, make_pml(), **cfg)
    x, y = _batch(ours, n=60)
    x = x * torch.empty(len(x), 1, dtype=torch.float64).uniform_(0.5, 3.0)  # norms matter for sphereface
    for a, b in zip(_value_and_grad(ours, x, y), _value_and_grad(theirs, x, y)):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


# ---- no NaN / inf at the extremes, float32 and bfloat16 autocast ----

EXTREMES = (
    [("arcface", {"scale": s}) for s in (16.0, 64.0, 128.0)]
    + [("cosface", {"scale": s}) for s in (16.0, 64.0, 128.0)]
    + [("combined_margin", {"scale": s}) for s in (16.0, 64.0, 128.0)]
    + [("combined_margin", {"scale": 64.0, "m1": 1.35, "m2": 0.3, "m3": 0.0})]
    + [("circle_class", {"gamma": g, "margin": m}) for g in (8.0, 64.0, 256.0, 1024.0) for m in (0.1, 0.5)]
    + [(name, {}) for name in ("softmax", "normface", "sphereface", "center")]
    + [("arcface", {"scale": 64.0, "subcenters": 3})]
)


@pytest.mark.parametrize("autocast", [False, True], ids=["float32", "bf16-autocast"])
@pytest.mark.parametrize(("name", "cfg"), EXTREMES, ids=lambda v: v if isinstance(v, str) else str(v))
def test_finite_on_and_opposite_class_weights(name: str, cfg: dict, autocast: bool) -> None:
    torch.manual_seed(0)
    loss = build_loss(name, num_classes=6, embedding_dim=8, **cfg)
    with torch.no_grad():  # bfloat16-representable weights, so bf16 inputs can equal them exactly
        loss.weight.copy_(loss.weight.bfloat16().float())
    w = loss.weight.detach()[:: loss.subcenters]  # first sub-centre of each class
    # on own class, opposite own class, on another class, opposite another class, zero-angle duplicates
    x = torch.cat([w[:2], -w[2:4], w[4:5], -w[5:6], w[:2] * 100.0])
    y = torch.tensor([0, 1, 2, 3, 0, 0, 0, 1])
    dtype = torch.bfloat16 if autocast else torch.float32
    x = x.to(dtype).requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        out = loss(x, y)
    out.backward()
    assert out.dtype == torch.float32 and torch.isfinite(out)
    assert torch.isfinite(x.grad).all() and torch.isfinite(loss.weight.grad).all()
