"""Gallery store, index and service: names, atomic enrolment, sync, search, calibration, bad photos.

Tests taking ``location`` run twice: on a SQLite folder and on a PostgreSQL database (conftest.py).
"""

from __future__ import annotations

import io
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facemetric.gallery.interface import (
    EmbedderInfo,
    EmbedderMismatchError,
    Enrolment,
    GalleryError,
    InvalidNameError,
    Store,
    UnknownIdentityError,
    validate_name,
)
from facemetric.gallery.location import GalleryLocation
from facemetric.gallery.photos import Photo, PhotoError
from facemetric.gallery.schemas import (
    CalibrationResult,
    EnrollResult,
    IdentifyAnswer,
    Identity,
    ImportResult,
    RemoveResult,
    VerifyAnswer,
)
from facemetric.gallery.service import Gallery
from facemetric.gallery.stores.sqlite.faiss_index import FaissIndex
from gallery_fakes import ColourEmbedder, person_photo


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "   ",
        "../x",
        "a/b",
        "a\\b",
        ".hidden",
        "x..y",
        "tab\there",
        "nul\x00",
        "no correspondence",
        "No Correspondence",
        "x" * 101,
        42,
    ],
)
def test_path_like_and_reserved_names_are_refused(bad) -> None:
    with pytest.raises(InvalidNameError):
        validate_name(bad)


def test_names_are_normalised() -> None:
    assert validate_name("  Ana Mari\u0301a ") == "Ana Mar\u00eda"  # NFC: one code point for í
    assert validate_name("O'Brien-Smith 2") == "O'Brien-Smith 2"


def _info(dim: int = 4) -> EmbedderInfo:
    return EmbedderInfo("test", "fp-1", dim, "test")


def _item(k: int, dim: int = 4) -> Enrolment:
    v = np.random.default_rng(k).normal(size=dim).astype(np.float32)
    return Enrolment(f"hash{k}", f"photo{k}.jpg", {"backend": "test"}, v / np.linalg.norm(v))


def test_store_enrols_atomically_and_skips_duplicate_photos(location: GalleryLocation) -> None:
    store = location.create(_info())
    with pytest.raises(GalleryError, match="already exists"):
        location.create(_info())
    assert store.enroll("ann", [_item(1), _item(2)]).model_dump() == {"name": "ann", "added": 2, "duplicates": 0}
    assert store.enroll("ann", [_item(2), _item(3)]).model_dump() == {"name": "ann", "added": 1, "duplicates": 1}
    generation = store.generation
    bad = Enrolment("hash9", "x", {}, np.ones(5, np.float32))  # wrong dimension: nothing of the request lands
    with pytest.raises(GalleryError, match="4-d embeddings"):
        store.enroll("bob", [_item(4), bad])
    assert store.generation == generation and [i.name for i in store.identities()] == ["ann"]
    unwritable = Enrolment("hash8", "y", {"box": object()}, _item(8).embedding)  # fails inside the transaction
    with pytest.raises(TypeError):
        store.enroll("bob", [_item(4), unwritable])  # bob and his first photo were written, then rolled back
    with pytest.raises(TypeError):
        store.enroll("ann", [_item(5), unwritable])
    assert store.generation == generation and [(i.name, i.images) for i in store.identities()] == [("ann", 3)]
    assert store.remove("ann") == 3 and store.identities() == []
    with pytest.raises(UnknownIdentityError):
        store.remove("ann")
    assert store.integrity_check() == "ok"
    with pytest.raises(EmbedderMismatchError, match="Scores across models mean nothing"):
        store.check_embedder("fp-2", 4)


@pytest.fixture(params=["sqlite", "postgresql", "postgresql-exact"])
def search_location(request: pytest.FixtureRequest, tmp_path: Path) -> GalleryLocation:
    """A fresh gallery location for each way of searching: FAISS, pgvector's HNSW, pgvector exact."""
    if request.param == "sqlite":
        return GalleryLocation.parse(tmp_path / "gallery")
    url = request.getfixturevalue("pg_url")
    if request.param.endswith("exact"):
        url += f"{'&' if '?' in url else '?'}search=exact"
    return GalleryLocation.parse(url)


def test_a_random_sample_of_enrolled_images(location: GalleryLocation) -> None:
    """``sample_images`` (what `gallery recall` probes with): the rows drawn, with their people, seeded; each store's
    own query and the interface's default (from a snapshot) draw alike."""
    store = location.create(_info())
    for k in range(10):
        store.enroll(f"p{k}", [_item(2 * k), _item(2 * k + 1)])
    _, _, names, vectors = store.snapshot()
    owner = {v.tobytes(): n for n, v in zip(names, vectors)}
    drawn, rows = store.sample_images(7, seed=4)
    assert len(drawn) == 7 and rows.shape == (7, 4) and len({r.tobytes() for r in rows}) == 7
    assert all(owner[r.tobytes()] == n for n, r in zip(drawn, rows))
    assert sorted(map(bytes, store.sample_images(7, seed=4)[1])) == sorted(map(bytes, rows))
    default = Store.sample_images(store, 7, seed=4)  # the interface's own, from a snapshot
    assert sorted(map(bytes, default[1])) == sorted(map(bytes, rows))
    assert len(store.sample_images(100)[0]) == 20 and len(store.sample_images(0)[0]) == 0
    store.close()


def test_index_search_equals_brute_force_and_follows_the_store(search_location: GalleryLocation) -> None:
    location = search_location
    store = location.create(_info(16))
    rng = np.random.default_rng(0)
    for person in range(12):
        store.enroll(f"p{person:02d}", [_item(100 * person + k, 16) for k in range(1 + person % 4)])
    index = location.index(store)
    assert len(index) == 12 and index.n_images == 30 and index.score(_item(0, 16).embedding, "p00") > 0.999
    _, _, names, vectors = store.snapshot()
    names = np.array(names)
    for _ in range(20):
        q = rng.normal(size=16).astype(np.float32)
        q /= np.linalg.norm(q)
        sims = vectors @ q
        people = sorted(set(names))
        best_max = sorted((-(sims[names == p].max()), p) for p in people)[:3]
        got = index.search(q, 3, "max")
        assert [m.name for m in got] == [p for _, p in best_max]
        np.testing.assert_allclose([m.score for m in got], [-s for s, _ in best_max], atol=1e-6)
        means = {p: vectors[names == p].mean(0) / np.linalg.norm(vectors[names == p].mean(0)) for p in people}
        assert index.search(q, 1, "mean")[0].name == max(people, key=lambda p: means[p] @ q)
        assert index.score(q, "p05", "max") == pytest.approx(sims[names == "p05"].max(), abs=1e-6)
    # a second process enrols: the FAISS index notices the new generation and rebuilds; pgvector reads the database
    other = location.open()
    other.enroll("newcomer", [_item(999, 16)])
    assert index.sync() is (location.kind == "sqlite")
    assert "newcomer" in {m.name for m in index.search(_item(999, 16).embedding, 1)}
    assert index.sync() is False
    other.remove("p05")  # and deletes: gone from the next answer
    assert index.sync() is (location.kind == "sqlite")
    assert "p05" not in {m.name for m in index.search(_item(500, 16).embedding, 12)} and len(index) == 12
    with pytest.raises(UnknownIdentityError):
        index.score(_item(500, 16).embedding, "p05")
    if location.folder is not None:
        reopened = FaissIndex(store, location.folder)  # the saved index matches the store: loaded, not rebuilt
        assert reopened.rebuilds == 0 and reopened.n_images == index.n_images
        (location.folder / "index.faiss").write_bytes(b"garbage")
        assert FaissIndex(store, location.folder).rebuilds == 1  # unreadable: rebuilt from the store
    other.close()
    store.close()


@pytest.fixture
def gallery(location: GalleryLocation) -> Iterator[Gallery]:
    g = Gallery.create(location, ColourEmbedder())
    for person in range(8):
        g.enroll(f"person {person}", [Photo(person_photo(person, 0), f"p{person}-0.png")])
    yield g
    g.close()


def test_identify_verify_and_calibrated_answers(gallery: Gallery) -> None:
    answer = gallery.identify(Photo(person_photo(3, 5), "probe.png"))
    assert isinstance(answer, IdentifyAnswer)
    assert answer.candidates[0].name == "person 3" and answer.identity is None  # no threshold yet
    assert "not calibrated" in answer.note and answer.threshold is None and answer.far_at_score is None
    assert answer.achieved_far is None and answer.calibrated_on is None and answer.warning is None
    assert answer.detection.backend == "colour" and answer.detection.image_size == [64, 64]
    uncalibrated = gallery.verify("person 3", Photo(person_photo(3, 5), "v.png"))
    assert isinstance(uncalibrated, VerifyAnswer) and uncalibrated.accepted is None and uncalibrated.score > 0.9
    # calibrate on other photos of the enrolled people (each is a stranger to the others)
    vectors, names = [], []
    for person in range(8):
        for shot in range(1, 6):
            vectors.append(gallery.embed(Photo(person_photo(person, shot), "c"))[0])
            names.append(f"person {person}")
    result = gallery.calibrate(np.array(vectors), names, far=0.1, source="test photos")
    assert isinstance(result, CalibrationResult) and result.photos is None
    assert result.identify.n_impostors == 40 and result.verify.n_impostors == 40 * 7
    assert result.identify.achieved_far <= 0.1 and result.identify.template == "max"
    assert result.identify.gallery_identities == 8
    assert "impostor_quantiles" not in result.model_dump()  # stored, not answered
    known = gallery.identify(Photo(person_photo(3, 9), "probe.png"))
    assert known.identity == "person 3" and known.threshold == result.identify.value
    assert 0.0 <= known.far_at_score <= 0.1 and known.target_far == 0.1 and known.note is None
    assert known.achieved_far == result.identify.achieved_far and known.calibrated_on == result.identify.source
    stranger = gallery.identify(Photo(person_photo(77, 0), "stranger.png"))
    expected = stranger.candidates[0].name if stranger.score >= stranger.threshold else "no correspondence"
    assert stranger.identity == expected and stranger.far_at_score is not None
    same = gallery.verify("person 2", Photo(person_photo(2, 7), "v.png"))
    other = gallery.verify("person 2", Photo(person_photo(5, 7), "v.png"))
    assert same.accepted is True and other.accepted is False and same.score > other.score
    assert same.name == "person 2" and same.threshold == result.verify.value
    with pytest.raises(UnknownIdentityError):
        gallery.verify("nobody", Photo(person_photo(2, 7), "v.png"))
    assert known.warning is None
    for person in range(8, 13):  # 13 people now, calibrated with 8: identify answers warn
        gallery.enroll(f"person {person}", [Photo(person_photo(person, 0), "late.png")])
    grown = gallery.identify(Photo(person_photo(3, 9), "probe.png"))
    assert "calibrated with 8 people enrolled, now 13" in grown.warning
    other_template = Gallery(gallery.location, gallery.embedder, template="mean")
    assert "calibrated with template 'max'" in other_template.verify("person 2", Photo(person_photo(2, 7), "v")).warning


def test_bad_photos_are_refused_and_write_nothing(gallery: Gallery, tmp_path: Path) -> None:
    before = (gallery.store.generation, gallery.identities())
    flat = io.BytesIO()
    Image.new("RGB", (64, 64), (128, 128, 128)).save(flat, format="PNG")
    cases = [(b"not an image at all", "not an image"), (flat.getvalue(), "no face found")]
    for data, message in cases:
        with pytest.raises(PhotoError, match=message):
            gallery.enroll("newbie", [Photo(person_photo(1, 1), "ok.png"), Photo(data, "bad.png")])
    big = io.BytesIO()
    Image.new("L", (8000, 6000)).save(big, format="PNG")  # 48 MP of zeros: a few kB compressed
    small_limit = Gallery(gallery.location, gallery.embedder, max_pixels=1_000_000)
    with pytest.raises(PhotoError, match="more than the 1,000,000 allowed"):
        small_limit.enroll("newbie", [Photo(big.getvalue(), "bomb.png")])
    assert (gallery.store.generation, gallery.identities()) == before


def test_a_gallery_refuses_another_model(gallery: Gallery) -> None:
    class Other(ColourEmbedder):
        fingerprint = "another-model"

    with pytest.raises(EmbedderMismatchError):
        Gallery(gallery.location, Other())
    stored = gallery.location.open()  # read again from the file / database: nothing changed there
    assert stored.embedder.fingerprint == "colour-test-0001" and stored.embedder.dim == 48
    stored.close()
    if gallery.folder is not None:
        meta = sqlite3.connect(gallery.folder / "gallery.db").execute("SELECT value FROM meta WHERE key='embedder'")
        assert json.loads(meta.fetchone()[0])["fingerprint"] == "colour-test-0001"


def test_import_a_folder_per_person(location: GalleryLocation, tmp_path: Path) -> None:
    data = tmp_path / "photos"
    for person in range(3):
        (data / f"person{person}").mkdir(parents=True)
        for shot in range(3):
            (data / f"person{person}" / f"{shot}.png").write_bytes(person_photo(person, shot))
    flat = io.BytesIO()
    Image.new("RGB", (64, 64), (128, 128, 128)).save(flat, format="PNG")
    (data / "person0" / "0.png").write_bytes(flat.getvalue())  # no face: skipped, not fatal
    (data / "faceless").mkdir()
    (data / "faceless" / "1.png").write_bytes(flat.getvalue())
    gallery = Gallery.create(location, ColourEmbedder())
    result = gallery.import_source(data, per_person=2, progress=False)
    assert isinstance(result, ImportResult)
    assert result.people == 3 and result.photos_added == 1 + 2 + 2 and result.skipped == 2
    assert result.people_without_a_usable_photo == ["faceless"] and len(result.skipped_examples) == 2
    assert {i.name: i.images for i in gallery.identities()} == {"person0": 1, "person1": 2, "person2": 2}
    again = gallery.import_source(data, per_person=2, progress=False)  # the same photos: nothing new
    assert again.photos_added == 0 and gallery.identify(Photo(person_photo(1, 2), "p")).candidates[0].name == "person1"


def test_enroll_list_and_remove_answers(location: GalleryLocation) -> None:
    gallery = Gallery.create(location, ColourEmbedder())
    photos = [Photo(person_photo(4, k), f"{k}.png") for k in range(2)]
    assert gallery.enroll(" Ana ", photos) == EnrollResult(name="Ana", added=2, duplicates=0)
    assert gallery.enroll("Ana", photos[:1]).model_dump() == {"name": "Ana", "added": 0, "duplicates": 1}
    (ana,) = gallery.identities()
    assert isinstance(ana, Identity) and ana.name == "Ana" and ana.images == 2 and ana.created > 0
    assert gallery.remove("Ana") == RemoveResult(name="Ana", removed_images=2) and gallery.identities() == []


def test_answers_are_exactly_their_models() -> None:
    """Unknown or missing fields are refused: a renamed field fails here, not silently in a client."""
    detection = {
        "backend": "crop",
        "found": False,
        "box": None,
        "score": None,
        "landmarks": None,
        "faces": 0,
        "image_size": [64, 64],
    }
    decision = {"score": 0.5, "threshold": None, "target_far": None, "far_at_score": None, "detection": detection}
    answer = IdentifyAnswer(**decision, candidates=[{"name": "a", "score": 0.5}], identity=None)
    assert answer.model_dump(mode="json")["achieved_far"] is None  # every field is in the JSON, null when n/a
    assert IdentifyAnswer.model_validate_json(answer.model_dump_json()) == answer
    with pytest.raises(ValueError, match="extra"):
        IdentifyAnswer(**decision, candidates=[], identity=None, surprise=1)
    with pytest.raises(ValueError, match="accepted"):
        VerifyAnswer(**decision, name="a")
    with pytest.raises(ValueError, match="extra"):
        IdentifyAnswer(**{**decision, "detection": {**detection, "colour": "red"}}, candidates=[], identity=None)
