"""Model fusion (``dlib-resnet+sface``): one YuNet detection, each member's own crop, weighted unit vectors
concatenated. Checked against the members run on their own, on real LFW photos (skipped without
../shared/data or the weight wheels)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from facemetric.core.errors import ConfigError, MissingDependencyError
from facemetric.core.weight_files import SFACE, YUNET
from facemetric.embedders import load_embedder

pytest.importorskip("cv2")
pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def weights() -> None:
    try:
        YUNET.locate(), SFACE.locate()
    except MissingDependencyError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def photos(shared_data: Path) -> list[Path]:
    people = sorted((shared_data / "lfw-devtrain" / "images").iterdir())
    return [sorted(p.glob("*.jpg"))[0] for p in people[:: len(people) // 12][:12]]


def test_a_fusion_is_its_members_on_one_detection_weighted_and_concatenated(weights, photos) -> None:
    fusion = load_embedder("dlib-resnet+sface")
    dlib, sface = load_embedder("dlib-resnet"), load_embedder("sface")  # dlib-resnet's own detector is YuNet
    assert fusion.reference == "dlib-resnet+sface" and dlib.detector == "yunet"
    assert fusion.dim == 128 + 128
    got = fusion.embed_files(photos)
    a, b = dlib.embed_files(photos), sface.embed_files(photos)
    assert len(got) == len(a) == len(b) == len(photos)
    w = np.array([1 / dlib.score_spread, 1 / sface.score_spread])
    scale = np.sqrt(w / w.sum())
    expected = np.concatenate([a.embeddings * scale[0], b.embeddings * scale[1]], axis=1)
    np.testing.assert_allclose(got.embeddings, expected, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(got.embeddings, axis=1), 1.0, atol=1e-5)
    # the cosine of two fused vectors is the weighted mean of the members' cosines
    cos = got.embeddings @ got.embeddings.T
    mean = (w[0] * (a.embeddings @ a.embeddings.T) + w[1] * (b.embeddings @ b.embeddings.T)) / w.sum()
    np.testing.assert_allclose(cos, mean, atol=1e-5)
    assert got.crops.shape[1:] == (150, 150 + 112, 3)  # both crops side by side on one canvas


def test_weights_references_and_fingerprints(weights) -> None:
    plain, weighted = load_embedder("dlib-resnet+sface"), load_embedder("dlib-resnet@1+sface@3")
    assert weighted.weights == [1.0, 3.0]
    assert weighted.reference == "dlib-resnet@1+sface@3"
    assert plain.fingerprint != weighted.fingerprint
    again = load_embedder(weighted.reference)
    assert again.fingerprint == weighted.fingerprint and again.reference == weighted.reference
    # a '+' inside an option value is not a new model
    from facemetric.embedders import _member_parts

    assert _member_parts("dlib-resnet?detector=hog+cnn+sface") == ["dlib-resnet?detector=hog+cnn", "sface"]


def test_fusions_that_cannot_share_a_detection_are_refused(weights, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="detector=hog"):
        load_embedder("dlib-resnet?detector=hog+sface")
    with pytest.raises(Exception, match="fusion weight"):
        load_embedder("sface@heavy+dlib-resnet")
    from facemetric.embedders.fusion import FusionEmbedder

    with pytest.raises(ConfigError, match="two models or more"):
        FusionEmbedder([load_embedder("sface")])


def test_the_shared_aligner_travels_to_worker_processes(weights, photos) -> None:
    from PIL import Image

    from facemetric.data.align.shared import SharedYunetAligner

    aligner = SharedYunetAligner(("yunet:112", "dlib-chip:150"))
    copy = pickle.loads(pickle.dumps(aligner))
    photo = Image.open(photos[0]).convert("RGB")
    a, det = aligner(photo)
    b, _ = copy(photo)
    assert a.shape == (150, 262, 3) and np.array_equal(a, b) and det.found
    assert not a[112:, :112].any()  # black below the smaller crop


def test_a_fusion_gallery_enrols_identifies_and_reopens_by_its_reference(weights, shared_data, tmp_path) -> None:
    from common import orl_files
    from facemetric.gallery.service import Gallery
    from gallery_orl import closed_set

    files, people, shots = orl_files(shared_data / "orl")
    keep = people <= 6
    fusion = load_embedder("dlib-resnet+sface")
    result = closed_set(tmp_path / "gallery", fusion, [f for f, k in zip(files, keep) if k], people[keep], shots[keep])
    assert result["probes"] == 54 and result["probes_no_face"] == 0
    assert result["rank1"] >= 0.95, result
    gallery = Gallery(tmp_path / "gallery")  # the stored reference loads the same fusion again
    assert gallery.embedder.fingerprint == fusion.fingerprint and gallery.embedder.dim == 256
    gallery.close()
