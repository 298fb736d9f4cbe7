"""Fine-tuning dlib's network: model.pretrained / init / freeze and optim.backbone_lr_scale."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

pytest.importorskip("dlib")
pytest.importorskip("safetensors")

from facemetric.core.config import load_config  # noqa: E402
from facemetric.core.errors import ConfigError  # noqa: E402
from facemetric.models.dlib_resnet import pretrained_state_dict  # noqa: E402
from facemetric.train.build import build_run  # noqa: E402


@pytest.fixture(scope="module")
def chips(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 ORL people x 6 photos prepared as dlib's 150x150 face chips (`prepare --align dlib-chip`)."""
    from facemetric.data.prepare import PrepareOptions, prepare

    root = tmp_path_factory.mktemp("orl12") / "photos"
    for person in range(1, 13):
        (root / f"s{person}").mkdir(parents=True)
        for shot in range(1, 7):
            (root / f"s{person}" / f"{shot}.pgm").symlink_to(shared_data / "orl" / f"s{person}" / f"{shot}.pgm")
    out = root.parent / "chips"
    prepare(root, out, PrepareOptions(size=150, align="dlib-chip"), workers=0, progress=False)
    return out


def _cfg(data: Path, out: Path, *extra: str):
    return load_config(
        None,
        [
            f"data.source={data}",
            "data.image_size=[150, 150]",
            "data.val_identities=4",
            "data.cache_dir=null",
            "data.workers=0",
            "model.name=dlib_resnet",
            "model.pretrained=dlib",
            "loss.name=triplet",
            "sampler.p=4",
            "sampler.k=3",
            "sampler.batches_per_epoch=2",
            "optim.lr=0.001",
            "train.epochs=1",
            "train.progress=false",
            f"train.out={out}",
            *extra,
        ],
    )


def test_frozen_parts_stay_dlibs_and_the_rest_learns_at_the_backbone_rate(chips: Path, tmp_path: Path) -> None:
    run = build_run(_cfg(chips, tmp_path / "run", "model.freeze=3", "optim.backbone_lr_scale=0.1"))
    dlib, _ = pretrained_state_dict()
    start = run.validate_untrained()  # the baseline is dlib's network itself, not a random one
    assert start.accuracy >= 0.9
    (group,) = run.trainer.optimizer.param_groups  # triplet loss: no head, one backbone group
    assert group["initial_lr"] == pytest.approx(1e-4)
    assert run.trainer.data.normalization[1][0] == pytest.approx(256 / 255)  # dlib's (pixel - mean) / 256
    run.fit()
    after = run.model.state_dict()
    frozen = [k for k in dlib if k.startswith(("stem_", "stages.0.", "stages.1."))]
    learned = [k for k in dlib if k.startswith(("stages.2.", "stages.3.", "stages.4.", "fc."))]
    assert frozen and learned
    assert all(torch.equal(after[k].cpu(), dlib[k]) for k in frozen)
    assert any(not torch.equal(after[k].cpu(), dlib[k]) for k in learned)


def test_init_continues_from_a_checkpoint(chips: Path, tmp_path: Path) -> None:
    first = build_run(_cfg(chips, tmp_path / "first"))
    first.fit()
    second = build_run(
        _cfg(chips, tmp_path / "second", f"model.init={tmp_path / 'first' / 'last.pt'}", "model.pretrained=null")
    )
    for key, value in first.model.state_dict().items():
        assert torch.equal(second.model.state_dict()[key], value), key


def test_pretrained_dlib_needs_dlib_resnet_and_dlib_chips(chips: Path, synthetic_faces: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="model.name dlib_resnet"):
        build_run(_cfg(chips, tmp_path / "a", "model.name=iresnet_tiny"))
    with pytest.raises(ConfigError, match="--align dlib-chip"):
        build_run(_cfg(synthetic_faces, tmp_path / "b", "data.image_size=[48, 48]"))
    with pytest.raises(ConfigError, match="model.freeze: 8, but this model has 7 parts"):
        build_run(_cfg(chips, tmp_path / "c", "model.freeze=8"))
    with pytest.raises(ConfigError, match="nothing to train"):
        build_run(_cfg(chips, tmp_path / "e", "model.freeze=7"))  # triplet: no head of its own
    with pytest.raises(ConfigError, match="model.init: .* does not exist"):
        build_run(_cfg(chips, tmp_path / "d", f"model.init={tmp_path / 'nothing.pt'}"))


def test_arcface_head_learns_at_the_full_rate_and_a_frozen_network_keeps_dlibs_accuracy(
    chips: Path, tmp_path: Path
) -> None:
    scaled = build_run(_cfg(chips, tmp_path / "scaled", "loss.name=arcface", "optim.backbone_lr_scale=0.1"))
    head, backbone = scaled.trainer.optimizer.param_groups
    assert head["initial_lr"] == pytest.approx(1e-3) and backbone["initial_lr"] == pytest.approx(1e-4)
    assert {id(p) for p in head["params"]} == {id(p) for p in scaled.trainer.loss.parameters()}
    # a new head's first gradients are large: warm it up with the whole network fixed, then fine-tune (model.init)
    warmup = build_run(_cfg(chips, tmp_path / "warm", "loss.name=arcface", "model.freeze=7"))
    (only,) = warmup.trainer.optimizer.param_groups
    assert {id(p) for p in only["params"]} == {id(p) for p in warmup.trainer.loss.parameters()}
    before = warmup.validate_untrained().accuracy
    head_before = [p.detach().clone() for p in warmup.trainer.loss.parameters()]
    result = warmup.fit()
    assert result.val is not None and result.val.verification is not None
    assert result.val.verification.accuracy == pytest.approx(before)
    assert any(not torch.equal(a, b) for a, b in zip(head_before, warmup.trainer.loss.parameters()))


def test_dlib_weights_take_smaller_dlib_chips_down_to_the_networks_minimum() -> None:
    """A distilled copy of dlib's network reads 112x112 chips; below MIN_SIDE the network cannot run."""
    from facemetric.core.config import load_config
    from facemetric.core.spec import ImageSpec
    from facemetric.models.dlib_resnet import MIN_SIDE, DlibResNet, dlib_resnet
    from facemetric.train.weights import training_spec

    cfg = load_config(None, ["model.name=dlib_resnet", "model.pretrained=dlib"])
    spec = training_spec(cfg, ImageSpec(112, 112, align="dlib-chip"))
    assert (spec.height, spec.mean) == (112, tuple(m / 255 for m in (122.782, 117.001, 104.298)))
    with pytest.raises(ConfigError, match=f"down to {MIN_SIDE}x{MIN_SIDE}"):
        training_spec(cfg, ImageSpec(MIN_SIDE - 1, MIN_SIDE - 1, align="dlib-chip"))
    with pytest.raises(ConfigError, match="--align dlib-chip"):
        training_spec(cfg, ImageSpec(112, 112, align="dlib"))
    net = DlibResNet().eval()
    with torch.no_grad():
        assert net(torch.zeros(1, 3, MIN_SIDE, MIN_SIDE)).shape == (1, 128)
        with pytest.raises(RuntimeError):
            net(torch.zeros(1, 3, MIN_SIDE - 1, MIN_SIDE - 1))
    with pytest.raises(ValueError, match=f"at least {MIN_SIDE}x{MIN_SIDE}"):
        dlib_resnet(input_size=(MIN_SIDE - 1, 150))
