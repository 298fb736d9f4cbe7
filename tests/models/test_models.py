from __future__ import annotations

import pytest
import torch

from facemetric.core.checkpoint import model_fingerprint
from facemetric.models import available_models, build_model


@pytest.mark.parametrize("name", ["iresnet_tiny", "iresnet18"])
def test_unit_norm_embeddings_any_input_size(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(name, embedding_dim=32, in_channels=1, input_size=(56, 48)).eval()
    e = model(torch.randn(3, 1, 56, 48))
    assert e.shape == (3, 32)
    assert torch.allclose(e.norm(dim=1), torch.ones(3), atol=1e-5)


def test_registry_and_fingerprint() -> None:
    assert {"iresnet", "iresnet_tiny", "iresnet18", "iresnet50"} <= set(available_models())
    with pytest.raises(KeyError, match="iresnet_tiny"):
        build_model("resnet_imaginary")
    a, b = build_model("iresnet_tiny"), build_model("iresnet_tiny")
    assert model_fingerprint(a) == model_fingerprint(b)
    assert model_fingerprint(a) != model_fingerprint(build_model("iresnet_tiny", embedding_dim=64))
    with pytest.raises(ValueError, match="same length"):
        build_model("iresnet", layers=(1, 1), widths=(8,))


def test_tiny_model_learns_gradients_flow() -> None:
    model = build_model("iresnet_tiny", embedding_dim=16)
    model(torch.randn(4, 3, 64, 64)).sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_iresnet_gap_head_pools_before_the_embedding_layer() -> None:
    """head=gap averages the final map (any input size, C x D head weights); flatten keeps positions."""
    gap = build_model("iresnet_tiny", embedding_dim=128, in_channels=3, input_size=(64, 64), head="gap").eval()
    flat = build_model("iresnet_tiny", embedding_dim=128, in_channels=3, input_size=(64, 64)).eval()
    assert gap.head.fc.weight.shape == (128, 256) and flat.head.fc.weight.shape == (128, 256 * 2 * 2)
    with torch.no_grad():
        assert gap(torch.randn(2, 3, 96, 96)).shape == (2, 128)  # no fixed map size to flatten
        with pytest.raises(RuntimeError):
            flat(torch.randn(2, 3, 96, 96))
    with pytest.raises(ValueError, match="head must be 'flatten' or 'gap'"):
        build_model("iresnet_tiny", embedding_dim=128, in_channels=3, input_size=(64, 64), head="avg")
