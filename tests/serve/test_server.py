"""`facemetric serve` as a real process: concurrent clients lose nothing; kill -9 leaves a consistent gallery.

Each test runs on both stores (the ``location`` fixture of tests/pg_fixtures.py): a SQLite folder and a
PostgreSQL + pgvector database.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")

from facemetric.gallery.location import GalleryLocation  # noqa: E402
from facemetric.gallery.service import Gallery  # noqa: E402
from servers import start_server, stop_server  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture
def gallery(tiny_checkpoint: Path, location: GalleryLocation) -> GalleryLocation:
    """An empty gallery of :func:`tiny_checkpoint`, in a folder (SQLite) or a database (PostgreSQL)."""
    Gallery.create(location, str(tiny_checkpoint)).close()
    return location


def _photos(synthetic_faces: Path) -> list[bytes]:
    return [p.read_bytes() for p in sorted(synthetic_faces.rglob("*.png"))]


def _check_consistent(location: GalleryLocation, must_have: dict[str, int]) -> None:
    """The store sound, every acknowledged enrolment present, no identity without images, and the search
    index equal to the store: for SQLite the saved FAISS index (or its rebuild) at the store's generation,
    for PostgreSQL the pgvector index over the same images."""
    store = location.open()
    try:
        assert store.integrity_check() == "ok"
        counts = {i.name: i.images for i in store.identities()}
        missing = {n: c for n, c in must_have.items() if counts.get(n, 0) < c}
        assert not missing, f"acknowledged enrolments lost: {list(missing)[:5]}"
        assert all(c > 0 for c in counts.values()), "an identity without images"
        index = location.index(store)
        assert index.n_images == sum(counts.values())
        if location.kind == "sqlite":
            assert index.generation == store.generation
    finally:
        store.close()


def test_concurrent_clients_lose_nothing(gallery: GalleryLocation, synthetic_faces: Path) -> None:
    photos = _photos(synthetic_faces)
    proc, url = start_server(gallery.target)  # the folder or the URL as given (str() hides a password)
    acknowledged: dict[str, int] = {}
    failures: list[str] = []
    lock = threading.Lock()

    def client(c: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as http:
            for i in range(30):
                photo = photos[(7 * c + i) % len(photos)]
                if i % 3 == 0:  # every third request enrols a new person, the others identify
                    name = f"client{c}-person{i}"
                    r = http.post("/api/enroll", data={"name": name}, files={"files": ("p.png", photo)})
                    if r.status_code == 200:
                        with lock:
                            acknowledged[name] = 1
                else:
                    r = http.post("/api/identify", files={"file": ("p.png", photo)})
                if r.status_code != 200:
                    with lock:
                        failures.append(f"{r.status_code} {r.text[:200]}")

    try:
        threads = [threading.Thread(target=client, args=(c,)) for c in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        listed = {p["name"]: p["images"] for p in httpx.get(f"{url}/api/identities").json()}
    finally:
        stop_server(proc)
    assert not failures, failures[:5]
    assert len(acknowledged) == 8 * 10 and listed == acknowledged
    _check_consistent(gallery, acknowledged)


def test_kill_9_during_enrolment_leaves_a_consistent_gallery(gallery: GalleryLocation, synthetic_faces: Path) -> None:
    photos = _photos(synthetic_faces)
    proc, url = start_server(gallery.target)
    acknowledged: dict[str, int] = {}
    stop, twenty_done = threading.Event(), threading.Event()

    def enrol_forever(c: int) -> None:
        with httpx.Client(base_url=url, timeout=30) as http:
            for i in range(10_000):
                if stop.is_set():
                    return
                name = f"k{c}-{i}"
                files = [("files", (f"{k}.png", photos[(c + i + k) % len(photos)])) for k in range(2)]
                try:
                    r = http.post("/api/enroll", data={"name": name}, files=files)
                except httpx.TransportError:
                    return  # the server died mid-request: that enrolment was never acknowledged
                if r.status_code == 200:
                    acknowledged[name] = r.json()["added"]
                    if len(acknowledged) >= 20:
                        twenty_done.set()

    threads = [threading.Thread(target=enrol_forever, args=(c,)) for c in range(4)]
    for t in threads:
        t.start()
    assert twenty_done.wait(timeout=120), "the server acknowledged fewer than 20 enrolments in 120 s"
    os.kill(proc.pid, signal.SIGKILL)  # in the middle of enrolments: four clients are sending more
    proc.wait(timeout=30)
    stop.set()
    for t in threads:
        t.join()
    assert len(acknowledged) >= 20
    _check_consistent(gallery, acknowledged)
    # and the gallery still works after the crash
    proc, url = start_server(gallery.target)
    try:
        r = httpx.post(f"{url}/api/identify", files={"file": ("p.png", photos[0])}, timeout=60)
        assert r.status_code == 200 and r.json()["candidates"]
    finally:
        stop_server(proc)
