"""The FAISS index of a SQLite gallery follows the store through its change log: no rebuild per change."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from facemetric.gallery.interface import EmbedderInfo, Enrolment, GalleryError
from facemetric.gallery.stores.sqlite import faiss_index
from facemetric.gallery.stores.sqlite.faiss_index import FaissIndex
from facemetric.gallery.stores.sqlite.store import SQLiteStore

DIM = 8


def _item(k: int) -> Enrolment:
    v = np.random.default_rng(k).normal(size=DIM).astype(np.float32)
    return Enrolment(f"hash{k}", f"photo{k}.jpg", {"backend": "test"}, v / np.linalg.norm(v))


def _store(tmp_path: Path) -> SQLiteStore:
    return SQLiteStore.create(tmp_path / "gallery" / "gallery.db", EmbedderInfo("test", "fp", DIM, "test"))


def _brute_force(store: SQLiteStore, probe: np.ndarray, k: int) -> list[tuple[str, float]]:
    """The best ``k`` identities by their best image, from every row of the store."""
    _, _, names, vectors = store.snapshot()
    best: dict[str, float] = {}
    for name, score in zip(names, vectors @ probe):
        best[name] = max(best.get(name, -2.0), float(score))
    return sorted(best.items(), key=lambda kv: (-kv[1], kv[0]))[:k]


def _means(store: SQLiteStore) -> dict[str, np.ndarray]:
    _, _, names, vectors = store.snapshot()
    names = np.array(names)
    return {n: vectors[names == n].mean(0) / np.linalg.norm(vectors[names == n].mean(0)) for n in set(names)}


def _agrees(index: FaissIndex, store: SQLiteStore, seed: int) -> None:
    rng = np.random.default_rng(seed)
    means = _means(store)
    for _ in range(10):
        q = rng.normal(size=DIM).astype(np.float32)
        q /= np.linalg.norm(q)
        got = [(m.name, m.score) for m in index.search(q, 4)]
        want = _brute_force(store, q, 4)
        assert [n for n, _ in got] == [n for n, _ in want]
        np.testing.assert_allclose([s for _, s in got], [s for _, s in want], atol=1e-6)
        best_mean = max(means, key=lambda n: float(means[n] @ q))
        assert index.search(q, 1, "mean")[0].name == best_mean
        for name in list(means)[:3]:
            assert index.score(q, name, "mean") == pytest.approx(float(means[name] @ q), abs=1e-5)


def test_changes_by_another_process_are_applied_without_a_rebuild(tmp_path: Path) -> None:
    store = _store(tmp_path)
    index = FaissIndex(store, tmp_path / "gallery")
    assert index.rebuilds == 1  # the first open builds (an empty gallery)
    other = SQLiteStore(store.path)  # another server or CLI process on the same file
    for person in range(30):
        other.enroll(f"p{person:02d}", [_item(100 * person + k) for k in range(1 + person % 5)])
    assert index.sync() is True and index.rebuilds == 1 and index.n_images == store.snapshot()[1].size
    _agrees(index, store, 0)
    other.remove("p07")  # deletions, one identity at a time
    other.remove("p29")  # the largest id: SQLite reuses it for the next row
    other.enroll("p07", [_item(7000), _item(7001)])  # back, with other photos and reused row ids
    other.enroll("p03", [_item(300)])  # a duplicate photo: nothing added, nothing logged
    assert index.sync() is True and index.rebuilds == 1 and len(index) == 29
    _agrees(index, store, 1)
    assert index.search(_item(7001).embedding, 1)[0].name == "p07"
    assert index.sync() is False  # nothing new
    other.close()
    store.close()


def test_the_saved_index_is_brought_forward_by_the_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "gallery"
    store = _store(tmp_path)
    index = FaissIndex(store, folder)
    for person in range(10):
        store.enroll(f"p{person}", [_item(person)])
    index.sync()
    index.close()  # saves: changed since the last save
    saved = index.saves
    with sqlite3.connect(store.path) as db:  # the log is kept behind the save, for other processes' indexes
        assert db.execute("SELECT COUNT(*) FROM changes").fetchone()[0] == 10
    store.enroll("late", [_item(99)])  # after the save: only in the log
    reopened = FaissIndex(store, folder)
    assert reopened.rebuilds == 0 and reopened.generation == store.generation and reopened.n_images == 11
    _agrees(reopened, store, 2)
    # saving drops the log up to LOG_KEEP generations before the saved one; an index older than that rebuilds
    stale = FaissIndex(store, folder)
    monkeypatch.setattr(faiss_index, "SAVE_MIN", 3)
    monkeypatch.setattr(faiss_index, "LOG_KEEP", 0)
    for person in range(5):
        store.enroll(f"q{person}", [_item(500 + person)])
    reopened.sync()
    assert reopened.saves >= 1 and saved >= 1
    with sqlite3.connect(store.path) as db:
        logged = db.execute("SELECT COUNT(*), MIN(generation) FROM changes").fetchone()
    assert logged[0] < 5 and (logged[1] is None or logged[1] > stale.generation)
    assert stale.sync() is True and stale.rebuilds == 1 and stale.n_images == 16
    _agrees(stale, store, 3)
    store.close()


def test_a_damaged_or_future_index_file_is_rebuilt(tmp_path: Path) -> None:
    folder = tmp_path / "gallery"
    store = _store(tmp_path)
    store.enroll("ann", [_item(1)])
    FaissIndex(store, folder).close()
    data = (folder / "index.faiss").read_bytes()
    (folder / "index.faiss").write_bytes(data[: len(data) // 2])  # torn
    assert FaissIndex(store, folder).rebuilds == 1
    other = _store(tmp_path / "elsewhere")  # an index file saved at a later generation than this store
    for k in range(3):
        other.enroll(f"x{k}", [_item(10 + k)])
    FaissIndex(other, tmp_path / "elsewhere" / "gallery").close()
    (folder / "index.faiss").write_bytes((tmp_path / "elsewhere" / "gallery" / "index.faiss").read_bytes())
    fresh = FaissIndex(store, folder)
    assert fresh.rebuilds == 1 and [m.name for m in fresh.search(_item(1).embedding, 5)] == ["ann"]
    other.close()
    store.close()


def test_a_gallery_file_lacking_a_record_is_refused_as_damaged_not_migrated(tmp_path: Path) -> None:
    """There is one SQLite format (no release ever wrote another): a file without one of its records, or with
    the model's record under another key, is refused with a message naming what is missing."""
    store = _store(tmp_path)
    store.enroll("ann", [_item(1)])
    path = store.path
    store.close()
    with sqlite3.connect(path) as db:
        (embedder,) = db.execute("SELECT value FROM meta WHERE key = 'embedder'").fetchone()
        record = json.loads(embedder)
        record["spec"] = record.pop("reference")
        db.execute("UPDATE meta SET value = ? WHERE key = 'embedder'", (json.dumps(record),))
    with pytest.raises(GalleryError, match=r"the record of the gallery's model is damaged \(KeyError\('reference'\)\)"):
        SQLiteStore(path)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value = ? WHERE key = 'embedder'", (embedder,))
        db.execute("DELETE FROM meta WHERE key = 'keep_faces'")
    with pytest.raises(GalleryError, match="lacks its 'keep_faces' record; it is damaged"):
        SQLiteStore(path)


def test_the_index_works_with_faiss_torch_utils_imported(tmp_path: Path) -> None:
    """pytorch-metric-learning imports faiss.contrib.torch_utils, after which FAISS's reconstruct returns torch
    tensors (for the whole process): deletions and verification must still work."""
    pytest.importorskip("torch")
    import faiss.contrib.torch_utils  # noqa: F401

    store = _store(tmp_path)
    index = FaissIndex(store, tmp_path / "gallery")
    for person in range(4):
        store.enroll(f"p{person}", [_item(10 * person), _item(10 * person + 1)])
    index.sync()
    store.remove("p2")
    assert index.sync() and len(index) == 3
    assert index.score(_item(0).embedding, "p0") == pytest.approx(1.0, abs=1e-5)
    _agrees(index, store, 4)
    index.close()
    reopened = FaissIndex(store, tmp_path / "gallery")  # loading reconstructs every vector
    assert reopened.rebuilds == 0 and reopened.n_images == 6
    store.close()
