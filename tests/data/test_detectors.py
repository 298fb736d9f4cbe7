"""dlib's HOG and CNN face detectors, and face detection in worker processes, on real photos.

CelebA photos are in the wild (faces anywhere, any size; HOG finds no face in ``000149.jpg``, a turned head),
LFW's are deep-funneled 250 x 250 crops. Photos come from ``../shared/data`` (skipped when absent).
"""

from __future__ import annotations

import logging
import multiprocessing
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facemetric.core.errors import ConfigError
from facemetric.core.spec import ImageSpec
from facemetric.data import batch_align
from facemetric.data.align import CenterAligner, build_aligner, crop_face_file
from facemetric.data.batch_align import crop_face_files, detection_workers
from facemetric.data.cache import decode_manifest
from facemetric.data.images import open_image
from facemetric.data.sources import Manifest
from facemetric.embedders.base import CropEmbedder

HOG_MISS = "000149.jpg"  # a CelebA photo (a turned head) in which HOG finds no face, the CNN does


@pytest.fixture(scope="module")
def dlib_models() -> Path:
    pytest.importorskip("dlib")
    from facemetric.core.errors import MissingDependencyError
    from facemetric.data.align.dlib import CNN_MODEL, dlib_model_dir

    try:
        folder = dlib_model_dir()
    except MissingDependencyError as exc:
        pytest.skip(str(exc))
    if not (folder / CNN_MODEL).is_file():
        pytest.skip(f"{folder / CNN_MODEL} missing")
    return folder


@pytest.fixture(scope="module")
def celeba(shared_data: Path) -> list[Path]:
    photos = sorted((shared_data / "celeba-199" / "images").glob("*.jpg"))[:16]
    assert len(photos) == 16 and HOG_MISS in [p.name for p in photos]
    return photos


@pytest.fixture(scope="module")
def lfw(shared_data: Path) -> list[Path]:
    return [
        sorted(person.glob("*.jpg"))[0] for person in sorted((shared_data / "lfw-devtrain" / "images").iterdir())[:3]
    ]


class CountingHog:
    """dlib's HOG detector, recording the size of every image it is run on."""

    def __init__(self, inner) -> None:
        self.inner, self.shapes = inner, []

    def run(self, pixels: np.ndarray, upsample: int, threshold: float):
        self.shapes.append(pixels.shape[:2])
        return self.inner.run(pixels, upsample, threshold)


def test_workers_cut_exactly_what_one_process_cuts(dlib_models: Path, celeba: list[Path], tmp_path: Path) -> None:
    from facemetric.data.align.dlib import DlibAligner

    grey, broken = tmp_path / "grey.jpg", tmp_path / "broken.jpg"
    Image.new("RGB", (300, 200), (128, 128, 128)).save(grey)
    broken.write_bytes(b"not an image")
    paths = [*celeba[:8], grey, *celeba[8:], broken]
    manifest = Manifest(paths, [f"person{k % 5}" for k in range(len(paths))], tmp_path, "files")
    aligner = DlibAligner()
    calls: list[int] = []
    original = aligner.detect_and_crop
    aligner.detect_and_crop = lambda rgb: (calls.append(1), original(rgb))[1]  # type: ignore[method-assign]
    spec = ImageSpec(112, 112, 3, align="dlib")
    serial = decode_manifest(manifest, spec, workers=1, progress=False, aligner=aligner)
    assert len(calls) == len(paths) - 1  # every decodable photo, in this process
    parallel = decode_manifest(manifest, spec, workers=2, progress=False, aligner=aligner)
    assert len(calls) == len(paths) - 1  # the workers used aligners of their own

    assert np.asarray(parallel.images).tobytes() == np.asarray(serial.images).tobytes()
    np.testing.assert_array_equal(parallel.source_index, serial.source_index)
    assert parallel.detections == serial.detections and parallel.bad == serial.bad
    assert parallel.paths == serial.paths and np.array_equal(parallel.labels, serial.labels)
    assert [Path(p).name for p, _ in serial.bad] == [HOG_MISS, "grey.jpg", "broken.jpg"]
    assert "no face found by dlib's HOG detector" in serial.bad[1][1] and "not an image" in serial.bad[2][1]
    assert len(serial) == len(paths) - 3 and all(d["backend"] == "dlib" for d in serial.detections)


def test_how_many_workers() -> None:
    assert detection_workers(31) == 1 and detection_workers(5, 0) == 1 and detection_workers(3, 8) == 3
    assert detection_workers(1000) == min(4, batch_align.available_cpus())
    with pytest.raises(ValueError, match="workers must be >= 0"):
        detection_workers(10, -1)


def test_an_aligner_is_rebuilt_from_its_settings_in_a_child(dlib_models: Path, lfw: list[Path]) -> None:
    from facemetric.data.align.dlib_chip import DlibChipAligner

    aligner = DlibChipAligner(upsample=0, pad=0.5, detector="hog+cnn", cnn_max_side=300)
    clone = pickle.loads(pickle.dumps(aligner))
    assert type(clone) is DlibChipAligner and clone.arguments() == aligner.arguments()
    assert clone.finder is not aligner.finder and clone.finder.cnn is not None and clone.finder.order == ("hog", "cnn")
    expected = crop_face_file(str(lfw[0]), aligner)
    spawn = multiprocessing.get_context("spawn")  # nothing inherited: the child builds the aligner from its settings
    with spawn.Pool(1, initializer=batch_align._init_worker, initargs=(pickle.dumps(aligner),)) as pool:
        crop, kind, reason, detection = pool.apply(batch_align._crop, (str(lfw[0]),))
    assert crop is not None and kind is None and reason is None
    np.testing.assert_array_equal(crop, expected[0])
    assert detection == expected[3] and detection["backend"] == "dlib-resnet"


@pytest.mark.parametrize(
    "name, options", [("none", {}), ("center", {"fraction": 0.6}), ("opencv", {"neighbors": 4}), ("dlib", {})]
)
def test_every_aligner_pickles_as_its_settings(name: str, options: dict, lfw: list[Path]) -> None:
    if name == "opencv":
        pytest.importorskip("cv2")
    if name == "dlib":
        pytest.importorskip("dlib")
    aligner = build_aligner(name, size=64, **options)
    clone = pickle.loads(pickle.dumps(aligner))
    assert clone.arguments() == aligner.arguments() and clone.arguments()["size"] == 64
    assert all(clone.arguments()[k] == v for k, v in options.items())
    image = open_image(lfw[1])
    np.testing.assert_array_equal(clone(image)[0], aligner(image)[0])


def test_an_aligner_that_forgets_its_settings_is_run_in_this_process(
    lfw: list[Path], caplog: pytest.LogCaptureFixture
) -> None:
    class Forgetful(CenterAligner):  # a user's aligner that does not keep `zoom`, and is local to this test
        def __init__(self, size: int = 112, channels: int = 3, zoom: float = 0.5) -> None:
            super().__init__(size, channels, zoom)

    aligner = Forgetful()
    with pytest.raises(TypeError, match="does not keep its constructor argument"):
        pickle.dumps(aligner)
    with caplog.at_level(logging.WARNING, logger="facemetric"):
        results = list(crop_face_files(lfw, aligner, workers=2, progress=False))
    assert "detecting faces in this process only" in caplog.text
    expected = [crop_face_file(str(p), aligner) for p in lfw]
    assert all(np.array_equal(a[0], b[0]) and a[3] == b[3] for a, b in zip(results, expected))


def test_cnn_detector_finds_faces_and_its_records_name_it(
    dlib_models: Path, lfw: list[Path], celeba: list[Path]
) -> None:
    from facemetric.data.align.dlib import DlibAligner
    from facemetric.data.align.dlib_chip import DlibChipAligner

    cnn = DlibAligner(detector="cnn", max_upsample=0)
    for path in lfw[:2]:
        crop, det = cnn(open_image(path))
        centre = [(det.box[0] + det.box[2]) / 2, (det.box[1] + det.box[3]) / 2]
        assert det.backend == "dlib/cnn" and det.found and det.score > 0 and len(det.landmarks) == 5
        assert np.all(np.abs(np.array(centre) - 125) < 30) and crop.shape == (112, 112, 3)  # LFW: centred faces
    both = DlibChipAligner(detector="hog+cnn")
    found = {p.name: crop_face_file(str(p), both)[3] for p in celeba if p.name in (HOG_MISS, "000114.jpg")}
    assert found["000114.jpg"]["backend"] == "dlib-resnet"  # HOG found it: the CNN did not run
    assert found[HOG_MISS]["backend"] == "dlib-resnet/cnn" and found[HOG_MISS]["found"]
    left, top, right, bottom = found[HOG_MISS]["box"]
    assert 0 <= left < right <= 500 and 0 <= top < bottom <= 497 and right - left > 40


def test_an_unknown_detector_is_refused_naming_the_choices(dlib_models: Path) -> None:
    from facemetric.data.align.dlib_chip import DlibChipAligner

    with pytest.raises(ConfigError, match=r"detector must be one of 'hog', 'cnn', 'hog\+cnn', 'yunet', got 'mtcnn'"):
        build_aligner("dlib", detector="mtcnn")
    with pytest.raises(ValueError, match=r"detector must be one of .*got 'HOG'"):
        DlibChipAligner(detector="HOG")


def test_a_large_photo_is_searched_once_on_a_small_copy(dlib_models: Path, lfw: list[Path], tmp_path: Path) -> None:
    """The detector runs once per photo, on a copy of at most ``max_side``; boxes and landmarks are the photo's."""
    from facemetric.data.align.dlib import DlibAligner

    small = open_image(lfw[0])
    large = small.resize((1500, 1500), Image.Resampling.BICUBIC)
    aligner = DlibAligner(max_side=500)
    hog = aligner.finder.hog = CountingHog(aligner.finder.hog)
    crop, det = aligner(large)
    assert hog.shapes == [(500, 500)]
    reference = DlibAligner()(small)[1]  # the photo at its own size: the box scales by 6
    side = reference.box[2] - reference.box[0]  # HOG's boxes snap to its pyramid's scales: 10 % apart
    np.testing.assert_allclose(np.array(det.box) / 6, reference.box, atol=0.1 * side)
    np.testing.assert_allclose(np.array(det.landmarks) / 6, reference.landmarks, atol=2)

    class Plain(CropEmbedder):  # the embedding half does nothing: only detection is counted
        name = reference = fingerprint = "plain"
        dim = 2

        def embed_crops(self, crops, batch_size=256, flip=False, progress=False) -> np.ndarray:
            return np.full((len(crops), 2), np.sqrt(0.5), np.float32)

    embedder = Plain(ImageSpec(112, 112, 3, align="dlib"), aligner)
    batch = embedder.embed_files(lfw)
    assert len(batch) == 3 and len(hog.shapes) == 1 + 3  # once per photo: embedding and record from one detection
    _, detection = embedder.embed_photo(large)
    assert len(hog.shapes) == 1 + 3 + 1 and detection.box == det.box


def test_gallery_import_with_workers_enrols_what_one_process_does(shared_data: Path, tmp_path: Path) -> None:
    from facemetric.gallery.service import Gallery

    class Centre(CropEmbedder):  # a crop model with a picklable aligner: fast, no dlib
        name = reference = fingerprint = "centre-test"
        dim = 48

        def __init__(self) -> None:
            super().__init__(ImageSpec(16, 16, 3), CenterAligner(16, 3, 0.6))

        def embed_crops(self, crops, batch_size=256, flip=False, progress=False) -> np.ndarray:
            v = np.asarray(crops, np.float32)[:, ::4, ::4].reshape(len(crops), -1)
            v = v - v.mean(axis=1, keepdims=True)
            return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)

    data = tmp_path / "people"
    for person in sorted((shared_data / "orl").glob("s*"))[:4]:
        (data / person.name).mkdir(parents=True)
        for photo in sorted(person.glob("*.pgm"))[:3]:
            (data / person.name / photo.name).symlink_to(photo)
    (data / "s1" / "broken.pgm").write_bytes(b"P5 nothing")
    results, vectors = [], []
    for workers in (0, 2):
        gallery = Gallery.create(tmp_path / f"g{workers}", Centre())
        results.append(gallery.import_source(data, progress=False, workers=workers))
        _, _, names, stored = gallery.store.snapshot()
        vectors.append((names, stored))
        gallery.close()
    assert results[0] == results[1]
    assert vectors[0][0] == vectors[1][0] and np.array_equal(vectors[0][1], vectors[1][1])
    assert results[0].people == 4 and results[0].photos_added == 12 and results[0].skipped == 1
    assert "broken.pgm" in results[0].skipped_examples[0]


def test_a_smaller_dlib_chip_is_the_same_region_of_the_face(dlib_models: Path, lfw: list[Path]) -> None:
    """``prepare --align dlib-chip --size 112``: dlib's chip geometry at 112 pixels (a distilled student's input)."""
    from facemetric.data.align.dlib_chip import DlibChipAligner

    photo = open_image(lfw[0])
    big, det_big = DlibChipAligner()(photo)
    small, det_small = DlibChipAligner(size=112)(photo)
    assert big.shape == (150, 150, 3) and small.shape == (112, 112, 3)
    assert det_small.landmarks == det_big.landmarks  # the same face found, the same landmarks
    shrunk = np.asarray(Image.fromarray(big).resize((112, 112), Image.Resampling.BILINEAR), dtype=float)
    assert np.abs(shrunk - small).mean() < 3.0  # the same pixels, up to resampling (0.9 grey levels here)
    shifted = np.roll(shrunk, 6, axis=1)  # a region 5 % off to one side is clearly different
    assert np.abs(shifted - small).mean() > 10 * np.abs(shrunk - small).mean()
    with pytest.raises(ValueError, match="RGB"):
        DlibChipAligner(channels=1)
