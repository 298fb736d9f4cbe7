"""``model.mirror``: the trained model embeds each face with its mirror image, everywhere it is used."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from facemetric.core.checkpoint import load_checkpoint, save_checkpoint
from facemetric.embedders.torch_model import ModelEmbedder, embed_array
from facemetric.models.iresnet import iresnet_tiny
from facemetric.models.mirror import MirrorMean, for_inference


def test_mirror_mean_is_the_flip_augmented_embedding_and_mirror_invariant() -> None:
    torch.manual_seed(0)
    net = iresnet_tiny(embedding_dim=16, input_size=(32, 32)).eval()
    images = np.random.default_rng(0).integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    mirrored = embed_array(MirrorMean(net), images)
    by_hand = embed_array(net, images, flip=True)  # net(x) + net(flip x), unit length
    np.testing.assert_allclose(mirrored, by_hand, atol=1e-5)
    assert np.abs(mirrored - embed_array(net, images)).max() > 1e-3  # not the plain embedding
    np.testing.assert_allclose(embed_array(MirrorMean(net), images[:, :, ::-1].copy()), mirrored, atol=1e-5)
    assert for_inference(net, False) is net
    assert isinstance(for_inference(net, True), MirrorMean)
    assert for_inference(for_inference(net, True), True).net is net  # never wrapped twice


def test_a_mirror_checkpoint_embeds_mirrored_through_the_embedder_and_onnx(
    tiny_checkpoint: Path, tmp_path: Path
) -> None:
    pytest.importorskip("onnxruntime")
    from facemetric.embedders.onnx import OnnxEmbedder
    from facemetric.export.onnx import export_checkpoint

    state = load_checkpoint(tiny_checkpoint)
    state["config"]["model"]["mirror"] = True
    mirror_ckpt = tmp_path / "mirror.pt"
    save_checkpoint(mirror_ckpt, state)
    plain, mirror = ModelEmbedder.from_checkpoint(tiny_checkpoint), ModelEmbedder.from_checkpoint(mirror_ckpt)
    assert isinstance(mirror.model, MirrorMean)
    spec = plain.spec
    crops = np.random.default_rng(1).integers(0, 256, (4, spec.height, spec.width, spec.channels), dtype=np.uint8)
    np.testing.assert_allclose(mirror.embed_crops(crops), plain.embed_crops(crops, flip=True), atol=1e-5)
    np.testing.assert_allclose(mirror.embed_crops(crops[:, :, ::-1].copy()), mirror.embed_crops(crops), atol=1e-5)

    export_checkpoint(mirror_ckpt, tmp_path / "mirror.onnx", dynamo=False)
    onnx = OnnxEmbedder(tmp_path / "mirror.onnx")
    np.testing.assert_allclose(onnx.embed_crops(crops), plain.embed_crops(crops, flip=True), atol=1e-4)
