"""Every registered backbone: unit-norm output, learns on a fixed batch, trains without NaN, exports to ONNX."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from facemetric.core.spec import ImageSpec
from facemetric.models import available_models, build_model, model_spec

EXPECTED = {
    "iresnet",
    "iresnet_tiny",
    "iresnet18",
    "iresnet34",
    "iresnet50",
    "iresnet100",
    "mobilefacenet",
    "mobilefacenet_v3",
    "convnext_face",
    "convnext_face_tiny",
    "convnext_face_small",
    "inception_resnet_v1",
    "inception_resnet_v1_small",
    "l2net",
    "hardnet",
}


def _tiny(name: str) -> tuple[int, int, int]:
    """(channels, height, width) small enough for CI yet valid for the architecture."""
    if model_spec(name).channels == 1:  # patch descriptors
        return 1, 16, 16
    if name.startswith("inception"):
        return 3, 80, 80  # its valid-padding stem and reductions need about 75 px
    return 3, 32, 32


def _build(name: str, dim: int = 32) -> torch.nn.Module:
    c, h, w = _tiny(name)
    torch.manual_seed(0)
    return build_model(name, embedding_dim=dim, in_channels=c, input_size=(h, w))


def _loss(model: torch.nn.Module, x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    torch.manual_seed(1)  # the same dropout / drop-path masks for the before and after forward
    return (1 - F.cosine_similarity(model(x), targets)).mean()


def test_the_zoo_is_complete() -> None:
    assert set(available_models()) >= EXPECTED


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_learns_on_a_fixed_batch_without_nan(name: str) -> None:
    model = _build(name).train()
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(6, *_tiny(name), generator=gen)
    targets = F.normalize(torch.randn(6, 32, generator=gen), dim=1)
    emb = model(x)
    assert emb.shape == (6, 32) and torch.allclose(emb.norm(dim=1), torch.ones(6), atol=1e-5)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for _ in range(3):  # a few steps: every loss finite, the first step already lowers it
        opt.zero_grad()
        loss = _loss(model, x, targets)
        losses.append(float(loss.detach()))
        assert np.isfinite(losses[-1])
        loss.backward()
        opt.step()
    assert losses[1] < losses[0], (name, losses)
    assert all(torch.isfinite(p).all() for p in model.parameters())


# one representative per family, small enough to export in a second or two
FAMILIES = {
    "iresnet": dict(layers=(1, 1, 1, 1), widths=(8, 16, 16, 32)),
    "mobilefacenet": dict(width_mult=0.25),
    "mobilefacenet_v3": dict(width_mult=0.25),
    "convnext_face": dict(depths=(1, 1, 1, 1), dims=(8, 16, 16, 32)),
    "inception_resnet_v1_small": {},
    "hardnet": {},
}


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_onnx_export_matches_torch(name: str, tmp_path) -> None:
    pytest.importorskip("onnxruntime")
    from facemetric.embedders.onnx import OnnxEmbedder
    from facemetric.export.onnx import export_model

    c, h, w = _tiny(name)
    torch.manual_seed(0)
    model = build_model(name, embedding_dim=16, in_channels=c, input_size=(h, w), **FAMILIES[name]).eval()
    with torch.no_grad():  # non-trivial BN statistics, so folding them into the graph is exercised
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    spec = ImageSpec(height=h, width=w, channels=c, mean=(0.5,) * c, std=(0.25,) * c)
    report = export_model(model, spec, tmp_path / "m.onnx", {"name": name}, dynamo=False, check_batches=(1, 4))
    assert report.max_abs_diff < 1e-4 and report.batch_sizes_checked == (1, 4)
    # the file alone embeds uint8 images as the torch model does
    images = np.random.default_rng(0).integers(0, 256, (5, h, w, c), dtype=np.uint8)
    onnx_emb = OnnxEmbedder(tmp_path / "m.onnx").embed_crops(images, batch_size=2, flip=True)
    from facemetric.embedders.torch_model import embed_array

    torch_emb = embed_array(model, images, batch_size=3, flip=True, normalization=spec.normalization)
    assert np.abs(onnx_emb - torch_emb).max() < 1e-4


def test_export_refuses_a_mismatch_and_leaves_no_file(tmp_path, monkeypatch) -> None:
    pytest.importorskip("onnxruntime")
    import facemetric.export.onnx as export_mod

    model = build_model("iresnet", embedding_dim=8, input_size=(32, 32), layers=(1,), widths=(8,)).eval()
    monkeypatch.setattr(export_mod, "TOLERANCE", -1.0)  # no difference can be below 0: refused
    spec = ImageSpec(height=32, width=32, channels=3)
    with pytest.raises(export_mod.ExportError, match="differs from torch"):
        export_mod.export_model(model, spec, tmp_path / "m.onnx", dynamo=False)
    assert list(tmp_path.iterdir()) == []
