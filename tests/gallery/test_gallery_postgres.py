"""Choosing the store by URL, and a PostgreSQL gallery shared by several processes and servers.

The store-level promises (atomic enrolment, bad requests writing nothing, model mismatch, thresholds,
answers) run against both stores in test_gallery.py; here: what only a URL or several processes show.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from facemetric.cli import main
from facemetric.core.errors import MissingDependencyError
from facemetric.gallery.interface import (
    EmbedderInfo,
    Enrolment,
    GalleryError,
    StoredIdentity,
    StoredImage,
    UnknownIdentityError,
)
from facemetric.gallery.location import GalleryLocation
from facemetric.gallery.photos import Photo
from facemetric.gallery.service import Gallery
from facemetric.gallery.stores.postgres.pgvector_index import PgvectorIndex
from facemetric.gallery.stores.postgres.url import SearchOptions, split_url
from gallery_fakes import ColourEmbedder, person_photo

TESTS = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "value", ["http://host/team", "ftp://u:secret@host/x", "sqlite:///tmp/g.db", "postgresq://u@h/db", "file:///g"]
)
def test_unknown_url_schemes_are_refused_not_made_folders(
    value: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    scheme = value.split("://")[0]
    with pytest.raises(GalleryError, match=f"not a {scheme}:// URL") as refused:
        GalleryLocation.parse(value)
    assert "secret" not in str(refused.value) and "postgresql://" in str(refused.value)
    with pytest.raises(GalleryError, match="a gallery is a folder"):
        Gallery.create(value, ColourEmbedder())
    with pytest.raises(GalleryError, match="a gallery is a folder"):
        Gallery(value, ColourEmbedder())
    assert main(["gallery", "--gallery", value, "list"]) == 2
    assert f"not a {scheme}:// URL" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # no folder named "http:" (or anything else) appeared


def test_what_a_location_names() -> None:
    assert GalleryLocation.parse("team") == GalleryLocation("sqlite", "team")
    assert GalleryLocation.parse(Path("a/postgresql:/x")).kind == "sqlite"  # a Path is always a folder
    assert GalleryLocation.parse("postgresql://x").kind == "postgresql"
    url = GalleryLocation.parse("postgres://ann:pw@db.example:5433/faces?search=exact")
    assert url.kind == "postgresql" and url.folder is None
    assert str(url) == "postgres://ann:***@db.example:5433/faces?search=exact"  # printable: no password
    assert str(GalleryLocation.parse("postgresql://h/db?password=pw")) == "postgresql://h/db?password=***"
    with pytest.raises(GalleryError, match="search='fast' is not a search mode"):
        GalleryLocation.parse("postgresql://u@h/db?search=fast").open()


def test_search_options_are_taken_out_of_the_url_libpq_gets() -> None:
    assert split_url("postgresql://u@h/db") == ("postgresql://u@h/db", SearchOptions(False, None))
    assert split_url("postgresql://u@h/db?sslmode=require&search=exact&ef_search=200") == (
        "postgresql://u@h/db?sslmode=require",
        SearchOptions(True, 200),
    )
    assert split_url("postgresql://u@h/db?ef_search=1000&application_name=a b")[0] == (
        "postgresql://u@h/db?application_name=a%20b"
    )
    for bad in ("0", "1001", "lots", "-5"):
        with pytest.raises(GalleryError, match=f"ef_search='{bad}' must be a whole number from 1 to 1000"):
            split_url(f"postgresql://u:secret@h/db?ef_search={bad}")


def test_a_postgres_url_without_psycopg_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if not installed
    with pytest.raises(MissingDependencyError, match=r"pip install 'facemetric\[postgres\]'"):
        Gallery("postgresql://u@127.0.0.1:1/db", ColourEmbedder())


def test_help_says_a_gallery_is_a_folder_or_a_postgres_url(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("gallery", "serve"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "a folder (SQLite + FAISS index" in text and "postgresql://user[:password]@host[:port]/database" in text
        assert "pip install 'facemetric[postgres]'" in text and "any other scheme is refused" in text


def test_unreachable_server_is_a_clear_error_without_the_password() -> None:
    pytest.importorskip("psycopg")
    with pytest.raises(GalleryError, match="cannot connect to PostgreSQL") as refused:
        Gallery("postgresql://ann:topsecret@127.0.0.1:1/faces", ColourEmbedder())
    assert "topsecret" not in str(refused.value) and "ann:***@127.0.0.1:1/faces" in str(refused.value)


def test_an_empty_database_holds_no_gallery(pg_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(GalleryError, match="no gallery here; create one with `facemetric gallery init`"):
        Gallery(pg_url, ColourEmbedder())
    assert main(["gallery", "--gallery", pg_url, "list"]) == 2 and "no gallery here" in capsys.readouterr().err
    assert not GalleryLocation.parse(pg_url).exists()
    Gallery.create(pg_url, ColourEmbedder()).close()
    assert GalleryLocation.parse(pg_url).exists()
    assert main(["-q", "gallery", "--gallery", pg_url, "list"]) == 2  # its model, "colour-test", cannot be loaded
    assert "the gallery's model cannot be opened" in capsys.readouterr().err


def test_hnsw_build_settings_in_the_url() -> None:
    options = split_url("postgresql://u@h/db?m=24&ef_construction=128&sslmode=require")
    assert options == ("postgresql://u@h/db?sslmode=require", SearchOptions(False, None, 24, 128))
    assert options[1].build() == (24, 128) and SearchOptions().build() == (32, 128)  # measured (BENCHMARKS.md)
    for bad, words in (
        ("m=1", "m='1' must be a whole number from 2 to 100"),
        ("m=x", "m='x' must be a whole number from 2 to 100"),
        ("ef_construction=2000", "ef_construction='2000' must be a whole number from 4 to 1000"),
        ("m=80", r"ef_construction=128 is less than twice m=80; .* \(give ef_construction=160 or more\)"),
        ("m=10&ef_construction=12", "ef_construction=12 is less than twice m=10"),
    ):
        with pytest.raises(GalleryError, match=words):
            split_url(f"postgresql://u:secret@h/db?{bad}")


def _indexdefs(url: str) -> dict[str, str]:
    import psycopg

    with psycopg.connect(split_url(url)[0]) as db:
        return dict(db.execute("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'facemetric'"))


def test_a_gallery_keeps_its_hnsw_build_settings(pg_url: str) -> None:
    """m and ef_construction are chosen when the gallery is made, kept by the indexes themselves, used again when
    an import rebuilds them, and a URL asking for others on an existing gallery is refused."""
    built = pg_url + ("&" if "?" in pg_url else "?") + "m=8&ef_construction=40"
    store = GalleryLocation.parse(built).create(EmbedderInfo("test", "fp", 16, "test"))
    assert store.hnsw == (8, 40)
    for name in ("images_hnsw", "identities_hnsw"):
        assert "m='8'" in _indexdefs(pg_url)[name] and "ef_construction='40'" in _indexdefs(pg_url)[name]
    rng = np.random.default_rng(3)
    people = []
    for person in range(50):
        v = rng.normal(size=(2, 16)).astype(np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        people.append(
            StoredIdentity(f"p{person}", 1.0, [StoredImage(f"h{person}{k}", "s", {}, v[k], 1.0) for k in (0, 1)])
        )
    assert store.restore(people).images == 100  # the indexes dropped for the load and built again, as made
    assert "m='8'" in _indexdefs(pg_url)["images_hnsw"]
    store.close()
    again = GalleryLocation.parse(pg_url).open()  # the URL without build settings opens it
    assert again.hnsw == (8, 40)
    probe = people[7].images[0].embedding
    assert PgvectorIndex(again).search(probe, 1)[0].name == "p7"
    again.close()
    with pytest.raises(
        GalleryError, match="built with m=8, ef_construction=40, not the URL's m=16, ef_construction=40"
    ):
        GalleryLocation.parse(pg_url + ("&" if "?" in pg_url else "?") + "m=16").open()


def test_pgvector_schema_and_hnsw_search_agree_with_exact(pg_url: str) -> None:
    import psycopg

    location = GalleryLocation.parse(pg_url)
    store = location.create(EmbedderInfo("test", "fp", 32, "test"))
    rng = np.random.default_rng(1)
    for person in range(300):
        vectors = rng.normal(size=(2, 32)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        store.enroll(f"p{person:03d}", [Enrolment(f"h{person}-{k}", "s", {}, v) for k, v in enumerate(vectors)])
    assert store.integrity_check() == "ok" and store.generation == 300
    with psycopg.connect(pg_url) as db:
        indexes = dict(db.execute("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'facemetric'"))
    for name in ("images_hnsw", "identities_hnsw"):
        assert "USING hnsw" in indexes[name] and "vector_cosine_ops" in indexes[name]
    hnsw, exact = PgvectorIndex(store), PgvectorIndex(store, exact=True)
    _, _, names, vectors = store.snapshot()
    owner = np.array(names)
    agree = agree_mean = 0
    for _ in range(20):
        q = rng.normal(size=32).astype(np.float32)
        q /= np.linalg.norm(q)
        sims = vectors @ q
        brute = sorted((-sims[owner == p].max(), p) for p in set(names))[:3]
        truth = exact.search(q, 3)
        assert [m.name for m in truth] == [p for _, p in brute]  # exact is exact
        np.testing.assert_allclose([m.score for m in truth], [-s for s, _ in brute], atol=1e-6)
        approximate = hnsw.search(q, 3)
        agree += [m.name for m in approximate] == [m.name for m in truth]
        for match in approximate:  # HNSW may miss an image, never make up a better score
            assert match.score <= exact.score(q, match.name) + 1e-6
        agree_mean += hnsw.search(q, 1, "mean")[0].name == exact.search(q, 1, "mean")[0].name
    assert agree >= 18 and agree_mean >= 18  # approximate, but at 600 vectors it rarely misses
    store.close()


_OTHER_PROCESS = """
import json, sys
from facemetric.gallery.photos import Photo
from facemetric.gallery.service import Gallery
from gallery_fakes import ColourEmbedder, person_photo

gallery = Gallery(sys.argv[1], ColourEmbedder())
print(json.dumps(gallery.enroll("newcomer", [Photo(person_photo(9, 0), "n.png")]).model_dump()), flush=True)
sys.stdin.readline()
print(json.dumps(gallery.remove("newcomer").model_dump()), flush=True)
"""


def test_another_process_enrolment_and_deletion_show_on_the_next_request(pg_url: str) -> None:
    here = Gallery.create(pg_url, ColourEmbedder())
    for person in range(4):
        here.enroll(f"person {person}", [Photo(person_photo(person, 0), "p.png")])
    probe = Photo(person_photo(9, 3), "probe.png")
    assert here.identify(probe).candidates[0].name != "newcomer"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    other = subprocess.Popen(
        [sys.executable, "-c", _OTHER_PROCESS, pg_url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert other.stdout is not None and other.stdin is not None
        enrolled = other.stdout.readline()
        if not enrolled:
            pytest.fail(f"the other process failed: {other.stderr.read() if other.stderr else ''}"[-3000:])
        assert json.loads(enrolled) == {"name": "newcomer", "added": 1, "duplicates": 0}
        answer = here.identify(probe)  # the very next request, no reopening, no waiting
        assert answer.candidates[0].name == "newcomer" and answer.candidates[0].score > 0.9
        assert here.verify("newcomer", probe).score == pytest.approx(answer.candidates[0].score, abs=1e-6)
        assert [i.name for i in here.identities()] == ["newcomer", "person 0", "person 1", "person 2", "person 3"]
        other.stdin.write("\n")
        other.stdin.flush()
        assert json.loads(other.stdout.readline() or "null") == {"name": "newcomer", "removed_images": 1}
        assert "newcomer" not in {c.name for c in here.identify(probe).candidates}
        with pytest.raises(UnknownIdentityError):
            here.verify("newcomer", probe)
        assert other.wait(timeout=60) == 0
    finally:
        if other.poll() is None:
            other.kill()
            other.wait()
        here.close()


def test_two_servers_on_one_postgres_gallery(pg_url: str) -> None:
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from facemetric.serve.app import ServeOptions, create_app

    # the first server creates the gallery for its model; the second opens it
    first = TestClient(create_app(ServeOptions(pg_url), ColourEmbedder()))
    second = TestClient(create_app(ServeOptions(pg_url), ColourEmbedder()))
    for person in range(3):
        files = {"files": ("p.png", person_photo(person, 0), "image/png")}
        assert second.post("/api/enroll", data={"name": f"person {person}"}, files=files).status_code == 200
    files = {"files": ("a.png", person_photo(7, 0), "image/png")}
    assert first.post("/api/enroll", data={"name": "Ada"}, files=files).json()["added"] == 1
    probe = {"file": ("probe.png", person_photo(7, 4), "image/png")}
    who = second.post("/api/identify", files=probe, data={"top_k": "2"}).json()
    assert who["candidates"][0]["name"] == "Ada" and len(who["candidates"]) == 2
    assert second.post("/api/verify", data={"name": "Ada"}, files=probe).json()["score"] > 0.9
    assert first.delete("/api/identities/Ada").json() == {"name": "Ada", "removed_images": 1}
    assert second.post("/api/verify", data={"name": "Ada"}, files=probe).status_code == 404
    assert [p["name"] for p in second.get("/api/identities").json()] == ["person 0", "person 1", "person 2"]
    for client in (first, second):
        client.app.state.gallery.close()


@pytest.mark.slow
def test_two_serve_processes_on_one_postgres_gallery(tiny_checkpoint: Path, synthetic_faces: Path, pg_url: str) -> None:
    """Issue 17's acceptance: an enrolment through one `facemetric serve` is identified through another."""
    httpx = pytest.importorskip("httpx")
    pytest.importorskip("fastapi")
    from servers import start_server, stop_server

    people = sorted(p for p in synthetic_faces.iterdir() if p.is_dir())[:4]
    photos = {p.name: sorted(p.glob("*.png")) for p in people}
    first, first_url = start_server(pg_url, "--model", str(tiny_checkpoint))  # creates the gallery
    try:
        second, second_url = start_server(pg_url)
        try:
            for name, files in photos.items():
                done = httpx.post(
                    f"{first_url}/api/enroll", data={"name": name}, files={"files": ("p.png", files[0].read_bytes())}
                )
                assert done.status_code == 200, done.text
                who = httpx.post(f"{second_url}/api/identify", files={"file": ("q.png", files[0].read_bytes())})
                assert who.status_code == 200 and who.json()["candidates"][0]["name"] == name, who.text
            gone = people[0].name
            assert httpx.delete(f"{second_url}/api/identities/{gone}").status_code == 200
            probe = {"file": ("q.png", photos[gone][0].read_bytes())}
            assert httpx.post(f"{first_url}/api/verify", data={"name": gone}, files=probe).status_code == 404
            listed = [p["name"] for p in httpx.get(f"{first_url}/api/identities").json()]
            assert listed == sorted(photos)[1:]
        finally:
            stop_server(second)
    finally:
        stop_server(first)


def _clustered_gallery(url: str, people: int = 150, dim: int = 32) -> None:
    store = GalleryLocation.parse(url).create(EmbedderInfo("test", "fp", dim, "test"))
    rng = np.random.default_rng(5)
    centres = rng.normal(size=(people, dim))
    for person in range(people):
        v = (centres[person] + 0.5 * rng.normal(size=(2, dim))).astype(np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        store.enroll(f"p{person:03d}", [Enrolment(f"h{person}-{k}", "s", {}, x) for k, x in enumerate(v)])
    store.close()


def test_recall_of_the_gallerys_own_index(pg_url: str, tmp_path: Path, monkeypatch, capsys) -> None:
    """`gallery recall`: enrolled faces searched with HNSW and exactly; at 300 faces a long candidate list finds
    everything, and a list that swaps the two nearest other people is caught at 1 but not at 5."""
    from facemetric.gallery.recall import index_recall

    empty = GalleryLocation.parse(pg_url).create(EmbedderInfo("test", "fp", 32, "test"))
    with pytest.raises(GalleryError, match="nobody is enrolled, so there is nothing to measure recall on"):
        index_recall(pg_url, sample=5)
    empty.destroy()
    _clustered_gallery(pg_url)
    sep = "&" if "?" in pg_url else "?"
    full = index_recall(pg_url + sep + "ef_search=1000", sample=40, top_k=5)
    assert full["approximate"] and full["sample"] == 40 and full["identities"] == 150 and full["images"] == 300
    assert full["recall_at_1"] == full["recall_at_k"] == full["own_first"] == 1.0 and full["ef_search"] == 1000
    exact_search = PgvectorIndex.search

    def swapped(self, probe, top_k=5, template="max"):  # the approximate index lists #2 and #3 the other way round
        found = exact_search(self, probe, top_k, template)
        return found if self.exact else found[:1] + found[2:3] + found[1:2] + found[3:]

    monkeypatch.setattr(PgvectorIndex, "search", swapped)
    wrong = index_recall(pg_url, sample=40, top_k=5)
    assert wrong["recall_at_1"] == 0.0 and wrong["recall_at_k"] == 1.0 and wrong["own_first"] == 1.0
    monkeypatch.undo()
    assert index_recall(pg_url + sep + "search=exact", sample=5)["approximate"] is False
    folder = tmp_path / "folder"
    Gallery.create(folder, ColourEmbedder()).close()
    assert main(["-q", "gallery", "--gallery", str(folder), "recall", "--sample", "3"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["approximate"] is False and out["recall_at_1"] == 1.0  # FAISS's flat index is exact
